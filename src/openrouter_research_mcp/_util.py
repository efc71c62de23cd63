"""Small helpers for reading untrusted JSON."""

from __future__ import annotations

from typing import Any

__all__ = ["as_dict"]


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty dict: upstream JSON is never trusted to have a shape."""
    return value if isinstance(value, dict) else {}
