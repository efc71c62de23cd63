"""A fake completion as OpenRouter streams it: server-sent events, each with the output tokens it carries.

Order: a reasoning chunk (`delta.reasoning` or `delta.reasoning_details`), the text in pieces (`delta.content`, or
`delta.refusal` for a refusal) with a keep-alive comment after every second piece, the annotations, the finish
chunk, the usage chunk (`choices: []`), `data: [DONE]`. A mid-stream error ends the events early with an error
chunk and no usage. The handler writes them, pacing the pieces when the model has a tokens-per-second rate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["PROCESSING", "Event", "events"]

PROCESSING = ": OPENROUTER PROCESSING\n\n"


@dataclass(frozen=True)
class Event:
    """One SSE event's text, and how many output tokens it delivers (for pacing)."""

    text: str
    tokens: float = 0.0


def _data(payload: Any) -> Event:
    return Event(f"data: {json.dumps(payload)}\n\n")


def events(
    result: dict[str, Any],
    kind: str,
    error: dict[str, Any] | None,
    piece_chars: int | None = None,
    payload: Any = None,
) -> Iterator[Event]:
    """The events of `result` streamed under fault `kind` ("ok", "body", "stream_error", "finish_error", "empty",
    "bad_chunk" with its `payload`, "no_done").

    `piece_chars` sets the size of the text pieces; None: about a quarter of the text each."""
    head = {k: result[k] for k in ("id", "created", "model", "provider")} | {"object": "chat.completion.chunk"}
    message, stop_reason = result["choices"][0]["message"], result["choices"][0]["finish_reason"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return head | {
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", **delta},
                    "finish_reason": finish,
                    "native_finish_reason": finish,
                    "logprobs": None,
                }
            ]
        }

    refused = message.get("refusal") is not None
    text = "" if kind == "body" else str((message["refusal"] if refused else message["content"]) or "")
    size = piece_chars or max(len(text) // 4, 1)
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    if kind in ("stream_error", "finish_error"):
        pieces = pieces[:2]
    elif kind == "empty":
        pieces = []
    thinking = {k: message[k] for k in ("reasoning", "reasoning_details") if message.get(k)}
    if thinking and pieces:
        yield _data(chunk({"content": "", **thinking}))
    for index, piece in enumerate(pieces):
        delta = {"refusal": piece} if refused else {"content": piece}
        yield Event(_data(chunk(delta)).text, len(piece) / 4)
        if kind == "bad_chunk" and index == 0:
            yield _data(payload)
        if index % 2:
            yield Event(PROCESSING)
    if error is not None:  # mid-stream failure: an error chunk, then the stream ends without usage or [DONE]
        yield _data({**chunk({"content": ""}, "error"), "error": error})
        return
    if message.get("annotations") and pieces:
        yield _data(chunk({"content": "", "annotations": message["annotations"]}))
    if kind != "empty":
        yield _data(chunk({"content": ""}, "error" if kind == "finish_error" else stop_reason))
    if "usage" in result:
        yield _data(head | {"choices": [], "usage": result["usage"]})
    if kind != "no_done":
        yield Event("data: [DONE]\n\n")
