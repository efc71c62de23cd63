"""Fakes of what the tests must never reach: OpenRouter (on loopback), its catalog, and the clock."""

FAKE_KEY = "sk-or-v1-test-0123456789abcdef0123456789abcdef0123456789abcdef"
