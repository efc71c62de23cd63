"""Chat completion results: parsing a response body, assembling an SSE stream into one, and the result types.

Both paths end in `parse_completion`, so a streamed answer and a plain one are checked the same way: an `error`
object, empty `choices` or `finish_reason == "error"` in an HTTP 200 body each become a typed error, and a body or
chunk of the wrong shape becomes a `BadResponseError` that says the upstream sent something unreadable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._util import as_dict, is_web_url
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
    """One request made while answering: the model it asked first, and how it ended."""

    model: str
    ok: bool
    status: int | None = Field(default=None, description="HTTP (or in-body) status of the failure")
    error: str | None = None
    retries: int = 0
    answered_by: str | None = Field(default=None, description="the model that answered, when OpenRouter rerouted")
    fallbacks: list[str] = Field(default_factory=list, description="the `models` sent with it for OpenRouter to try")


class ChatResult(BaseModel):
    """A finished chat completion, with where it came from and what it cost."""

    model_config = ConfigDict(defer_build=True)

    text: str
    refusal: str | None = Field(default=None, description="the model's refusal, when it declined to answer")
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
    warnings: list[str] = Field(default_factory=list, description="anything odd in the upstream's answer")
    usage_missing: bool = Field(default=False, exclude=True, description="the answer carried no usage block")


def _unreadable(model: str | None, what: str, partial_text: str = "") -> BadResponseError:
    message = (
        f"`{model}` sent {what} this server could not read (the upstream sent something malformed). Try again or "
        "use another model."
    )
    if partial_text:
        return StreamError(
            message + " The text that arrived before it is kept.", partial_text=partial_text, model=model
        )
    return BadResponseError(message, model=model)


def raise_for_body_error(body: dict[str, Any], model: str | None, partial_text: str = "") -> None:
    """Raise the typed error for an `error` object inside an HTTP 200 body (or a stream chunk)."""
    error = body.get("error")
    if not error:
        return
    if not isinstance(error, dict):
        error = {"message": str(error)}
    message = str(error.get("message") or "no message")
    raw_code = str(error.get("code", ""))
    code = int(raw_code) if raw_code.isdigit() and len(raw_code) <= 3 else 502
    if partial_text:
        raise StreamError(
            f"The stream from `{model}` broke off with an error ({code}: {message}) after {len(partial_text)} "
            "characters; the partial answer is kept. Try again or use another model.",
            partial_text=partial_text,
            status=code,
            model=model,
        )
    typed = error_for_status(
        code,
        message,
        model=model,
        metadata=as_dict(error.get("metadata")),
        availability=as_dict(error.get("availability")),
    )
    if type(typed) is RequestError and code == 400:
        # A 400 inside a 200 body is the upstream failing mid-request, not our arguments being wrong.
        typed = BadResponseError(
            f"`{model}` failed while answering ({code}: {message}). Try again or use another model.",
            status=code,
            model=model,
        )
    raise typed


def _citations(annotations: list[Any]) -> list[Source]:
    """The http(s) `url_citation`s, de-duplicated and numbered; any other kind of link is dropped."""
    seen: dict[str, Source] = {}
    for note in annotations:
        if not isinstance(note, dict) or note.get("type") != "url_citation":
            continue
        data = as_dict(note.get("url_citation"))
        url = data.get("url")
        if isinstance(url, str) and is_web_url(url) and url.strip() not in seen:
            seen[url.strip()] = Source(
                n=len(seen) + 1, url=url.strip(), title=_str(data.get("title")), snippet=_str(data.get("content"))
            )
    return list(seen.values())


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _reasoning_details(details: Any) -> str:
    """The readable part of `reasoning_details[]` (text and summaries; encrypted items are skipped)."""
    parts = []
    for item in details if isinstance(details, list) else []:
        if isinstance(item, dict):
            text = item.get("text") if item.get("type") == "reasoning.text" else item.get("summary")
            if isinstance(text, str) and text:
                parts.append(text)
    return "\n".join(parts)


def _content(content: Any, model: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):  # content parts
        return "".join(_str(part.get("text")) for part in content if isinstance(part, dict))
    raise _unreadable(model, "an answer whose content is not text")


def parse_completion(body: Any, requested: str) -> ChatResult:
    """Turn a chat completion body into a `ChatResult`, or raise the typed error it carries."""
    if not isinstance(body, dict):
        raise BadResponseError(
            f"OpenRouter's answer for `{requested}` was not a JSON object. Try again.", model=requested
        )
    raise_for_body_error(body, requested)
    choices = body.get("choices")
    if isinstance(choices, list) and choices and not isinstance(choices[0], dict):
        raise _unreadable(requested, "an answer")
    if not isinstance(choices, list) or not choices:
        raise BadResponseError(
            f"`{requested}` returned no choices (an empty answer). Try again or use another model.", model=requested
        )
    choice = choices[0]
    message = choice.get("message")
    answered_by = str(body.get("model") or requested)
    if message is not None and not isinstance(message, dict):
        raise _unreadable(answered_by, "an answer")
    message = message or {}
    if choice.get("finish_reason") == "error":
        reason = choice.get("native_finish_reason") or "error"
        raise BadResponseError(
            f"`{answered_by}` stopped with an error ({reason}) before finishing. Try again or use another model.",
            model=answered_by,
        )
    annotations = message.get("annotations")
    if annotations is not None and not isinstance(annotations, list):
        raise _unreadable(answered_by, "citations")
    usage, notes = usage_from_response(body.get("usage"))
    reasoning = message.get("reasoning")
    return ChatResult(
        text=_content(message.get("content"), answered_by),
        refusal=_str(message.get("refusal")) or None,
        reasoning=_str(reasoning) or _reasoning_details(message.get("reasoning_details")) or None,
        model_requested=requested,
        model=answered_by,
        provider=body["provider"] if isinstance(body.get("provider"), str) else None,
        generation_id=str(body["id"]) if isinstance(body.get("id"), str | int) else None,
        finish_reason=_str(choice.get("finish_reason")) or None,
        citations=_citations(annotations or []),
        usage=usage,
        warnings=notes,
        usage_missing=not isinstance(body.get("usage"), dict),
    )


class _StreamState:
    """What an SSE stream has delivered so far."""

    def __init__(self, requested: str) -> None:
        self.requested = requested
        self.body: dict[str, Any] = {}
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.details: list[Any] = []
        self.annotations: list[Any] = []
        self.finish_reason: str | None = None
        self.saw_choice = False
        self.saw_usage = False

    @property
    def partial(self) -> str:
        return "".join(self.text)

    def fail(self, what: str) -> BadResponseError:
        return _unreadable(str(self.body.get("model") or self.requested), what, self.partial)

    def take(self, chunk: dict[str, Any]) -> list[str]:
        """Absorb one chunk; return the new answer text it carried (for progress)."""
        for key in ("id", "model", "provider", "created"):
            if chunk.get(key) is not None:
                self.body.setdefault(key, chunk[key])
        if chunk.get("usage"):
            self.body["usage"] = chunk["usage"]
            self.saw_usage = True
        if chunk.get("error"):
            raise_for_body_error(chunk, str(self.body.get("model") or self.requested), self.partial)
        choices = chunk.get("choices")
        if choices is None:
            return []
        if not isinstance(choices, list):
            raise self.fail("a stream chunk")
        pieces = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise self.fail("a stream chunk")
            self.saw_choice = True
            delta = choice.get("delta")
            if delta is None:
                delta = {}
            if not isinstance(delta, dict):
                raise self.fail("a stream chunk")
            for key, into in (("content", self.text), ("refusal", self.refusal), ("reasoning", self.reasoning)):
                value = delta.get(key)
                if value is not None and not isinstance(value, str):
                    raise self.fail(f"a stream chunk whose {key} is not text")
                if value:
                    into.append(value)
                    if key == "content":
                        pieces.append(value)
            for key, into in (("annotations", self.annotations), ("reasoning_details", self.details)):
                value = delta.get(key)
                if value is not None and not isinstance(value, list):
                    raise self.fail(f"a stream chunk whose {key} are not a list")
                into.extend(value or [])
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                self.finish_reason = finish
        return pieces

    def assembled(self) -> dict[str, Any]:
        if not self.saw_choice:  # only usage and [DONE]: the same as `choices: []` in a plain answer
            return {**self.body, "choices": []}
        message = {
            "role": "assistant",
            "content": self.partial,
            "refusal": "".join(self.refusal) or None,
            "reasoning": "".join(self.reasoning) or None,
            "reasoning_details": self.details,
            "annotations": self.annotations,
        }
        return {**self.body, "choices": [{"finish_reason": self.finish_reason, "message": message}]}


async def assemble_stream(
    lines: AsyncIterator[str],
    requested: str,
    on_text: Callable[[str], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Read SSE lines into one chat completion body, as if the answer had not been streamed.

    `:` comment lines (keep-alives such as `: OPENROUTER PROCESSING`) are skipped. The answer is complete at
    `[DONE]`, or once both a finish reason and the usage chunk have arrived (some upstreams never send `[DONE]` or
    keep the connection open after it): reading stops there. A chunk with an `error` raises a `StreamError` that
    keeps the text received so far; a stream that ends without `[DONE]` or a finish reason does too.
    """
    state = _StreamState(requested)
    done = False
    async for line in lines:
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(data)
        except (json.JSONDecodeError, RecursionError):
            raise state.fail("a stream chunk that is not JSON") from None
        if not isinstance(chunk, dict):
            raise state.fail("a stream chunk")
        for piece in state.take(chunk):
            if on_text is not None:
                await on_text(piece)
        if state.saw_usage and state.finish_reason is not None:
            done = True
            break
    if not done and state.finish_reason is None:
        raise StreamError(
            f"The stream from `{requested}` ended before the answer was complete "
            f"({len(state.partial)} characters arrived). Try again.",
            partial_text=state.partial,
            model=requested,
        )
    return state.assembled()
