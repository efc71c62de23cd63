"""Small helpers for reading untrusted JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Progress", "as_dict", "no_progress"]

# A progress callback: (progress so far, total or None, message). Progress values only ever increase.
Progress = Callable[[float, float | None, str], Awaitable[None]]


async def no_progress(_done: float, _total: float | None, _message: str) -> None:
    """The progress callback for callers that want none."""


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty dict: upstream JSON is never trusted to have a shape."""
    return value if isinstance(value, dict) else {}
