"""Compact JSON schemas for tool definitions: every host pays for `tools/list` in context on every session.

Only annotations that carry no meaning for validation or for the model are dropped (pydantic's generated `title`
on every property and model), and `anyOf: [{type: X}, {type: null}]` becomes the equivalent `type: [X, null]`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compact_schema"]

_NAME_MAPS = ("properties", "$defs", "definitions", "patternProperties")  # their keys are names, not keywords


def _nullable(options: list[Any]) -> list[str] | None:
    if len(options) == 2 and all(
        isinstance(o, dict) and set(o) == {"type"} and isinstance(o["type"], str) for o in options
    ):
        types = [o["type"] for o in options]
        if "null" in types:
            return types
    return None


def compact_schema(node: Any, *, names: bool = False) -> Any:
    """A copy of the schema `node` without generated titles and with simple nullable unions folded."""
    if isinstance(node, list):
        return [compact_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: compact_schema(value) for key, value in node.items()}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        out[key] = compact_schema(value, names=key in _NAME_MAPS)
    options = out.get("anyOf")
    if isinstance(options, list) and (types := _nullable(options)) is not None and "type" not in out:
        del out["anyOf"]
        out["type"] = types
    return out
