"""Argument errors in words: what was wrong with a tool call's arguments and how to write them, for every tool.

The SDK reports a bad argument as pydantic's dump ("1 validation error for list_models_toolArguments ...
[type=list_type, input_value='tools', input_type=str] For further information visit https://errors.pydantic.dev/...").
A model can parse that, a person cannot. `describe_errors` turns each error into one sentence that names the
argument, says what it takes with an example, and says what was given; `unknown_arguments` catches a misspelt
argument name, which validation would otherwise ignore without a word.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

__all__ = ["closest", "describe_errors", "unknown_arguments"]

Schema = Mapping[str, Any]
MAX_LINES = 8

_KINDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _shown(value: Any, limit: int = 60) -> str:
    """A given value as JSON, cut short: the caller's data is echoed only as far as it helps."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _name(loc: Sequence[int | str]) -> str:
    """('models', 2) -> models[2]; ('provider', 'sort') -> provider.sort."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _locate(schema: Schema, loc: Sequence[int | str]) -> tuple[tuple[int | str, ...], Schema]:
    """The argument at `loc` as a caller names it, and its JSON schema (nullable and $ref wrappers looked through,
    {} when unknown). The name leaves out the parts pydantic adds for a union's members (`str`, `list[str]`, a
    model's name), which are not names a caller wrote."""
    defs = schema.get("$defs", {})
    node: Schema = schema
    kept: list[int | str] = []
    for part in loc:
        node = _plain(node, defs)
        if isinstance(part, int):
            kept.append(part)
            node = node.get("items", {})
        elif part in node.get("properties", {}):
            kept.append(part)
            node = node["properties"][part]
        elif "properties" in node:  # a key the object does not have (the mistake itself): kept to be named
            kept.append(part)
            node = {}
    return tuple(kept), _plain(node, defs)


def _plain(node: Schema, defs: Schema) -> Schema:
    if "$ref" in node:
        target = _plain(defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {}), defs)
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    for key in ("anyOf", "oneOf"):
        options = [o for o in node.get(key, []) if o.get("type") != "null"]
        if len(options) == 1:
            merged = {**_plain(options[0], defs), **{k: v for k, v in node.items() if k != key}}
            return merged
    return node


def _example(field: Schema, given: Any = None) -> str | None:
    """A value the argument would take: its own default or first choice, shaped like what was given."""
    kind = field.get("type")
    if kind == "array":
        items = field.get("items", {})
        choices = items.get("enum") or []
        if isinstance(given, str) and given.strip():
            # "a, b" was meant as a list of two; a value the list cannot hold gives way to one it can.
            parts = [p.strip() for p in given.split(",") if p.strip()]
            shaped = [p for p in parts if p in choices] or choices[:1] if choices else parts
            return _shown(shaped)
        inner = choices[0] if choices else ("…" if items.get("type") == "string" else None)
        return json.dumps([inner]) if inner is not None else "[…]"
    if "enum" in field:
        return json.dumps(field["enum"][0])
    if kind == "object":
        props = list(field.get("properties", {}))
        return "{" + f'"{props[0]}": …' + "}" if props else "{}"
    default = field.get("default")
    if kind in ("integer", "number") and isinstance(default, int | float) and not isinstance(default, bool):
        return json.dumps(default)
    if kind == "integer":
        return json.dumps(field.get("minimum", 1))
    if kind == "boolean":
        return "true"
    return None


def _sentence(err: Mapping[str, Any], schema: Schema) -> str:
    loc, field = _locate(schema, tuple(err.get("loc", ())))
    name, kind, ctx, given = _name(loc), err.get("type", ""), err.get("ctx") or {}, err.get("input")
    described = f" ({field['description']})" if field.get("description") else ""
    if kind == "missing":
        return f"`{name}` is required{described}."
    if kind in _KINDS:
        example = _example(field, given)
        hint = f", e.g. {example}" if example and not kind.startswith("bool") else ""
        return f"`{name}` is {_KINDS[kind]}{hint}; got {_shown(given)}."
    if kind in ("literal_error", "enum"):
        choices = field.get("enum") or [c.strip(" '\"") for c in str(ctx.get("expected", "")).split(",") if c]
        listed = ", ".join(str(c) for c in choices) or str(ctx.get("expected"))
        return f"`{name}` is one of {listed}; got {_shown(given)}."
    if kind == "string_too_short":
        if ctx.get("min_length", 1) <= 1:
            return f"`{name}` is empty; it needs text{described}."
        return f"`{name}` needs at least {ctx['min_length']} characters."
    if kind == "string_too_long":
        return f"`{name}` takes at most {ctx.get('max_length')} characters; got {len(str(given))}."
    if kind == "too_short":
        return f"`{name}` needs at least {ctx.get('min_length')} item(s); got {ctx.get('actual_length')}."
    if kind == "too_long":
        return f"`{name}` takes at most {ctx.get('max_length')} item(s); got {ctx.get('actual_length')}."
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        word, key = bounds[kind]
        return f"`{name}` is {word} {ctx.get(key)}; got {_shown(given)}."
    if kind == "extra_forbidden":
        _, parent = _locate(schema, loc[:-1])
        known = ", ".join(parent.get("properties", {})) or "nothing else"
        return f"`{name}` is not something `{_name(loc[:-1])}` takes; it takes {known}."
    message = str(err.get("msg", "is not valid")).removeprefix("Value error, ").rstrip(".")
    return f"`{name}`: {message[:1].lower()}{message[1:]}."


def describe_errors(tool: str, error: ValidationError, schema: Schema) -> str:
    """The whole message for a call whose arguments failed validation."""
    lines = list(dict.fromkeys(_sentence(e, schema) for e in error.errors(include_url=False)))
    if len(lines) > MAX_LINES:  # thirty bad items in one list need not be thirty lines
        lines = [*lines[: MAX_LINES - 1], f"… and {len(lines) - MAX_LINES + 1} more like these."]
    head = f"{tool} was called with {'an argument' if len(lines) == 1 else 'arguments'} it cannot use:"
    tail = f"Correct {'it' if len(lines) == 1 else 'them'} and call {tool} again."
    return "\n".join([head, *(f"- {line}" for line in lines), tail])


def closest(name: str, known: Sequence[str]) -> str | None:
    """The known name `name` is most likely a typo of, if any is close enough."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_arguments(tool: str, given: Iterable[str], schema: Schema) -> str | None:
    """The message for argument names the tool does not have (usually a typo), or None when all are known."""
    known = list(schema.get("properties", {}))
    strangers = [name for name in given if name not in known]
    if not strangers:
        return None
    lines = []
    for name in strangers:
        close = closest(name, known)
        lines.append(f"- `{name}` is not an argument of {tool}" + (f"; did you mean `{close}`?" if close else "."))
    return "\n".join(
        [f"{tool} was called with an argument it does not have:", *lines, f"Its arguments: {', '.join(known)}."]
    )
