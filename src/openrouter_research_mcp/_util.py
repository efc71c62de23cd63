"""Small helpers: reading untrusted JSON, neutralising and delimiting untrusted text, money as people read it,
writing files atomically."""

from __future__ import annotations

import contextlib
import decimal
import json
import math
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = [
    "NEUTRAL_LT",
    "Progress",
    "as_dict",
    "delimit",
    "finite",
    "is_web_url",
    "neutralise",
    "no_progress",
    "private_file",
    "strict_json",
    "usd",
    "without_credentials",
    "write_atomically",
]

# A progress callback: (progress so far, total or None, message). Progress values only ever increase.
Progress = Callable[[float, float | None, str], Awaitable[None]]


async def no_progress(_done: float, _total: float | None, _message: str) -> None:
    """The progress callback for callers that want none."""


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty dict: upstream JSON is never trusted to have a shape."""
    return value if isinstance(value, dict) else {}


def is_web_url(url: str) -> bool:
    """Only http(s) URLs are ever shown as links or sources (no `javascript:`, `data:`, `file:` or relative ones)."""
    return url.strip().lower().startswith(("http://", "https://")) and len(url) <= 2048


# A `<` that could open or close a tag, a comment or a processing instruction, in HTML or in markdown.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
NEUTRAL_LT = "\u2039"  # ‹, which reads as `<` and opens nothing


def neutralise(text: str) -> str:
    """The one rule for untrusted text that models or people read: every `<` that could start a tag becomes `‹`,
    so nothing in it is markup to a model's delimiters, a markdown renderer or a browser, and a plain-text host
    shows no entities. Everything else is left as written."""
    return _TAG_START.sub(NEUTRAL_LT, text)


def delimit(tag: str, text: str, **attributes: object) -> str:
    """`text` inside `<tag attr="...">…</tag>` such that nothing in it can end or forge the element: attribute
    values are on one line with `"` as `'`, and attributes and text are `neutralise`d."""
    attrs = "".join(
        f' {name}="{neutralise(" ".join(str(value).split()).replace(chr(34), chr(39)))}"'
        for name, value in attributes.items()
    )
    return f"<{tag}{attrs}>\n{neutralise(text)}\n</{tag}>"


def usd(value: float | None) -> str:
    """Money as people read it, in one format everywhere: whole cents from $1 up, three significant figures below
    (at least two decimals), never scientific notation; `unknown` when there is no real figure (none, or
    impossible). The amount is rounded first, so the format follows the figure shown ($0.9951 shows as $1.00)."""
    if value is None or not math.isfinite(value) or value < 0:
        return "unknown"
    if value == 0:
        return "$0.00"
    exact = decimal.Decimal(repr(value))
    shown = exact.quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP)
    if shown < 1:
        step = decimal.Decimal(1).scaleb(exact.adjusted() - 2)  # the unit of the third significant figure
        shown = exact.quantize(step, decimal.ROUND_HALF_UP)
    if shown >= 1:
        return f"${exact.quantize(decimal.Decimal('0.01'), decimal.ROUND_HALF_UP):,.2f}"
    whole, _, fraction = f"{shown:f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def without_credentials(url: str) -> str:
    """`url` without a user or password (`https://user:secret@gateway/...` -> `https://gateway/...`), for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float (at any depth) replaced by None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def strict_json(value: Any, **options: Any) -> str:
    """`json.dumps` that only ever writes strict JSON: an impossible number becomes null rather than `NaN`."""
    return json.dumps(finite(value), allow_nan=False, **options)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temp file in the same directory and a rename, so a reader never sees half a
    file. Raises OSError (the temp file is removed) when the directory cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def private_file(path: Path) -> None:
    """Make sure `path` exists and only its owner may read or write it (0600; its new folders 0700), before a
    database opens it: SQLite gives the file's `-wal` and `-shm` companions the file's own permissions. A file of
    an earlier release, made with the default umask, is tightened. Raises OSError when the folder cannot be
    written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o600))  # a FIFO: no wait
    if os.name == "posix":
        with contextlib.suppress(OSError):  # someone else's file: theirs to keep as it is
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
