"""A deterministic instance generator for the JSON Schemas that structured-output requests carry.

`fill(schema)` returns a value that validates against `schema` for the subset pydantic and hand-written schemas use:
`$ref` into `$defs`/`definitions`, `anyOf`/`oneOf`/`allOf`, `const`, `enum`, type lists, objects (every property
near the root, only the required ones deeper, so recursive schemas terminate), arrays (`minItems`..max(`minItems`, 2)
items, capped by `maxItems`), strings (length bounds and a few formats), integers and numbers (bounds), booleans.
`pattern` is not honoured.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fill"]

_MAX_FULL_DEPTH = 3  # below this depth objects get only their required properties and arrays their minimum


def fill(schema: Any, *, hint: str = "value") -> Any:
    """A value that validates against `schema`; `hint` seeds the wording of generated strings."""
    return _fill(schema, schema if isinstance(schema, dict) else {}, hint, 0, 0)


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _fill(schema: Any, root: dict[str, Any], hint: str, depth: int, index: int) -> Any:
    if not isinstance(schema, dict):
        return hint  # `true` or a missing schema accepts anything
    if "$ref" in schema:
        return _fill(_resolve(schema["$ref"], root), root, hint, depth, index)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [s for s in schema[key] if not (isinstance(s, dict) and s.get("type") == "null")]
            return _fill((options or schema[key])[0], root, hint, depth, index)
    if schema.get("allOf"):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part["$ref"], root) if isinstance(part, dict) and "$ref" in part else part
            merged.update(part if isinstance(part, dict) else {})
        return _fill(merged, root, hint, depth, index)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        names = [n for n in properties if depth < _MAX_FULL_DEPTH or n in required]
        names += [n for n in required if n not in properties]
        return {name: _fill(properties.get(name, {}), root, name.replace("_", " "), depth + 1, 0) for name in names}
    if kind == "array":
        low = int(schema.get("minItems", 0))
        count = max(low, 2) if depth < _MAX_FULL_DEPTH else low
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items", {})
        prefix = schema.get("prefixItems") or (items if isinstance(items, list) else [])  # draft-04 tuples: a list
        return [
            _fill(prefix[i] if i < len(prefix) else items, root, f"{hint} {i + 1}", depth + 1, i) for i in range(count)
        ]
    if kind == "string":
        return _string(schema, hint)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer", index)
    if kind == "boolean":
        return True
    return None


def _string(schema: dict[str, Any], hint: str) -> str:
    formats = {
        "date": "2025-01-01",
        "date-time": "2025-01-01T00:00:00Z",
        "time": "12:00:00Z",
        "email": "someone@example.org",
        "uuid": "00000000-0000-4000-8000-000000000000",
        "uri": f"https://example.org/{hint.replace(' ', '-')}",
    }
    text = formats.get(str(schema.get("format")), f"A deterministic {hint}.")
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    if len(text) < low:
        text += "." * (low - len(text))
    return text[: int(high)] if high is not None else text


def _number(schema: dict[str, Any], integer: bool, index: int) -> float | int:
    step = 1 if integer else 0.5
    low = max(schema.get("minimum", -math.inf), schema.get("exclusiveMinimum", -math.inf) + step)
    high = min(schema.get("maximum", math.inf), schema.get("exclusiveMaximum", math.inf) - step)
    if low > high:  # a range narrower than the step: take its middle
        value = (
            max(schema.get("minimum", -math.inf), schema.get("exclusiveMinimum", -math.inf))
            + min(schema.get("maximum", math.inf), schema.get("exclusiveMaximum", math.inf))
        ) / 2
    else:
        value = min(max(step, low) + index * step, high)  # distinct per index, for uniqueItems
    if integer:
        return int(math.ceil(value) if math.ceil(value) <= high else math.floor(value))
    return float(value)
