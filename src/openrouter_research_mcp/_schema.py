"""Compact JSON schemas for tool definitions: every host pays for `tools/list` in context on every turn.

Only what carries no meaning for the model is dropped: pydantic's generated `title` on every property and model;
and, for an optional argument whose default is null (`input=True`), the `default: null` and the null alternative
(omitting the argument is how a caller leaves it unset; the server still accepts an explicit null). Elsewhere
`anyOf: [{type: X}, {type: null}]` becomes the equivalent `type: [X, null]`.
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


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    """An optional argument's schema without its null default and null alternative."""
    out = {key: value for key, value in node.items() if not (key == "default" and value is None)}
    options = out.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1 and isinstance(kept[0], dict):
            del out["anyOf"]
            out = {**kept[0], **out}
        else:
            out["anyOf"] = kept
    elif isinstance(out.get("type"), list):
        kept_types = [t for t in out["type"] if t != "null"]
        out["type"] = kept_types[0] if len(kept_types) == 1 else kept_types
    return out


def compact_schema(node: Any, *, names: bool = False, input: bool = False) -> Any:
    """A copy of the schema `node` without generated titles, with simple nullable unions folded, and (`input`)
    optional null-defaulted arguments stated without their null."""
    if isinstance(node, list):
        return [compact_schema(item, input=input) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: compact_schema(value, input=input) for key, value in node.items()}
    if input and "default" in node and node["default"] is None:
        node = _without_null(node)
    if input and "$defs" in node:  # a nested model's own docstring adds nothing to the argument describing it
        node = {
            **node,
            "$defs": {
                name: {k: v for k, v in d.items() if k != "description"} if isinstance(d, dict) else d
                for name, d in node["$defs"].items()
            },
        }
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        out[key] = compact_schema(value, names=key in _NAME_MAPS, input=input)
    options = out.get("anyOf")
    if isinstance(options, list) and (types := _nullable(options)) is not None and "type" not in out:
        del out["anyOf"]
        out["type"] = types
    return out
