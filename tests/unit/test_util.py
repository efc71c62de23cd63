"""Small helpers of the foundation layer."""

from __future__ import annotations

from openrouter_research_mcp._util import without_credentials


def test_util_urls_lose_their_credentials_in_messages() -> None:
    assert without_credentials("http://gwuser:gwsecret@127.0.0.1:1/api/v1") == "http://127.0.0.1:1/api/v1"
    assert without_credentials("https://token@gateway.example/v1?x=a@b") == "https://gateway.example/v1?x=a@b"
    assert without_credentials("https://openrouter.ai/api/v1") == "https://openrouter.ai/api/v1"
