"""Logs never carry a key or a token: by value for the configured key, by shape for callers' keys and tokens, in the
message, in a tool call's fields and in a traceback, in both formats."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from openrouter_research_mcp._logging import configure_logging, scrub

KEY = "sk-or-v1-" + "a1" * 32
OWN = "sk-or-v1-" + "b2" * 32
TOKEN = "orm_" + "Zx9_-" * 8
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ"
SECRETS = (KEY, OWN, TOKEN, JWT, "operator-secret-without-a-shape")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logging_scrubs_keys_and_tokens_everywhere(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    configure_logging("INFO", "operator-secret-without-a-shape", fmt)
    log = logging.getLogger("test.scrub")
    try:
        log.info("upstream said: bad key %s (own %s), header Authorization: Bearer %s", KEY, OWN, TOKEN)
        log.info("a call", extra={"call": {"caller": "token:alice", "echo": f"{JWT} operator-secret-without-a-shape"}})
        try:
            raise RuntimeError(f"refused {TOKEN} and {KEY}")
        except RuntimeError:
            log.exception("it failed")
    finally:
        logging.getLogger().handlers.clear()
    text = err.getvalue()
    assert text.count("***") == (7 if fmt == "json" else 5) and "it failed" in text  # text lines leave `call` out
    for secret in SECRETS:
        assert secret not in text
    if fmt == "json":
        lines = [json.loads(line) for line in text.splitlines()]
        assert len(lines) == 3 and lines[1]["caller"] == "token:alice" and "RuntimeError" in lines[2]["traceback"]
        assert lines[0]["level"] == "INFO" and lines[0]["time"].endswith("Z")


def test_logging_scrub_leaves_ordinary_text_alone() -> None:
    plain = "ask ok by token:alice in 12 ms, $0.000123; model openai/gpt-4o-mini; bearer of good news"
    assert scrub(plain) == plain
