"""The client against 2026 answers (respx): refusals, reasoning details, availability codes, and the key never
coming back inside an answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.errors import ModelNotFoundError, ModelUnavailableError
from openrouter_research_mcp.openrouter.client import OpenRouterClient

from ..fakes import FAKE_KEY
from .helpers import BASE, chunk, completion, sse

MESSAGES = [{"role": "user", "content": "Tell me."}]


@pytest.fixture
async def client() -> AsyncIterator[OpenRouterClient]:
    async with OpenRouterClient(load_settings(api_key=FAKE_KEY, base_url=BASE, max_retries=0)) as c:
        yield c


def stream(*events: dict[str, Any] | str) -> httpx.Response:
    return httpx.Response(200, content=sse(*events), headers={"content-type": "text/event-stream"})


async def test_client_reads_a_refusal_as_the_models_refusal(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    body = completion()
    body["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=body))
    result = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert result.text == "" and result.refusal == "I can't help with that."
    refusal = chunk()
    refusal["choices"][0]["delta"] = {"role": "assistant", "refusal": "I can't "}
    rest = chunk(finish_reason="stop")
    rest["choices"][0]["delta"] = {"refusal": "help."}
    respx_openrouter.post("/chat/completions").mock(return_value=stream(refusal, rest))
    streamed = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], stream=True)
    assert streamed.refusal == "I can't help." and streamed.text == ""


async def test_client_reads_reasoning_details(respx_openrouter: respx.MockRouter, client: OpenRouterClient) -> None:
    body = completion("42")
    body["choices"][0]["message"]["reasoning_details"] = [
        {"type": "reasoning.summary", "summary": "Weighed two options.", "format": "anthropic-claude-v1"},
        {"type": "reasoning.encrypted", "data": "c2VjcmV0"},
        {"type": "reasoning.text", "text": "Then chose one."},
    ]
    respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=body))
    result = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert result.reasoning == "Weighed two options.\nThen chose one."
    detail = chunk("42", finish_reason="stop")
    detail["choices"][0]["delta"]["reasoning_details"] = [{"type": "reasoning.summary", "summary": "Thought."}]
    respx_openrouter.post("/chat/completions").mock(return_value=stream(detail))
    assert (await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], stream=True)).reasoning == "Thought."


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("privacy_restricted", "openrouter.ai/settings/privacy"),
        ("free_variant_ended", "drop `:free`"),
    ],
)
async def test_client_explains_availability_codes_and_offers_fallbacks(
    code: str, says: str, respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    error = {
        "code": 404,
        "message": "No allowed providers are available for the selected model.",
        "metadata": {"error_type": code},
        "availability": {
            "code": code,
            "retryable": False,
            "requested_models": ["a/b:free"],
            "fallback_models": ["a/b", "c/d"],
        },
    }
    respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(404, json={"error": error}))
    with pytest.raises(ModelUnavailableError) as caught:
        await client.chat(MESSAGES, key=FAKE_KEY, model="a/b:free", fallback_models=[])
    assert says in caught.value.message and "`a/b`, `c/d`" in caught.value.message
    assert caught.value.fallback_models == ["a/b", "c/d"] and not isinstance(caught.value, ModelNotFoundError)


async def test_client_moves_on_from_an_unavailable_model(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    error = {
        "code": 404,
        "message": "No endpoints found matching your data policy",
        "availability": {"code": "privacy_restricted"},
    }
    route = respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(404, json={"error": error}),
            httpx.Response(200, json=completion("fine", model="e/five")),
        ]
    )
    result = await client.chat(MESSAGES, key=FAKE_KEY, model="a/one", fallback_models=["b/2", "c/3", "d/4", "e/five"])
    assert route.call_count == 2 and result.model == "e/five"


async def test_client_redacts_the_key_from_answers(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    body = completion(f"Your key is {FAKE_KEY}.")
    body["choices"][0]["message"]["annotations"] = [
        {"type": "url_citation", "url_citation": {"url": "https://a.test/", "title": FAKE_KEY, "content": FAKE_KEY}}
    ]
    respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=body))
    result = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert FAKE_KEY not in result.model_dump_json() and result.text == "Your key is ***."
    respx_openrouter.post("/chat/completions").mock(return_value=stream(chunk(f"k={FAKE_KEY}", finish_reason="stop")))
    streamed = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], stream=True)
    assert streamed.text == "k=***"
