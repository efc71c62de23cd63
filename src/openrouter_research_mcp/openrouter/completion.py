"""Chat completion results: parsing a response body, assembling an SSE stream into one, and the result types.

Both paths end in `parse_completion`, so a streamed answer and a plain one are checked the same way: an `error`
object, empty `choices` or `finish_reason == "error"` in an HTTP 200 body each become a typed error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._util import as_dict
from ..errors import BadResponseError, RequestError, StreamError, error_for_status
from .pricing import Usage, usage_from_response

__all__ = ["Attempt", "ChatResult", "Source", "assemble_stream", "parse_completion", "raise_for_body_error"]


class Source(BaseModel):
    """A web page behind an answer: parsed from a `url_citation` annotation, numbered in an answer or in research's
    citation ledger, and returned as is in results."""

    model_config = ConfigDict(defer_build=True)

    n: int = Field(default=0, description="its number: cited as [n]")
    url: str
    title: str = ""
    snippet: str = Field(default="", description="the passage the model drew on (the annotation's `content`)")
    found_by: str | None = Field(default=None, description="in research: the sub-question whose search found it")


class Attempt(BaseModel):
    """One model tried while answering a request."""

    model: str
    ok: bool
    status: int | None = Field(default=None, description="HTTP (or in-body) status of the failure")
    error: str | None = None
    retries: int = 0
    answered_by: str | None = Field(default=None, description="the model that answered, when OpenRouter rerouted")


class ChatResult(BaseModel):
    """A finished chat completion, with where it came from and what it cost."""

    model_config = ConfigDict(defer_build=True)

    text: str
    reasoning: str | None = None
    model_requested: str
    model: str = Field(description="the model that answered (the response's `model`)")
    provider: str | None = None
    generation_id: str | None = None
    finish_reason: str | None = None
    citations: list[Source] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    attempts: list[Attempt] = Field(default_factory=list)
    latency_s: float = 0.0


def raise_for_body_error(body: dict[str, Any], model: str | None, partial_text: str = "") -> None:
    """Raise the typed error for an `error` object inside an HTTP 200 body (or a stream chunk)."""
    error = body.get("error")
    if not error:
        return
    if not isinstance(error, dict):
        error = {"message": str(error)}
    message = str(error.get("message") or "no message")
    metadata = as_dict(error.get("metadata"))
    raw_code = str(error.get("code", ""))
    code = int(raw_code) if raw_code.isdigit() else 502
    if partial_text:
        raise StreamError(
            f"The stream from `{model}` broke off with an error ({code}: {message}) after "
            f"{len(partial_text)} characters; the partial answer is kept. Try again or use another "
            "model.",
            partial_text=partial_text,
            status=code,
            model=model,
        )
    typed = error_for_status(code, message, model=model, metadata=metadata)
    if type(typed) is RequestError and code == 400:
        # A 400 inside a 200 body is the upstream failing mid-request, not our arguments being wrong.
        typed = BadResponseError(
            f"`{model}` failed while answering ({code}: {message}). Try again or use another model.",
            status=code,
            model=model,
        )
    raise typed


def _citations(message: dict[str, Any]) -> list[Source]:
    seen: dict[str, Source] = {}
    for note in message.get("annotations") or []:
        if not isinstance(note, dict) or note.get("type") != "url_citation":
            continue
        data = as_dict(note.get("url_citation"))
        url = data.get("url")
        if isinstance(url, str) and url and url not in seen:
            seen[url] = Source(
                n=len(seen) + 1, url=url, title=str(data.get("title") or ""), snippet=str(data.get("content") or "")
            )
    return list(seen.values())


def parse_completion(body: Any, requested: str) -> ChatResult:
    """Turn a chat completion body into a `ChatResult`, or raise the typed error it carries."""
    if not isinstance(body, dict):
        raise BadResponseError(
            f"OpenRouter's answer for `{requested}` was not a JSON object. Try again.", model=requested
        )
    raise_for_body_error(body, requested)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadResponseError(
            f"`{requested}` returned no choices (an empty answer). Try again or use another model.", model=requested
        )
    choice = choices[0]
    message = as_dict(choice.get("message"))
    answered_by = str(body.get("model") or requested)
    if choice.get("finish_reason") == "error":
        reason = choice.get("native_finish_reason") or "error"
        raise BadResponseError(
            f"`{answered_by}` stopped with an error ({reason}) before finishing. Try again or use another model.",
            model=answered_by,
        )
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    try:
        return ChatResult(
            text=str(content or ""),
            reasoning=str(message.get("reasoning") or "") or None,
            model_requested=requested,
            model=answered_by,
            provider=body["provider"] if isinstance(body.get("provider"), str) else None,
            generation_id=str(body["id"]) if body.get("id") else None,
            finish_reason=str(choice["finish_reason"]) if choice.get("finish_reason") else None,
            citations=_citations(message),
            usage=usage_from_response(body.get("usage"))[0],
        )
    except (ValidationError, TypeError, ValueError) as exc:  # an answer of an unexpected shape is not a crash
        raise BadResponseError(
            f"`{answered_by}` sent an answer this server could not read ({type(exc).__name__}). "
            "Try again or use another model.",
            model=answered_by,
        ) from None


async def assemble_stream(
    lines: AsyncIterator[str],
    requested: str,
    on_text: Callable[[str], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Read SSE lines into one chat completion body, as if the answer had not been streamed.

    `:` comment lines (keep-alives such as `: OPENROUTER PROCESSING`) are skipped. A chunk with an `error` raises a
    `StreamError` that keeps the text received so far; a stream that stops without `[DONE]` or a finish reason does
    too.
    """
    text: list[str] = []
    reasoning: list[str] = []
    annotations: list[Any] = []
    body: dict[str, Any] = {}
    finish_reason: str | None = None
    saw_choice = False
    done = False
    async for line in lines:
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True  # read on to the end of the body, so the connection goes back to the pool
            continue
        if done:
            continue
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise StreamError(
                f"`{requested}` sent a stream chunk that is not JSON. Try again.",
                partial_text="".join(text),
                model=requested,
            ) from None
        if not isinstance(chunk, dict):
            continue
        for key in ("id", "model", "provider", "created"):
            if chunk.get(key) is not None:
                body.setdefault(key, chunk[key])
        if chunk.get("usage"):
            body["usage"] = chunk["usage"]
        if chunk.get("error"):
            raise_for_body_error(chunk, str(body.get("model") or requested), "".join(text))
        for choice in chunk.get("choices") or []:
            saw_choice = True
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
                if on_text is not None:
                    await on_text(delta["content"])
            if delta.get("reasoning"):
                reasoning.append(delta["reasoning"])
            annotations.extend(delta.get("annotations") or [])
            if choice.get("finish_reason"):
                finish_reason = choice["finish_reason"]
    if not done and finish_reason is None:
        raise StreamError(
            f"The stream from `{requested}` ended before the answer was complete "
            f"({len(''.join(text))} characters arrived). Try again.",
            partial_text="".join(text),
            model=requested,
        )
    if not saw_choice:  # only usage and [DONE]: the same as `choices: []` in a plain answer
        body["choices"] = []
        return body
    body["choices"] = [
        {
            "finish_reason": finish_reason,
            "message": {
                "role": "assistant",
                "content": "".join(text),
                "reasoning": "".join(reasoning) or None,
                "annotations": annotations,
            },
        }
    ]
    return body
