"""Small helpers: reading untrusted JSON, delimiting untrusted text in prompts, writing files atomically."""

from __future__ import annotations

import contextlib
import html
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["Progress", "as_dict", "delimit", "is_web_url", "no_progress", "write_atomically"]

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


_TAG_START = re.compile(r"<(/?)([A-Za-z][\w-]*)")


def delimit(tag: str, text: str, **attributes: object) -> str:
    """`text` inside `<tag attr="...">…</tag>` such that nothing in it can end or forge the element: attribute
    values are HTML-escaped and on one line, and any tag opening or closing inside `text` has its `<` escaped."""
    attrs = "".join(
        f' {name}="{html.escape(" ".join(str(value).split()), quote=True)}"' for name, value in attributes.items()
    )
    body = _TAG_START.sub(r"&lt;\1\2", text)
    return f"<{tag}{attrs}>\n{body}\n</{tag}>"


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
