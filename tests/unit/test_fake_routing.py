"""What the fake OpenRouter refuses before answering (2026): the fallback list cap and order, availability errors,
data policy, provider preferences, reasoning efforts, strict schemas, require_parameters, and content parts."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..fakes.openrouter import FakeOpenRouter
from .test_fake_openrouter import AUTH, QUESTION, chat_body

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake image").decode()
PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 fake").decode()
WAV = base64.b64encode(b"RIFF fake audio").decode()
IMAGE_PART = {"type": "image_url", "image_url": {"url": PNG}}
PDF_PART = {"type": "file", "file": {"filename": "paper.pdf", "file_data": PDF}}
AUDIO_PART = {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}


@pytest.fixture
def http(fake_openrouter: FakeOpenRouter) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_openrouter.base_url, headers=AUTH, timeout=5, verify=False) as client:
        yield client


def post(http: httpx.Client, model: str = "openai/gpt-4o-mini", **extra: Any) -> httpx.Response:
    return http.post("/chat/completions", json=chat_body(model, **extra))


def error(response: httpx.Response) -> dict[str, Any]:
    found: dict[str, Any] = response.json()["error"]
    return found


def with_parts(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": QUESTION}, *parts]}]


# ------------------------------------------------------------------------------------------- fallback list


def test_fake_rejects_more_than_three_fallbacks(http: httpx.Client) -> None:
    models = ["openai/gpt-4o", "anthropic/claude-3.5-sonnet", "deepseek/deepseek-r1", "openai/gpt-4o-mini"]
    response = post(http, models=models)
    assert response.status_code == 400
    assert error(response) == {"code": 400, "message": "'models' array must have 3 items or fewer."}
    assert post(http, models=models[:3]).status_code == 200


def test_fake_tries_model_first_then_models_in_order(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    models = ["openai/gpt-4o", "anthropic/claude-3.5-sonnet", "deepseek/deepseek-r1"]
    assert post(http, "openai/gpt-4o-mini", models=models).json()["model"] == "openai/gpt-4o-mini"
    fake_openrouter.fail(kind="model_down", model="openai/gpt-4o-mini")
    assert post(http, "openai/gpt-4o-mini", models=models).json()["model"] == "openai/gpt-4o"
    fake_openrouter.fail(kind="model_down", model="openai/gpt-4o")
    fake_openrouter.fail(kind="model_down", model="anthropic/claude-3.5-sonnet")
    assert post(http, "openai/gpt-4o", models=models).json()["model"] == "deepseek/deepseek-r1"


def test_fake_fallback_walk_skips_rejected_candidates(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    fake_openrouter.data_collecting = {"openai/gpt-4o"}
    body = post(http, "openai/gpt-4o", models=["anthropic/claude-3.5-sonnet"], provider={"data_collection": "deny"})
    assert body.status_code == 200 and body.json()["model"] == "anthropic/claude-3.5-sonnet"


# -------------------------------------------------------------------------------------- availability errors


def test_fake_fault_carries_availability(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    availability = {
        "code": "free_variant_ended",
        "retryable": False,
        "requested_models": ["meta-llama/llama-3.3-70b-instruct:free"],
        "fallback_models": ["meta-llama/llama-3.3-70b-instruct"],
    }
    fake_openrouter.fail(404, message="The free variant has ended.", availability=availability)
    response = post(http, "meta-llama/llama-3.3-70b-instruct:free")
    assert response.status_code == 404
    assert error(response) == {
        "code": 404,
        "message": "The free variant has ended.",
        "availability": availability,
        "metadata": {"error_type": "free_variant_ended"},
    }


@pytest.mark.parametrize("provider", [{"data_collection": "deny"}, {"zdr": True}])
def test_fake_data_policy_refuses_data_collecting_models(
    fake_openrouter: FakeOpenRouter, http: httpx.Client, provider: dict[str, Any]
) -> None:
    assert post(http, "openai/gpt-4o", provider=provider).status_code == 200  # nobody collects data by default
    fake_openrouter.data_collecting = {"openai/gpt-4o"}
    response = post(http, "openai/gpt-4o", provider=provider)
    assert response.status_code == 404
    assert error(response)["message"] == "No endpoints found matching your data policy"
    assert error(response)["availability"] == {
        "code": "privacy_restricted",
        "retryable": False,
        "requested_models": ["openai/gpt-4o"],
        "fallback_models": ["openai/gpt-4o-mini"],
    }
    assert error(response)["metadata"] == {"error_type": "privacy_restricted"}
    assert post(http, "openai/gpt-4o", provider={"data_collection": "allow"}).status_code == 200


# ------------------------------------------------------------------------------------- provider preferences


@pytest.mark.parametrize(
    ("model", "provider", "allowed"),
    [
        ("openai/gpt-4o", {"only": ["openai"]}, True),
        ("openai/gpt-4o", {"only": ["Anthropic", "azure"]}, False),
        ("openai/gpt-4o", {"ignore": ["OpenAI"]}, False),
        ("google/gemini-2.5-flash", {"only": ["google-ai-studio"]}, True),
        ("google/gemini-2.5-flash", {"only": ["Google AI Studio"]}, True),
        ("openai/gpt-4o", {"order": ["anthropic"], "allow_fallbacks": False}, False),
        ("openai/gpt-4o", {"order": ["anthropic"]}, True),  # fallbacks allowed: order is a preference
        ("openai/gpt-4o", {"sort": "price", "require_parameters": False, "allow_fallbacks": True}, True),
    ],
)
def test_fake_provider_only_and_ignore(http: httpx.Client, model: str, provider: dict[str, Any], allowed: bool) -> None:
    response = post(http, model, provider=provider)
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 404
        assert error(response)["message"] == "No allowed providers are available for the selected model."


@pytest.mark.parametrize(
    ("max_price", "allowed"),
    [
        ({"prompt": 2.5, "completion": 10}, True),  # openai/gpt-4o: $2.50 and $10 per million tokens
        ({"prompt": "2.5", "completion": "10"}, True),
        ({"prompt": 2.49}, False),
        ({"completion": "9.99"}, False),
        ({"request": 0}, True),
    ],
)
def test_fake_max_price_is_per_million_tokens(http: httpx.Client, max_price: dict[str, Any], allowed: bool) -> None:
    response = post(http, "openai/gpt-4o", provider={"max_price": max_price})
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 404
        assert error(response)["message"] == "No endpoints found that match your max_price"


@pytest.mark.parametrize(
    "provider",
    [{"max_price": {"prompt": "cheap"}}, {"sort": "vibes"}, {"only": "openai"}, {"data_collection": "maybe"}],
)
def test_fake_rejects_malformed_provider_preferences(http: httpx.Client, provider: dict[str, Any]) -> None:
    response = post(http, provider=provider)
    assert response.status_code == 400 and error(response)["message"].startswith("provider.")


# ------------------------------------------------------------------------------------------------ reasoning


@pytest.mark.parametrize("effort", ["none", "minimal", "xhigh", "max"])
def test_fake_rejects_an_effort_the_model_does_not_list(http: httpx.Client, effort: str) -> None:
    response = post(http, "deepseek/deepseek-r1", reasoning={"effort": effort})  # lists low, medium, high
    assert response.status_code == 400
    assert error(response)["message"] == f"Reasoning effort '{effort}' is not supported by deepseek/deepseek-r1"
    assert post(http, "openai/gpt-4o", reasoning={"effort": effort}).status_code == 200  # no list: not checked


def test_fake_rejects_an_effort_that_does_not_exist(http: httpx.Client) -> None:
    response = post(http, "openai/gpt-4o", reasoning={"effort": "extreme"})
    assert response.status_code == 400 and "extreme" in error(response)["message"]


# --------------------------------------------------------------------------------------- structured outputs


def schema_format(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "result", "strict": strict, "schema": schema}}


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "array", "items": {"type": "string"}, "minItems": 1}, "minItems"),
        ({"type": "object", "properties": {"n": {"type": "integer", "maximum": 9}}}, "maximum"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"pattern": "x"}}}, "pattern"),
        ({"type": "object", "properties": {"xs": {"type": "array", "items": {"maxLength": 3}}}}, "maxLength"),
    ],
)
def test_fake_anthropic_rejects_strict_schema_bounds(
    fake_openrouter: FakeOpenRouter, http: httpx.Client, schema: dict[str, Any], keyword: str
) -> None:
    response = post(http, "anthropic/claude-sonnet-4", response_format=schema_format(schema))
    assert response.status_code == 400
    assert error(response)["message"] == f"Provider returned error: output_format.schema: '{keyword}' is not supported"
    assert post(http, "anthropic/claude-sonnet-4", response_format=schema_format(schema, strict=False)).is_success
    assert post(http, "openai/gpt-4o", response_format=schema_format(schema)).is_success
    fake_openrouter.strict_schema_rejecters = ()
    assert post(http, "anthropic/claude-sonnet-4", response_format=schema_format(schema)).is_success


def test_fake_strict_schema_property_names_are_not_keywords(http: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"pattern": {"type": "string"}, "minimum": {"type": "number", "enum": [1, 2]}},
        "required": ["pattern", "minimum"],
        "additionalProperties": False,
    }
    assert post(http, "anthropic/claude-sonnet-4", response_format=schema_format(schema)).status_code == 200


def test_fake_require_parameters_needs_structured_output_support(http: httpx.Client) -> None:
    strict = {"require_parameters": True}
    llama = "meta-llama/llama-3.3-70b-instruct"  # supported_parameters: tools, temperature
    response = post(http, llama, response_format={"type": "json_object"}, provider=strict)
    assert response.status_code == 404
    assert error(response)["message"] == "No endpoints found that can handle the requested parameters."
    assert post(http, llama, response_format={"type": "json_object"}).status_code == 200  # not required: ignored
    assert post(http, llama, provider=strict).status_code == 200  # nothing to require
    assert post(http, "openai/gpt-4o", response_format={"type": "json_object"}, provider=strict).status_code == 200


# -------------------------------------------------------------------------------------------- content parts


@pytest.mark.parametrize(
    ("part", "problem"),
    [
        ({"type": "video", "video": {}}, "unknown content part type 'video'"),
        ({"type": "text", "text": 3}, "'text' must be a string"),
        ({"type": "image_url", "image_url": "https://x.test/a.png"}, "'image_url.url' is required"),
        ({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}, "data:image/<png|jpeg|webp|gif>"),
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, "invalid base64"),
        ({"type": "file", "file": {"file_data": PDF}}, "'file.filename' is required"),
        ({"type": "file", "file": {"filename": "a.pdf", "file_data": "ftp://x/a.pdf"}}, "'file.file_data' must be"),
        ({"type": "input_audio", "input_audio": {"data": WAV, "format": "flac"}}, "'wav' or 'mp3'"),
        ({"type": "input_audio", "input_audio": {"data": "not base64!", "format": "mp3"}}, "must be base64"),
    ],
)
def test_fake_rejects_malformed_content_parts(http: httpx.Client, part: dict[str, Any], problem: str) -> None:
    response = http.post("/chat/completions", json={"model": "openai/gpt-4o", "messages": with_parts(part)})
    assert response.status_code == 400
    assert error(response)["message"].startswith("messages[0].content[1]: ") and problem in error(response)["message"]


@pytest.mark.parametrize(
    ("model", "part", "missing"),
    [
        ("deepseek/deepseek-r1", IMAGE_PART, "image"),
        ("openai/gpt-4o", AUDIO_PART, "audio"),
        ("openai/gpt-4o", PDF_PART, "file"),
    ],
)
def test_fake_needs_the_input_modality(http: httpx.Client, model: str, part: dict[str, Any], missing: str) -> None:
    response = http.post("/chat/completions", json={"model": model, "messages": with_parts(part)})
    assert response.status_code == 404
    assert error(response)["message"] == f"No endpoints found that support {missing} input"


@pytest.mark.parametrize(
    ("model", "part", "note"),
    [
        ("openai/gpt-4o", IMAGE_PART, "[saw 1 image]"),
        ("openai/gpt-4o", {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}}, "[saw 1 image]"),
        ("google/gemini-2.5-flash", AUDIO_PART, "[saw 1 audio]"),
        ("openai/gpt-4o-mini", PDF_PART, "[saw 1 pdf]"),
        (
            "openai/gpt-4o-mini",
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://x.test/a.pdf"}},
            "[saw 1 pdf]",
        ),
    ],
)
def test_fake_reports_what_was_attached(http: httpx.Client, model: str, part: dict[str, Any], note: str) -> None:
    response = http.post("/chat/completions", json={"model": model, "messages": with_parts(part)})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"].endswith(note)
