"""OpenRouterClient against a respx-faked OpenRouter: retries, deadlines, bad 200s, streaming, fallback, cost."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from openrouter_research_mcp.config import Settings, load_settings
from openrouter_research_mcp.errors import (
    AuthError,
    BadResponseError,
    CreditsError,
    ModelNotFoundError,
    ModerationError,
    OpenRouterError,
    RateLimitError,
    RequestError,
    StreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from openrouter_research_mcp.openrouter.client import OpenRouterClient
from openrouter_research_mcp.openrouter.pricing import Pricing, SessionUsage

from ..fakes import FAKE_KEY
from .helpers import BASE, RecordingSleep, chunk, citation, completion, error_body, sse

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture
def settings() -> Settings:
    return load_settings(api_key=FAKE_KEY, base_url=BASE, app_title="Test App", app_url="https://app.test")


@pytest.fixture
def ledger() -> SessionUsage:
    """A caller's usage ledger, passed with each call."""
    return SessionUsage()


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def client(settings: Settings, sleeps: RecordingSleep) -> AsyncIterator[OpenRouterClient]:
    async with OpenRouterClient(settings, sleep=sleeps) as c:
        yield c


def sent(route: respx.Route, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[index].request.content)
    return body


async def test_client_chat_sends_attribution_and_returns_answer(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, ledger: SessionUsage
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(
            200,
            json=completion(
                "Rayleigh scattering.",
                cost=0.00042,
                prompt_tokens=20,
                completion_tokens=7,
                reasoning_tokens=3,
                annotations=[
                    citation("https://a.test/1"),
                    citation("https://a.test/1"),
                    citation("https://b.test/2", "B", "bee"),
                ],
            ),
            headers={"X-Generation-Id": "gen-header"},
        )
    )
    result = await client.chat(
        MESSAGES,
        key=FAKE_KEY,
        usage=ledger,
        model="openai/gpt-4o-mini",
        temperature=0.2,
        max_tokens=50,
        fallback_models=[],
    )
    request = route.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert request.headers["HTTP-Referer"] == "https://app.test"
    assert request.headers["X-OpenRouter-Title"] == request.headers["X-Title"] == "Test App"
    assert sent(route) == {"model": "openai/gpt-4o-mini", "messages": MESSAGES, "temperature": 0.2, "max_tokens": 50}
    assert result.text == "Rayleigh scattering." and result.model == result.model_requested == "openai/gpt-4o-mini"
    assert result.generation_id == "gen-123"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.reasoning_tokens) == (20, 7, 3)
    assert result.usage.cost_usd == 0.00042 and result.usage.cost_source == "upstream"
    assert [c.url for c in result.citations] == ["https://a.test/1", "https://b.test/2"]
    assert result.citations[1].title == "B" and result.citations[1].snippet == "bee"
    assert [a.model for a in result.attempts] == ["openai/gpt-4o-mini"] and result.attempts[0].ok
    totals = ledger.by_model()["openai/gpt-4o-mini"]
    assert totals.calls == 1 and totals.cost_usd == 0.00042 and totals.prompt_tokens == 20


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 524, 529])
async def test_client_retries_transient_status(
    status: int, respx_openrouter: respx.MockRouter, client: OpenRouterClient, sleeps: RecordingSleep
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(status, json=error_body(status, "temporary")),
            httpx.Response(200, json=completion("ok")),
        ]
    )
    result = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert result.text == "ok" and route.call_count == 2 and len(sleeps.calls) == 1
    assert result.attempts[0].retries == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, RequestError),
        (401, AuthError),
        (402, CreditsError),
        (403, ModerationError),
        (404, ModelNotFoundError),
        (413, RequestError),
        (422, RequestError),
    ],
)
async def test_client_never_retries_client_errors(
    status: int,
    kind: type[OpenRouterError],
    respx_openrouter: respx.MockRouter,
    client: OpenRouterClient,
    sleeps: RecordingSleep,
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(status, json=error_body(status, "refused", reasons=["self-harm"]))
    )
    with pytest.raises(kind):
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert route.call_count == 1 and sleeps.calls == []


async def test_client_gives_up_after_max_retries(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, sleeps: RecordingSleep
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(503, json=error_body(503, "no providers"))
    )
    with pytest.raises(UpstreamUnavailableError) as caught:
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert route.call_count == 3 and len(sleeps.calls) == 2  # OPENROUTER_MAX_RETRIES defaults to 2
    assert caught.value.retries == 2 and caught.value.attempts[0].retries == 2
    assert "503" in caught.value.message and "fallback" in caught.value.message


async def test_client_honours_retry_after_seconds(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, sleeps: RecordingSleep
) -> None:
    respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(429, json=error_body(429, "slow"), headers={"Retry-After": "7"}),
            httpx.Response(200, json=completion()),
        ]
    )
    await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert sleeps.calls == [7.0]


async def test_client_honours_retry_after_http_date(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, sleeps: RecordingSleep
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(503, json=error_body(503, "busy"), headers={"Retry-After": when}),
            httpx.Response(200, json=completion()),
        ]
    )
    await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert len(sleeps.calls) == 1 and 17.0 <= sleeps.calls[0] <= 20.0


async def test_client_ignores_retry_after_beyond_a_minute(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, sleeps: RecordingSleep
) -> None:
    respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(429, json=error_body(429, "slow"), headers={"Retry-After": "3600"}),
            httpx.Response(200, json=completion()),
        ]
    )
    await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert len(sleeps.calls) == 1 and sleeps.calls[0] <= 0.5


async def test_client_skips_retry_that_would_outlive_deadline(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, sleeps: RecordingSleep
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(429, json=error_body(429, "slow"), headers={"Retry-After": "5"}),
            httpx.Response(200, json=completion()),
        ]
    )
    with pytest.raises(RateLimitError):
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], deadline=time.monotonic() + 2.0)
    assert route.call_count == 1 and sleeps.calls == []


async def test_client_retries_within_deadline(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, sleeps: RecordingSleep
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(429, json=error_body(429, "slow"), headers={"Retry-After": "0.5"}),
            httpx.Response(200, json=completion()),
        ]
    )
    await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], deadline=time.monotonic() + 30.0)
    assert route.call_count == 2 and sleeps.calls == [0.5]


async def test_client_expired_deadline_sends_nothing(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion()))
    with pytest.raises(UpstreamTimeoutError):
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], deadline=time.monotonic() - 1)
    assert route.call_count == 0


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")]
)
async def test_client_retries_transport_failures(
    failure: Exception, respx_openrouter: respx.MockRouter, client: OpenRouterClient, sleeps: RecordingSleep
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        side_effect=[failure, httpx.Response(200, json=completion("after"))]
    )
    assert (await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])).text == "after"
    assert route.call_count == 2 and len(sleeps.calls) == 1


async def test_client_connection_refused_says_where(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    respx_openrouter.post("/chat/completions").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(UpstreamUnavailableError) as caught:
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert BASE in caught.value.message and "OPENROUTER_BASE_URL" in caught.value.message


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (error_body(402, "Insufficient credits"), CreditsError, "credits"),
        (error_body(400, "Provider returned error"), BadResponseError, "failed while answering"),
        ({"id": "gen-1", "model": "openai/gpt-4o-mini", "choices": []}, BadResponseError, "no choices"),
        (
            {
                "id": "gen-1",
                "model": "openai/gpt-4o-mini",
                "choices": [
                    {"finish_reason": "error", "native_finish_reason": "upstream_error", "message": {"content": "par"}}
                ],
            },
            BadResponseError,
            "upstream_error",
        ),
        (["not", "an", "object"], BadResponseError, "not a JSON object"),
    ],
)
async def test_client_http_200_failures_become_typed_errors(
    body: Any, kind: type[OpenRouterError], words: str, respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(kind) as caught:
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert words in caught.value.message and route.call_count == 1


async def test_client_http_200_transient_error_body_is_retried(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(200, json=error_body(502, "Provider returned error")),
            httpx.Response(200, json=completion()),
        ]
    )
    assert (await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])).text == "Hello."
    assert route.call_count == 2


async def test_client_non_json_body(respx_openrouter: respx.MockRouter, client: OpenRouterClient) -> None:
    respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(200, text="<html>Bad gateway</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(BadResponseError, match="not JSON"):
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])


async def test_client_stream_skips_comments_and_assembles(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    usage = {
        "id": "gen-s1",
        "model": "openai/gpt-4o-mini",
        "choices": [],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 4,
            "total_tokens": 13,
            "cost": 0.00002,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }
    body = sse(
        ": OPENROUTER PROCESSING",
        chunk(reasoning="thinking "),
        ": OPENROUTER PROCESSING",
        chunk("Blue "),
        chunk("light.", annotations=[citation("https://sky.test")]),
        chunk(finish_reason="stop"),
        usage,
    )
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    )
    pieces: list[str] = []

    async def on_text(text: str) -> None:
        pieces.append(text)

    result = await client.chat(MESSAGES, key=FAKE_KEY, stream=True, fallback_models=[], on_text=on_text)
    assert sent(route)["stream"] is True
    assert result.text == "Blue light." and pieces == ["Blue ", "light."]
    assert result.reasoning == "thinking " and result.finish_reason == "stop"
    assert [c.url for c in result.citations] == ["https://sky.test"]
    assert result.usage.total_tokens == 13 and result.usage.cost_usd == 0.00002 and result.usage.reasoning_tokens == 2
    assert result.generation_id == "gen-s1"


async def test_client_stream_mid_stream_error_keeps_partial_text(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    failure = {
        "id": "gen-s1",
        "model": "openai/gpt-4o-mini",
        "error": {"code": 502, "message": "Provider died"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(
            200,
            content=sse(chunk("The sky is "), chunk("blue because"), failure, done=False),
            headers={"content-type": "text/event-stream"},
        )
    )
    with pytest.raises(StreamError) as caught:
        await client.chat(MESSAGES, key=FAKE_KEY, stream=True, fallback_models=[])
    assert caught.value.partial_text == "The sky is blue because"
    assert "Provider died" in caught.value.message and route.call_count == 1


async def test_client_stream_cut_short_is_an_error(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=sse(chunk("half an "), done=False), headers={"content-type": "text/event-stream"}
        )
    )
    with pytest.raises(StreamError) as caught:
        await client.chat(MESSAGES, key=FAKE_KEY, stream=True, fallback_models=[])
    assert caught.value.partial_text == "half an "


async def test_client_fallback_native_and_client_side(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, ledger: SessionUsage
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=completion("from c", model="c/third"))
    )
    result = await client.chat(
        MESSAGES, key=FAKE_KEY, usage=ledger, model="a/gone", fallback_models=["b/second", "c/third"]
    )
    # One request: the primary in `model`, the fallbacks (never the primary again) in `models` for OpenRouter.
    assert route.call_count == 1
    assert sent(route, 0)["model"] == "a/gone" and sent(route, 0)["models"] == ["b/second", "c/third"]
    assert result.model_requested == "a/gone" and result.model == "c/third" and result.text == "from c"
    assert [(a.model, a.ok, a.answered_by, a.fallbacks) for a in result.attempts] == [
        ("a/gone", True, "c/third", ["b/second", "c/third"]),
    ]
    assert ledger.by_model()["c/third"].calls == 1


async def test_client_long_chain_sends_three_fallbacks_and_walks_the_rest(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, ledger: SessionUsage
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(404, json=error_body(404, "No endpoints found for a/gone")),
            httpx.Response(200, json=completion("from e", model="e/fifth")),
        ]
    )
    chain = ["b/two", "c/three", "d/four", "e/fifth", "f/six"]
    result = await client.chat(MESSAGES, key=FAKE_KEY, usage=ledger, model="a/gone", fallback_models=chain)
    assert [(sent(route, i)["model"], sent(route, i).get("models")) for i in range(route.call_count)] == [
        ("a/gone", ["b/two", "c/three", "d/four"]),  # OpenRouter takes at most 3 in `models`
        ("e/fifth", ["f/six"]),  # the rest of the chain, after the window OpenRouter already tried
    ]
    assert [(a.model, a.ok, a.status) for a in result.attempts] == [("a/gone", False, 404), ("e/fifth", True, None)]
    assert "a/gone" in (result.attempts[0].error or "") and result.model == "e/fifth"
    usage = ledger.by_model()
    assert usage["a/gone"].failed_calls == 1 and usage["e/fifth"].calls == 1


async def test_client_falls_back_after_retries_and_on_context_length(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(
                400, json=error_body(400, "maximum context length exceeded", error_type="context_length_exceeded")
            ),
            *[httpx.Response(502, json=error_body(502, "bad gateway"))] * 3,
            httpx.Response(200, json=completion("third time", model="g/big")),
        ]
    )
    chain = ["b/1", "c/2", "d/3", "e/flaky", "f/4", "h/5", "i/6", "g/big"]
    result = await client.chat(MESSAGES, key=FAKE_KEY, model="a/small", fallback_models=chain)
    assert route.call_count == 5 and result.model == "g/big"
    assert [(a.model, a.status, a.retries) for a in result.attempts] == [
        ("a/small", 400, 0),
        ("e/flaky", 502, 2),
        ("g/big", None, 0),
    ]


async def test_client_does_not_fall_back_on_auth_failure(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(401, json=error_body(401, "User not found."))
    )
    with pytest.raises(AuthError) as caught:
        await client.chat(MESSAGES, key=FAKE_KEY, model="a/one", fallback_models=["b/two"])
    assert route.call_count == 1 and [a.model for a in caught.value.attempts] == ["a/one"]


async def test_client_all_models_failing_reports_every_attempt(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(404, json=error_body(404, "unknown model"))
    )
    with pytest.raises(ModelNotFoundError) as caught:
        await client.chat(
            MESSAGES, key=FAKE_KEY, model="a/one", fallback_models=["b/two", "c/three", "d/four", "e/five"]
        )
    assert [a.model for a in caught.value.attempts] == ["a/one", "e/five"]
    assert not any(a.ok for a in caught.value.attempts)


async def test_client_uses_configured_default_and_fallbacks(respx_openrouter: respx.MockRouter) -> None:
    settings = load_settings(api_key=FAKE_KEY, base_url=BASE, default_model="x/default", fallback_models="y/one, z/two")
    route = respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion()))
    async with OpenRouterClient(settings) as client:
        await client.chat(MESSAGES, key=FAKE_KEY)
    assert sent(route)["model"] == "x/default" and sent(route)["models"] == ["y/one", "z/two"]


async def test_client_cost_from_pricing_when_usage_lacks_cost(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, ledger: SessionUsage
) -> None:
    respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=completion(cost=None, prompt_tokens=1000, completion_tokens=500))
    )
    seen: list[str] = []

    def pricing(model: str) -> Pricing | None:
        seen.append(model)
        return Pricing.model_validate({"prompt": "0.000001", "completion": "0.000002", "request": "0.001"})

    client.pricing = pricing
    result = await client.chat(MESSAGES, key=FAKE_KEY, usage=ledger, fallback_models=[])
    assert result.usage.cost_source == "pricing" and seen == ["openai/gpt-4o-mini"]
    assert result.usage.cost_usd == pytest.approx(1000 * 1e-6 + 500 * 2e-6 + 0.001)
    assert ledger.totals().cost_usd == pytest.approx(0.003)


async def test_client_cost_unknown_without_pricing(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, ledger: SessionUsage
) -> None:
    respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion(cost=None)))
    result = await client.chat(MESSAGES, key=FAKE_KEY, usage=ledger, fallback_models=[])
    assert result.usage.cost_usd is None and result.usage.cost_source == "unknown"
    assert ledger.totals().calls_with_unknown_cost == 1


async def test_client_missing_key_fails_before_any_request(respx_openrouter: respx.MockRouter) -> None:
    route = respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion()))
    async with OpenRouterClient(load_settings(base_url=BASE)) as client:
        with pytest.raises(AuthError) as caught:
            await client.chat(MESSAGES, key="")
    assert "OPENROUTER_API_KEY" in caught.value.message and "openrouter.ai/settings/keys" in caught.value.message
    assert route.call_count == 0


async def test_client_get_json_needs_no_key_for_models(respx_openrouter: respx.MockRouter) -> None:
    route = respx_openrouter.get("/models").mock(return_value=httpx.Response(200, json={"data": []}))
    async with OpenRouterClient(load_settings(base_url=BASE)) as client:
        assert await client.get_json("/models") == {"data": []}
        with pytest.raises(AuthError):
            await client.get_json("/key", auth=True)
    assert "Authorization" not in route.calls[0].request.headers


async def test_client_secret_never_in_error_text_or_repr(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient, settings: Settings
) -> None:
    respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(401, json=error_body(401, f"Invalid key {FAKE_KEY} for this account"))
    )
    with pytest.raises(AuthError) as caught:
        await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    error = caught.value
    rendered = [
        str(error),
        repr(error),
        error.message,
        *map(str, error.args),
        *(a.model_dump_json() for a in error.attempts),
        repr(settings),
        str(settings),
    ]
    assert all(FAKE_KEY not in text for text in rendered)
    assert "***" in error.message and FAKE_KEY not in settings.model_dump_json()


async def test_client_stream_with_no_choices_is_an_empty_answer_error(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    usage_only = {
        "id": "gen-s1",
        "model": "openai/gpt-4o-mini",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3},
    }
    respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=sse(": OPENROUTER PROCESSING", usage_only), headers={"content-type": "text/event-stream"}
        )
    )
    with pytest.raises(BadResponseError, match="no choices"):
        await client.chat(MESSAGES, key=FAKE_KEY, stream=True, fallback_models=[])


async def test_client_cost_estimate_includes_web_search_fee(
    respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    body = completion(cost=None, prompt_tokens=0, completion_tokens=0)
    body["usage"]["server_tool_use_details"] = {
        "web_search_requests": 2,
        "tool_calls_requested": 3,
        "tool_calls_executed": 3,
    }
    respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=body))
    client.pricing = lambda _model: Pricing.model_validate({"prompt": "0.000001", "completion": "0.000002"})
    tools = [
        {"type": "openrouter:web_search", "parameters": {"engine": "parallel"}},
        {"type": "openrouter:web_fetch", "parameters": {"engine": "exa"}},
    ]
    result = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[], tools=tools)
    # Two searches at Parallel's price per request, one page read at Exa's: the engines the request named.
    assert (result.usage.web_search_requests, result.usage.web_fetch_requests) == (2, 1)
    assert result.usage.cost_usd == pytest.approx(2 * 0.005 + 0.001) and result.usage.cost_source == "pricing"


@pytest.mark.parametrize(
    ("odd", "text"),
    [
        ({"provider": {"name": "OpenAI"}}, "fine"),
        (
            {
                "choices": [
                    {
                        "finish_reason": "stop",
                        "message": {
                            "content": "x",
                            "annotations": [{"type": "url_citation", "url_citation": "https://a.test"}],
                        },
                    }
                ]
            },
            "x",
        ),
        ({"usage": {"prompt_tokens": "many", "completion_tokens_details": ["x"]}}, "fine"),
    ],
)
async def test_client_odd_shapes_are_read_around(
    odd: dict[str, Any], text: str, respx_openrouter: respx.MockRouter, client: OpenRouterClient
) -> None:
    body = {**completion("fine"), **odd}
    respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=body))
    result = await client.chat(MESSAGES, key=FAKE_KEY, fallback_models=[])
    assert result.text == text and result.citations == []
    assert result.provider == (None if "provider" in odd else "OpenAI")
    assert result.usage.prompt_tokens == (0 if "usage" in odd else 12)
