"""Streams from upstreams that misbehave: left open after the answer, or carrying chunks of the wrong shape."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.errors import BadResponseError
from openrouter_research_mcp.openrouter.client import OpenRouterClient

from ..fakes import FAKE_KEY
from ..support import PROMPTLY
from .helpers import BASE, chunk

MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {"id": "gen-s1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "cost": 0.0001}}


class OpenStream(httpx.AsyncByteStream):
    """An SSE body that sends `events` and then never ends, like an upstream that keeps the connection open."""

    def __init__(self, *events: dict[str, Any] | str) -> None:
        self.events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            yield f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode()
        await asyncio.Event().wait()  # never closes


@pytest.fixture
async def client() -> AsyncIterator[OpenRouterClient]:
    settings = load_settings(api_key=FAKE_KEY, base_url=BASE, max_retries=0, timeout=30)
    async with OpenRouterClient(settings) as c:
        yield c


@pytest.mark.parametrize(
    "events",
    [
        (chunk("The answer."), chunk(finish_reason="stop"), USAGE, "[DONE]"),  # open after [DONE]
        (chunk("The answer."), chunk(finish_reason="stop"), USAGE),  # no [DONE] at all, and open
    ],
    ids=["open after DONE", "no DONE, open"],
)
async def test_stream_answer_is_kept_when_the_upstream_leaves_the_stream_open(
    events: tuple[Any, ...], respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(200, stream=OpenStream(*events), headers={"content-type": "text/event-stream"})
    )
    started = time.monotonic()
    result = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], stream=True)
    assert result.text == "The answer." and result.usage.cost_usd == 0.0001
    assert time.monotonic() - started < PROMPTLY  # not the read timeout: the answer was complete


def odd(**choice: Any) -> dict[str, Any]:
    return {"id": "gen-s1", "model": "a/b", "choices": [choice]} if choice else {}


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "x", "choices": ["oops"]},
        {"id": "x", "choices": {"0": {"delta": {"content": "x"}}}},
        odd(delta="oops"),
        odd(delta={"content": 123}),
        odd(delta={"reasoning": 7}),
        odd(delta={"annotations": 5}),
    ],
    ids=[
        "choices of strings",
        "choices as object",
        "delta a string",
        "content a number",
        "reasoning a number",
        "annotations a number",
    ],
)
async def test_stream_malformed_chunk_is_a_typed_error(
    bad: dict[str, Any], respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in (chunk("Half "), bad)) + "data: [DONE]\n\n"
    respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})
    )
    with pytest.raises(BadResponseError, match="could not read.*malformed"):
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], stream=True)
