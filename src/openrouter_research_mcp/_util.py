"""Small helpers for reading untrusted JSON."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["Progress", "as_dict", "no_progress", "write_atomically"]

# A progress callback: (progress so far, total or None, message). Progress values only ever increase.
Progress = Callable[[float, float | None, str], Awaitable[None]]


async def no_progress(_done: float, _total: float | None, _message: str) -> None:
    """The progress callback for callers that want none."""


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty dict: upstream JSON is never trusted to have a shape."""
    return value if isinstance(value, dict) else {}


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
