"""Builders for chat completion bodies and SSE streams, shaped like OpenRouter's."""

from __future__ import annotations

import json
from typing import Any

import respx

BASE = "http://fake.test/api/v1"


def mock_upstream(**options: Any) -> respx.MockRouter:
    """respx, routing at httpx's client (`_transport_for_url`), where every OpenRouter request is routed: the
    server's own upstream transport (`openrouter/pool.py`) is not httpcore, which respx patches by default."""
    router: respx.MockRouter = respx.mock(using="httpx", **options)
    return router


def completion(
    text: str = "Hello.",
    model: str = "openai/gpt-4o-mini",
    *,
    cost: float | None = 0.0001,
    prompt_tokens: int = 12,
    completion_tokens: int = 5,
    reasoning_tokens: int = 0,
    annotations: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    reasoning: str | None = None,
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }
    if cost is not None:
        usage["cost"] = cost
    return {
        "id": "gen-123",
        "object": "chat.completion",
        "created": 1760000000,
        "model": model,
        "provider": "OpenAI",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "native_finish_reason": finish_reason,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "reasoning": reasoning,
                    "annotations": annotations or [],
                },
            }
        ],
        "usage": usage,
    }


def citation(url: str, title: str = "A source", content: str = "a passage") -> dict[str, Any]:
    return {
        "type": "url_citation",
        "url_citation": {"url": url, "title": title, "content": content, "start_index": 0, "end_index": 5},
    }


def error_body(code: int, message: str, **metadata: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "metadata": metadata or None}}


def sse(*events: dict[str, Any] | str, done: bool = True) -> bytes:
    """An SSE body: dicts become `data:` events, strings are sent as raw lines (e.g. `: OPENROUTER PROCESSING`)."""
    out = []
    for event in events:
        out.append(event if isinstance(event, str) else f"data: {json.dumps(event)}")
        out.append("")
    if done:
        out += ["data: [DONE]", ""]
    return ("\n".join(out) + "\n").encode()


def chunk(
    content: str | None = None,
    *,
    model: str = "openai/gpt-4o-mini",
    finish_reason: str | None = None,
    reasoning: str | None = None,
    annotations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning"] = reasoning
    if annotations:
        delta["annotations"] = annotations
    return {
        "id": "gen-s1",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": model,
        "provider": "OpenAI",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


class RecordingSleep:
    """Stands in for asyncio.sleep: records each pause instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
