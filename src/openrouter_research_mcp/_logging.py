"""Logging to stderr only (stdout carries the MCP protocol), as text or one JSON object per line, with secrets
scrubbed from every line a record becomes, tracebacks included.

Scrubbed: the configured API key (by value), and anything shaped like an OpenRouter key (`sk-or-…`), a bearer token
of ours (`orm_…`) or a bearer credential in a header (`Bearer …`): callers' own keys and tokens reach the server per
request, so they are caught by their shape rather than known in advance.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "scrub"]

# What a credential looks like in text: an OpenRouter key, one of our bearer tokens, a JWT, a Bearer header value.
SHAPES = re.compile(
    r"sk-or-[A-Za-z0-9_-]{8,}"
    r"|orm_[A-Za-z0-9_-]{8,}"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
)


def scrub(text: str, secret: str = "") -> str:
    """`text` without `secret` and without anything shaped like a key or a token."""
    if secret and secret in text:
        text = text.replace(secret, "***")
    if "sk-or-" in text or "orm_" in text or "eyJ" in text or "earer" in text or "EARER" in text:
        text = SHAPES.sub("***", text)
    return text


class _Scrubbed(logging.Formatter):
    """Text lines, scrubbed whole (a traceback's frames and exception text too)."""

    def __init__(self, secret: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._secret = secret

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), self._secret)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, a tool call's fields (`call`),
    and the traceback as one string; scrubbed whole."""

    def __init__(self, secret: str = "") -> None:
        super().__init__()
        self._secret = secret

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        call = getattr(record, "call", None)
        if isinstance(call, dict):
            line.update(call)
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return scrub(json.dumps(line, ensure_ascii=False, default=str), self._secret)


def configure_logging(level: str, secret: str = "", fmt: str = "text") -> None:
    """Send all logging to stderr at `level` as `fmt` ("text" or "json"), scrubbing `secret` and anything shaped
    like a key or a token. Call before the MCP server is built."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secret) if fmt == "json" else _Scrubbed(secret))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO; keep that for DEBUG runs only.
    logging.getLogger("httpx").setLevel(level if level == "DEBUG" else "WARNING")
