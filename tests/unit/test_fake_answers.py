"""What the fake OpenRouter answers (2026): BYOK cost, price tiers and discounts, refusals, reasoning_details,
response healing, judge scores, output pacing and attachment fees."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..fakes.common import tokens_of
from ..fakes.openrouter import FAULT_KINDS, FakeOpenRouter
from ..support import PROMPTLY
from .test_fake_openrouter import AUTH, QUESTION, chat_body, sse_events

PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 fake").decode()
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
REPORT = {
    "type": "object",
    "properties": {"verdict": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["verdict", "score"],
    "additionalProperties": False,
}
REPORT_FORMAT = {"type": "json_schema", "json_schema": {"name": "report", "strict": True, "schema": REPORT}}


@pytest.fixture
def http(fake_openrouter: FakeOpenRouter) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_openrouter.base_url, headers=AUTH, timeout=10, verify=False) as client:
        yield client


def complete(http: httpx.Client, model: str = "openai/gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    response = http.post("/chat/completions", json=chat_body(model, **extra))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stream(http: httpx.Client, model: str = "openai/gpt-4o-mini", **extra: Any) -> list[Any]:
    with http.stream("POST", "/chat/completions", json=chat_body(model, stream=True, **extra)) as response:
        return sse_events(list(response.iter_lines()))


def deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e.get("choices")]


# ------------------------------------------------------------------------------------------------ cost


def test_fake_byok_charges_five_percent_and_reports_the_provider_charge(
    fake_openrouter: FakeOpenRouter, http: httpx.Client
) -> None:
    usage = complete(http, "openai/gpt-4o")["usage"]
    charge = usage["prompt_tokens"] * 0.0000025 + usage["completion_tokens"] * 0.00001
    assert usage["is_byok"] is False and usage["cost"] == pytest.approx(charge)
    assert usage["cost_details"] == {"upstream_inference_cost": None}
    fake_openrouter.byok = True
    usage = complete(http, "openai/gpt-4o")["usage"]
    assert usage["is_byok"] is True
    assert usage["cost"] == pytest.approx(0.05 * charge)
    assert usage["cost_details"]["upstream_inference_cost"] == pytest.approx(charge)


def test_fake_byok_keeps_openrouter_fees_whole(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    fake_openrouter.byok = True
    search = {"type": "openrouter:web_search", "parameters": {"engine": "exa"}}
    usage = complete(http, "openai/gpt-4o", tools=[search], tool_choice="required")["usage"]
    charge = usage["prompt_tokens"] * 0.0000025 + usage["completion_tokens"] * 0.00001
    assert usage["cost"] == pytest.approx(0.05 * charge + 0.007)  # exa: $0.007 a search, charged by OpenRouter


@pytest.mark.parametrize(
    ("prompt_chars", "prompt_price", "completion_price"),
    [
        (4 * 199_998, 0.00000125, 0.00001),  # 199,999 prompt tokens: base prices
        (4 * 199_999, 0.0000025, 0.000015),  # 200,000: the override tier
    ],
)
def test_fake_cost_applies_the_price_tier_the_prompt_reaches(
    http: httpx.Client, prompt_chars: int, prompt_price: float, completion_price: float
) -> None:
    body = {"model": "google/gemini-2.5-pro", "messages": [{"role": "user", "content": "x" * prompt_chars}]}
    usage = http.post("/chat/completions", json=body).json()["usage"]
    assert usage["prompt_tokens"] == tokens_of("x" * prompt_chars) + 1
    expected = usage["prompt_tokens"] * prompt_price + usage["completion_tokens"] * completion_price
    assert usage["cost"] == pytest.approx(expected)


def test_fake_cost_takes_the_discount_off(http: httpx.Client) -> None:
    usage = complete(http, "deepseek/deepseek-r1")["usage"]  # 25% off $0.40 / $2.00 per million
    expected = 0.75 * (usage["prompt_tokens"] * 0.0000004 + usage["completion_tokens"] * 0.000002)
    assert usage["cost"] == pytest.approx(expected)


def test_fake_cost_counts_images_and_ocr(http: httpx.Client) -> None:
    image = {"type": "image_url", "image_url": {"url": PNG}}
    messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}, image, image]}]
    usage = http.post("/chat/completions", json={"model": "openai/gpt-image-1", "messages": messages}).json()["usage"]
    tokens = usage["prompt_tokens"] * 0.000005 + usage["completion_tokens"] * 0.00004
    assert usage["cost"] == pytest.approx(tokens + 2 * 0.04)  # pricing.image per image
    pdf = {"type": "file", "file": {"filename": "paper.pdf", "file_data": PDF}}
    messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}, pdf]}]
    costs = {}
    for engine in ("pdf-text", "mistral-ocr"):
        plugins = [{"id": "file-parser", "pdf": {"engine": engine}}]
        body = {"model": "openai/gpt-4o", "messages": messages, "plugins": plugins}
        answer = http.post("/chat/completions", json=body).json()  # gpt-4o reads no files: the parser does
        assert answer["choices"][0]["message"]["content"].endswith("[saw 1 pdf]")
        costs[engine] = answer["usage"]["cost"]
    assert costs["mistral-ocr"] == pytest.approx(costs["pdf-text"] + 0.002)


# ---------------------------------------------------------------------------------------- refusal, reasoning


def test_fake_refusal_has_null_content(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    fake_openrouter.refusals["openai/gpt-4o"] = "I can't help with that request."
    choice = complete(http, "openai/gpt-4o")["choices"][0]
    assert choice["message"]["content"] is None and choice["finish_reason"] == "stop"
    assert choice["message"]["refusal"] == "I can't help with that request."
    parts = deltas(stream(http, "openai/gpt-4o"))
    assert "".join(d.get("refusal") or "" for d in parts) == "I can't help with that request."
    assert not any(d.get("content") for d in parts)
    assert complete(http, "openai/gpt-4o-mini")["choices"][0]["message"]["refusal"] is None  # only that model


def test_fake_claude_sends_reasoning_only_as_details(http: httpx.Client) -> None:
    message = complete(http, "anthropic/claude-sonnet-4", reasoning={"effort": "high"})["choices"][0]["message"]
    assert message["reasoning"] is None
    assert message["reasoning_details"] == [
        {
            "type": "reasoning.summary",
            "summary": f"Thinking about: {QUESTION}",
            "format": "anthropic-claude-v1",
            "index": 0,
        }
    ]
    streamed = deltas(stream(http, "anthropic/claude-sonnet-4", reasoning={"effort": "high"}))
    assert [x for d in streamed for x in d.get("reasoning_details", [])] == message["reasoning_details"]
    assert not any(d.get("reasoning") for d in streamed)
    other = complete(http, "deepseek/deepseek-r1", reasoning={"effort": "high"})["choices"][0]["message"]
    assert other["reasoning"] == f"Thinking about: {QUESTION}" and "reasoning_details" not in other


def test_fake_max_completion_tokens_cuts_the_answer(http: httpx.Client) -> None:
    body = complete(http, max_completion_tokens=3)
    assert body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 3


# ------------------------------------------------------------------------------------------ response healing


def test_fake_json_fault_kinds_exist() -> None:
    assert {"bad_json", "wrong_json"} <= FAULT_KINDS


@pytest.mark.parametrize(
    ("plugins", "stream_it", "healed"),
    [([], False, False), ([{"id": "response-healing"}], False, True), ([{"id": "response-healing"}], True, False)],
    ids=["no-plugin", "healed", "streamed"],
)
def test_fake_bad_json_is_healed_only_on_whole_bodies_with_the_plugin(
    fake_openrouter: FakeOpenRouter, http: httpx.Client, plugins: list[Any], stream_it: bool, healed: bool
) -> None:
    fake_openrouter.fail(kind="bad_json")
    if stream_it:
        text = "".join(
            d.get("content") or "" for d in deltas(stream(http, response_format=REPORT_FORMAT, plugins=plugins))
        )
    else:
        text = complete(http, response_format=REPORT_FORMAT, plugins=plugins)["choices"][0]["message"]["content"]
    if healed:
        assert set(json.loads(text)) == {"verdict", "score"}
    else:
        assert text.endswith(",") and not text.endswith("},")
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
    assert set(json.loads(complete(http, response_format=REPORT_FORMAT)["choices"][0]["message"]["content"])) == {
        "verdict",
        "score",
    }  # the fault was used up


def test_fake_wrong_json_lacks_a_required_property_even_when_healed(
    fake_openrouter: FakeOpenRouter, http: httpx.Client
) -> None:
    fake_openrouter.fail(kind="wrong_json")
    body = complete(http, response_format=REPORT_FORMAT, plugins=[{"id": "response-healing"}])
    assert json.loads(body["choices"][0]["message"]["content"]) == {"score": 1}


# ------------------------------------------------------------------------------------------ benchmark knobs


def judge_format() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
        "required": ["score", "reason"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "judgement", "strict": True, "schema": schema}}


def test_fake_judge_scores_the_judged_models_quality(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    fake_openrouter.quality = {"openai/gpt-4o": 9, "deepseek/deepseek-r1": 3}

    def judge(prompt: str) -> dict[str, Any]:
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
        answer = http.post("/chat/completions", json=body | {"response_format": judge_format()}).json()
        verdict: dict[str, Any] = json.loads(answer["choices"][0]["message"]["content"])
        return verdict

    assert judge('Judge the answer of model="openai/gpt-4o": ...')["score"] == 9
    verdict = judge('Answer by model="deepseek/deepseek-r1", compared with model="openai/gpt-4o".')
    assert verdict["score"] == 3 and verdict["reason"]
    assert judge('model="anthropic/claude-sonnet-4" wrote this.')["score"] == 5  # not rated: the middle


def test_fake_paces_streamed_output_after_the_latency(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    fake_openrouter.text_answers["openai/gpt-4o"] = "word " * 80  # 400 characters: about 100 tokens
    fake_openrouter.model_latency["openai/gpt-4o"] = 0.2
    fake_openrouter.model_tokens_per_second["openai/gpt-4o"] = 200.0
    started, arrivals = time.monotonic(), []
    with http.stream("POST", "/chat/completions", json=chat_body("openai/gpt-4o", stream=True)) as response:
        for line in response.iter_lines():
            event = json.loads(line[6:]) if line.startswith("data: {") else {}
            if event.get("choices") and event["choices"][0]["delta"].get("content"):
                arrivals.append(time.monotonic())
    first, last = arrivals[0] - started, arrivals[-1] - arrivals[0]
    assert 0.2 <= first < PROMPTLY  # the latency is the time to first token
    assert 0.4 <= last < PROMPTLY  # the other ~96 tokens at 200 a second
    assert len(arrivals) >= 20  # paced in small pieces
    started = time.monotonic()
    usage = complete(http, "openai/gpt-4o")["usage"]  # a whole body waits for all its tokens
    assert time.monotonic() - started >= 0.2 + usage["completion_tokens"] / 200.0
    fake_openrouter.model_tokens_per_second.clear()
    started = time.monotonic()
    stream(http, "openai/gpt-4o")
    assert time.monotonic() - started < first + last  # unpaced: all at once after the latency
