"""Structured output that holds up: parse the model's JSON, check it in code (counts and ranges the portable schema
cannot say), and when it fails, ask once more with the problem shown to the model before giving up."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..errors import StructuredOutputError
from .completion import ChatResult

__all__ = ["ask_for_json", "parse_object", "repair_messages"]

T = TypeVar("T")


def parse_object(text: str, required: Sequence[str], model: str) -> dict[str, Any]:
    """The JSON object in `text` (a ```json fence around it is tolerated), with every `required` key present."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise StructuredOutputError(
            f"`{model}` did not return valid JSON ({exc.msg} at character {exc.pos}).", model=model
        ) from None
    except RecursionError:
        raise StructuredOutputError(f"`{model}` returned JSON nested too deeply to read.", model=model) from None
    if not isinstance(data, dict):
        raise StructuredOutputError(f"`{model}` returned JSON that is not an object.", model=model)
    missing = [key for key in required if key not in data]
    if missing:
        raise StructuredOutputError(f"`{model}` returned JSON without {', '.join(missing)}.", model=model)
    return data


def repair_messages(messages: Sequence[dict[str, Any]], reply: str, problem: str) -> list[dict[str, Any]]:
    """`messages`, then the model's unusable reply and a request to answer again with valid JSON."""
    return [
        *messages,
        {"role": "assistant", "content": reply[:4000]},
        {
            "role": "user",
            "content": f"That reply could not be used: {problem} Reply again with only the JSON object, "
            "matching the schema exactly.",
        },
    ]


async def ask_for_json(
    call: Callable[[list[dict[str, Any]]], Awaitable[ChatResult]],
    messages: Sequence[dict[str, Any]],
    check: Callable[[str, str], T],
) -> T:
    """Call the model with `messages` and turn its reply into `check(text, model)`; when `check` raises
    `StructuredOutputError`, call once more with the problem shown, then give up with that error. `call` is the
    caller's (it reserves and settles money for each call)."""
    result = await call(list(messages))
    try:
        return check(result.text, result.model)
    except StructuredOutputError as exc:
        retry = await call(repair_messages(messages, result.text, exc.message))
    try:
        return check(retry.text, retry.model)
    except StructuredOutputError as exc:
        raise StructuredOutputError(
            f"{exc.message} It was asked twice; try again or choose another model with "
            'structured outputs (list_models supports=["structured_outputs"]).',
            model=exc.model,
        ) from None
