"""Logging to stderr only (stdout carries the MCP protocol), with the API key scrubbed from every record."""

from __future__ import annotations

import logging
import sys

__all__ = ["RedactingFilter", "configure_logging"]


class RedactingFilter(logging.Filter):
    """Replace the secret in a record's rendered message, whatever logged it."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secret:
            message = record.getMessage()
            if self._secret in message:
                record.msg, record.args = message.replace(self._secret, "***"), None
        return True


def configure_logging(level: str, secret: str = "") -> None:
    """Send all logging to stderr at `level`, redacting `secret`. Call before the MCP server is built."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secret))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO; keep that for DEBUG runs only.
    logging.getLogger("httpx").setLevel(level if level == "DEBUG" else "WARNING")
