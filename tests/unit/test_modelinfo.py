"""Catalog entries parsed from both API shapes, the pure search over them, and pricing and cost arithmetic."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from openrouter_research_mcp.openrouter.catalog import parse_catalog
from openrouter_research_mcp.openrouter.models import ModelInfo, SearchQuery, search_models
from openrouter_research_mcp.openrouter.pricing import Pricing, Usage, cost_from_pricing, usage_from_response
from openrouter_research_mcp.tools.results import ModelRow
from tests.fakes.catalog_data import catalog, model_ids

MODELS = list(parse_catalog(catalog(2026)).values())


def ids(query: SearchQuery, models: list[ModelInfo] = MODELS) -> list[str]:
    return [m.id for m in search_models(models, query).models]


def id_set(**filters: Any) -> set[str]:
    return set(ids(SearchQuery(limit=200, **filters)))


# ------------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize("shape", [2025, 2026])
@pytest.mark.parametrize(
    ("model_id", "name", "context", "prompt", "completion", "capabilities"),
    [
        ("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", 128000, 0.15, 0.6, ["tools", "structured_outputs", "web_search"]),
        (
            "google/gemini-2.5-flash",
            "Google: Gemini 2.5 Flash",
            1048576,
            0.3,
            2.5,
            ["tools", "reasoning", "structured_outputs"],
        ),
        ("deepseek/deepseek-r1", "DeepSeek: R1", 163840, 0.4, 2.0, ["reasoning"]),
        ("meta-llama/llama-3.3-70b-instruct:free", "Meta: Llama 3.3 70B Instruct (free)", 65536, 0.0, 0.0, []),
        ("perplexity/sonar", "Perplexity: Sonar", 127072, 1.0, 1.0, ["web_search"]),
        ("openrouter/auto", "Auto Router", 2000000, None, None, ["tools", "reasoning", "structured_outputs"]),
    ],
)
def test_parse_catalog_reads_each_shape(
    shape: int,
    model_id: str,
    name: str,
    context: int,
    prompt: float | None,
    completion: float | None,
    capabilities: list[str],
) -> None:
    model = parse_catalog(catalog(shape))[model_id]
    assert (model.name, model.context_length) == (name, context)
    assert model.pricing.per_million("prompt") == prompt
    assert model.pricing.per_million("completion") == completion
    assert model.capabilities == capabilities


def test_parse_catalog_both_shapes_agree() -> None:
    old, new = parse_catalog(catalog(2025)), parse_catalog(catalog(2026))
    assert list(old) == list(new) == model_ids()
    for model_id in model_ids():
        a, b = old[model_id], new[model_id]
        assert (a.name, a.context_length, a.created) == (b.name, b.context_length, b.created)
        assert a.pricing.per_million("prompt") == b.pricing.per_million("prompt")
        assert a.pricing.per_million("completion") == b.pricing.per_million("completion")
        assert a.pricing.request == b.pricing.request and a.pricing.web_search == b.pricing.web_search
        assert a.pricing.known == b.pricing.known and a.pricing.is_free == b.pricing.is_free
        assert (a.input_modalities, a.output_modalities) == (b.input_modalities, b.output_modalities)
        assert a.capabilities == b.capabilities
        assert ModelRow.of(a) == ModelRow.of(b)


def test_parse_catalog_treats_missing_pricing_keys_as_zero() -> None:
    entries = {entry["id"]: entry for entry in catalog(2026)["data"]}
    assert entries["meta-llama/llama-3.3-70b-instruct:free"]["pricing"] == {}  # 2026 omits zero prices
    assert "request" not in entries["openai/gpt-4o"]["pricing"]
    models = parse_catalog(catalog(2026))
    free, paid = models["meta-llama/llama-3.3-70b-instruct:free"].pricing, models["openai/gpt-4o"].pricing
    assert free.known and free.is_free and free.per_million("prompt") == 0.0
    assert paid.known and not paid.is_free
    assert (paid.request, paid.web_search, paid.internal_reasoning, paid.image) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("shape", [2025, 2026])
def test_parse_catalog_minus_one_price_is_unknown(shape: int) -> None:
    pricing = parse_catalog(catalog(shape))["openrouter/auto"].pricing
    assert not pricing.known and not pricing.is_free
    assert pricing.per_million("prompt") is None and pricing.per_million("completion") is None


def test_pricing_reads_decimal_strings_and_ignores_extra_keys() -> None:
    pricing = Pricing.model_validate(
        {
            "prompt": "0.000003",
            "completion": 0.000015,
            "request": None,
            "image": "",
            "audio": "0.00004",
            "discount": 0.1,
            "overrides": [{"prompt": "1"}],
        }
    )
    assert pricing.prompt == 0.000003 and pricing.completion == 0.000015
    assert pricing.request == 0.0 and pricing.image == 0.0
    assert pricing.known and pricing.per_million("prompt") == 3.0 and pricing.per_million("completion") == 15.0


@pytest.mark.parametrize(
    ("pricing", "known", "free"),
    [
        (Pricing(), True, True),
        (Pricing(prompt=0.000001), True, False),
        (Pricing(request=0.005), True, False),
        (Pricing(image=-1), False, False),
    ],
)
def test_pricing_is_free_only_when_known_and_nothing_charged(pricing: Pricing, known: bool, free: bool) -> None:
    assert (pricing.known, pricing.is_free) == (known, free)


@pytest.mark.parametrize("odd", ["-1", -1, "abc", [1], {"usd": 1}])
def test_pricing_unreadable_or_negative_price_is_unknown(odd: Any) -> None:
    pricing = Pricing.model_validate({"prompt": "0.000001", "completion": odd})
    assert not pricing.known
    assert pricing.per_million("prompt") == 1.0 and pricing.per_million("completion") is None


ODD_BUT_READABLE: list[dict[str, Any]] = [
    {
        "id": "odd/all-wrong",
        "name": None,
        "description": None,
        "created": "yesterday",
        "context_length": "abc",
        "architecture": None,
        "pricing": None,
        "top_provider": [],
        "supported_parameters": "tools",
        "knowledge_cutoff": 20240101,
        "per_request_limits": "none",
        "new_thing": {"x": [1]},
    },
    {
        "id": "odd/fallbacks",
        "context_length": None,
        "top_provider": {"context_length": 4096, "max_completion_tokens": "1024"},
        "architecture": {"modality": "text+image->text"},
        "pricing": {"prompt": "0.000002"},
    },
]
UNREADABLE: list[Any] = ["openai/gpt-4o", 42, None, ["id", "x/y"], {"name": "no id"}, {"id": 123}, {"id": None}]


def test_parse_catalog_skips_unreadable_entries_and_keeps_the_rest() -> None:
    body = catalog(2026)
    body["data"] = [UNREADABLE[0], *ODD_BUT_READABLE, *body["data"], *UNREADABLE[1:]]
    models = parse_catalog(body)
    assert list(models) == ["odd/all-wrong", "odd/fallbacks", *model_ids()]
    assert models["openai/gpt-4o-mini"].pricing.per_million("prompt") == 0.15


def test_model_info_from_api_tolerates_oddly_typed_fields() -> None:
    model = ModelInfo.from_api(ODD_BUT_READABLE[0])
    assert (model.name, model.description, model.created, model.context_length) == ("odd/all-wrong", "", 0, 0)
    assert model.input_modalities == ["text"] and model.output_modalities == ["text"]
    assert not model.pricing.known and model.max_completion_tokens is None  # no pricing object: unknown, not free
    assert model.supported_parameters == [] and model.capabilities == []
    assert model.knowledge_cutoff == "20240101" and not model.is_moderated
    assert model.raw["new_thing"] == {"x": [1]}  # kept for the full-metadata view
    assert "raw" not in model.model_dump()


def test_model_info_from_api_falls_back_to_top_provider_and_modality_string() -> None:
    model = ModelInfo.from_api(ODD_BUT_READABLE[1])
    assert model.context_length == 4096 and model.max_completion_tokens == 1024
    assert model.input_modalities == ["text", "image"] and model.output_modalities == ["text"]
    assert model.provider == "odd" and model.pricing.per_million("prompt") == 2.0


@pytest.mark.parametrize("body", [[], {"models": []}, {"data": None}, {"data": {"a": 1}}, "data", None])
def test_parse_catalog_rejects_body_without_data_list(body: Any) -> None:
    with pytest.raises(ValueError, match="data"):
        parse_catalog(body)


@pytest.mark.parametrize(
    ("extra", "capabilities"),
    [
        ({"supported_parameters": ["tools", "tool_choice"]}, ["tools"]),
        ({"supported_parameters": ["include_reasoning"]}, ["reasoning"]),
        ({"reasoning": {"supported_efforts": ["high"]}}, ["reasoning"]),
        ({"supported_parameters": ["response_format"]}, ["structured_outputs"]),
        ({"supported_parameters": ["structured_outputs"]}, ["structured_outputs"]),
        ({"supported_parameters": ["web_search_options"]}, ["web_search"]),
        ({"pricing": {"web_search": "0.004"}}, ["web_search"]),
        ({"supported_parameters": ["temperature", "top_p"], "reasoning": None}, []),
    ],
)
def test_model_info_capabilities_come_from_declared_parameters(extra: dict[str, Any], capabilities: list[str]) -> None:
    assert ModelInfo.from_api({"id": "a/b", **extra}).capabilities == capabilities


# ------------------------------------------------------------------------------------------------ search


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpt-4o", {"openai/gpt-4o", "openai/gpt-4o-mini"}),
        ("sonnet", {"anthropic/claude-3.5-sonnet", "anthropic/claude-sonnet-4"}),
        ("OPENAI MINI", {"openai/gpt-4o-mini"}),
        ("llama free", {"meta-llama/llama-3.3-70b-instruct:free"}),
        ("questions about deepseek", {"deepseek/deepseek-r1"}),
        ("openai nonexistent", set()),
    ],
)
def test_search_models_free_text_matches_every_word(text: str, expected: set[str]) -> None:
    assert id_set(query=text) == expected


def test_search_models_free_text_reads_description() -> None:
    models = [
        ModelInfo(id="x/alpha", name="Alpha", description="Fluent in Klingon and Latin"),
        ModelInfo(id="x/beta", name="Beta", description="Fluent in Latin"),
    ]
    assert ids(SearchQuery(query="klingon latin"), models) == ["x/alpha"]
    assert ids(SearchQuery(query="latin"), models) == ["x/alpha", "x/beta"]


def test_search_models_filters_by_provider() -> None:
    openai = {"openai/gpt-4o-mini", "openai/gpt-4o", "openai/gpt-image-1"}
    assert id_set(provider="openai") == openai
    assert id_set(provider=" OpenAI ") == openai
    assert id_set(provider="open") == set()


def test_search_models_free_only() -> None:
    assert id_set(free_only=True) == {"meta-llama/llama-3.3-70b-instruct:free"}  # openrouter/auto is not free
    others = [
        ModelInfo(id="x/zero-priced"),
        ModelInfo(id="x/request-fee", pricing=Pricing(request=0.01)),
        ModelInfo(id="x/routed", pricing=Pricing(prompt=-1, completion=-1)),
    ]
    assert ids(SearchQuery(free_only=True), others) == ["x/zero-priced"]


def test_search_models_min_context_is_inclusive() -> None:
    assert id_set(min_context=200000) == {
        "anthropic/claude-3.5-sonnet",
        "anthropic/claude-sonnet-4",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-pro",
        "openrouter/auto",
    }
    assert "anthropic/claude-3.5-sonnet" not in id_set(min_context=200001)


def test_search_models_max_prompt_price_is_inclusive_per_million() -> None:
    cheap = {
        "meta-llama/llama-3.3-70b-instruct:free",
        "meta-llama/llama-3.3-70b-instruct",
        "openai/gpt-4o-mini",
        "google/gemini-2.5-flash",
    }
    assert id_set(max_prompt_price=0.3) == cheap  # gemini costs exactly 0.3; unknown-price auto is left out
    assert id_set(max_prompt_price=0.29) == cheap - {"google/gemini-2.5-flash"}
    assert id_set(max_prompt_price=0.4) == cheap | {"deepseek/deepseek-r1"}  # 0.4 is inexact in binary


def test_search_models_max_completion_price_is_inclusive_per_million() -> None:
    assert id_set(max_completion_price=2.5) == {
        "meta-llama/llama-3.3-70b-instruct:free",
        "meta-llama/llama-3.3-70b-instruct",
        "openai/gpt-4o-mini",
        "perplexity/sonar",
        "deepseek/deepseek-r1",
        "google/gemini-2.5-flash",
    }
    assert id_set(max_completion_price=0.0) == {"meta-llama/llama-3.3-70b-instruct:free"}
    assert id_set(max_completion_price=0.6, max_prompt_price=0.12) == {
        "meta-llama/llama-3.3-70b-instruct:free",
        "meta-llama/llama-3.3-70b-instruct",
    }


def test_search_models_filters_by_modality() -> None:
    assert id_set(input_modality="audio") == {"google/gemini-2.5-flash", "google/gemini-2.5-pro"}
    assert id_set(input_modality="FILE") == {"openai/gpt-4o-mini", "google/gemini-2.5-pro", "anthropic/claude-sonnet-4"}
    assert id_set(output_modality="image") == {"openai/gpt-image-1"}
    assert id_set(input_modality="image", output_modality="image") == {"openai/gpt-image-1"}


@pytest.mark.parametrize(
    ("supports", "expected"),
    [
        (
            ["tools"],
            {
                "openai/gpt-4o-mini",
                "openai/gpt-4o",
                "anthropic/claude-3.5-sonnet",
                "anthropic/claude-sonnet-4",
                "google/gemini-2.5-flash",
                "google/gemini-2.5-pro",
                "meta-llama/llama-3.3-70b-instruct",
                "openrouter/auto",
            },
        ),
        (
            ["reasoning"],
            {
                "google/gemini-2.5-flash",
                "google/gemini-2.5-pro",
                "anthropic/claude-sonnet-4",
                "deepseek/deepseek-r1",
                "openrouter/auto",
            },
        ),
        (
            ["structured_outputs"],
            {
                "openai/gpt-4o-mini",
                "openai/gpt-4o",
                "google/gemini-2.5-flash",
                "google/gemini-2.5-pro",
                "anthropic/claude-sonnet-4",
                "openrouter/auto",
            },
        ),
        (["web_search"], {"openai/gpt-4o-mini", "perplexity/sonar"}),
        (["tools", "web_search"], {"openai/gpt-4o-mini"}),
        (
            ["reasoning", "structured_outputs", "tools"],
            {"google/gemini-2.5-flash", "google/gemini-2.5-pro", "anthropic/claude-sonnet-4", "openrouter/auto"},
        ),
    ],
)
def test_search_models_filters_by_capability(supports: list[str], expected: set[str]) -> None:
    assert id_set(supports=supports) == expected


SORTED: dict[str, list[str]] = {
    "price": [
        "meta-llama/llama-3.3-70b-instruct:free",
        "meta-llama/llama-3.3-70b-instruct",
        "openai/gpt-4o-mini",
        "perplexity/sonar",
        "deepseek/deepseek-r1",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-pro",
        "openai/gpt-4o",
        "anthropic/claude-3.5-sonnet",
        "anthropic/claude-sonnet-4",
        "openai/gpt-image-1",
        "openrouter/auto",
    ],
    "context": [
        "openrouter/auto",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-pro",
        "anthropic/claude-3.5-sonnet",
        "anthropic/claude-sonnet-4",
        "deepseek/deepseek-r1",
        "meta-llama/llama-3.3-70b-instruct",
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "perplexity/sonar",
        "meta-llama/llama-3.3-70b-instruct:free",
        "openai/gpt-image-1",
    ],
    "newest": [
        "google/gemini-2.5-pro",
        "google/gemini-2.5-flash",
        "anthropic/claude-sonnet-4",
        "openai/gpt-image-1",
        "perplexity/sonar",
        "deepseek/deepseek-r1",
        "meta-llama/llama-3.3-70b-instruct",
        "meta-llama/llama-3.3-70b-instruct:free",
        "openai/gpt-4o-mini",
        "anthropic/claude-3.5-sonnet",
        "openai/gpt-4o",
        "openrouter/auto",
    ],
    "name": [
        "anthropic/claude-3.5-sonnet",
        "anthropic/claude-sonnet-4",
        "openrouter/auto",
        "deepseek/deepseek-r1",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-pro",
        "meta-llama/llama-3.3-70b-instruct",
        "meta-llama/llama-3.3-70b-instruct:free",
        "openai/gpt-image-1",
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "perplexity/sonar",
    ],
}


@pytest.mark.parametrize("sort", list(SORTED))
def test_search_models_sorts(sort: str) -> None:
    for order in (MODELS, MODELS[::-1]):  # the result must not depend on the input order
        assert ids(SearchQuery.model_validate({"sort": sort}), order) == SORTED[sort]


def test_search_models_default_sort_is_name() -> None:
    assert ids(SearchQuery()) == SORTED["name"]


def test_search_models_price_sort_puts_every_unknown_price_last() -> None:
    unknown = ModelInfo(id="a/unknown", pricing=Pricing(prompt=-1, completion=0))
    models = [unknown, *MODELS]
    assert ids(SearchQuery(sort="price"), models)[-2:] == ["a/unknown", "openrouter/auto"]


def test_search_models_pages_with_total() -> None:
    pages = [search_models(MODELS, SearchQuery(limit=3, offset=offset)) for offset in (0, 3, 6, 9, 12)]
    assert [page.total for page in pages] == [12] * 5
    assert [page.offset for page in pages] == [0, 3, 6, 9, 12]
    assert [len(page.models) for page in pages] == [3, 3, 3, 3, 0]
    assert [m.id for page in pages for m in page.models] == SORTED["name"]
    filtered = search_models(MODELS, SearchQuery(provider="openai", limit=1, offset=1))
    assert filtered.total == 3 and [m.id for m in filtered.models] == ["openai/gpt-4o"]


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"sort": "popularity"},
        {"supports": ["vision"]},
        {"supports": "tools"},
        {"min_context": -1},
        {"max_prompt_price": -0.5},
        {"max_completion_price": -1},
    ],
)
def test_search_query_rejects_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SearchQuery.model_validate(bad)


# ------------------------------------------------------------------------------------------------ cost


PRICED = Pricing(prompt=0.000001, completion=0.000002, internal_reasoning=0.000003, request=0.01, web_search=0.005)


def test_cost_from_pricing_adds_every_part() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500, reasoning_tokens=200, web_search_requests=2)
    # 1000 prompt x $1/M + 300 plain completion x $2/M + 200 reasoning x $3/M + $0.01 request + 2 x $0.007 search
    # (`auto` may pick Exa, dearer than this model's own $0.005)
    assert cost_from_pricing(usage, PRICED) == pytest.approx(0.001 + 0.0006 + 0.0006 + 0.01 + 0.014, abs=1e-12)
    assert cost_from_pricing(usage, PRICED, search_engine="native") == pytest.approx(0.0222, abs=1e-12)


def test_cost_from_pricing_uses_the_tier_the_prompt_reaches() -> None:
    tiered = Pricing.model_validate(
        {
            "prompt": "0.000001",
            "completion": "0.000002",
            "overrides": [{"min_prompt_tokens": 200000, "prompt": "0.000002"}],
        }
    )
    assert cost_from_pricing(Usage(prompt_tokens=300_000), tiered) == pytest.approx(0.6)
    assert cost_from_pricing(Usage(prompt_tokens=100_000), tiered) == pytest.approx(0.1)


def test_cost_from_pricing_bills_reasoning_as_completion_without_reasoning_price() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500, reasoning_tokens=200)
    pricing = Pricing(prompt=0.000001, completion=0.000002)
    assert cost_from_pricing(usage, pricing) == pytest.approx(0.001 + 0.001, abs=1e-12)


def test_cost_from_pricing_bills_cached_prompt_tokens_at_cache_price() -> None:
    usage = Usage(prompt_tokens=1000, cached_tokens=800, completion_tokens=0)
    pricing = Pricing(prompt=0.000001, input_cache_read=0.0000001)
    assert cost_from_pricing(usage, pricing) == pytest.approx(200 * 0.000001 + 800 * 0.0000001, abs=1e-12)


def test_cost_from_pricing_unknown_price_gives_none() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=10)
    assert cost_from_pricing(usage, Pricing(prompt=-1, completion=-1)) is None
    assert cost_from_pricing(usage, Pricing()) == 0.0  # known and free is not unknown


RAW_USAGE: dict[str, Any] = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 300},
    "completion_tokens_details": {"reasoning_tokens": 200},
    "server_tool_use_details": {"web_search_requests": 2, "tool_calls_requested": 3, "tool_calls_executed": 3},
}


def test_usage_from_response_reads_upstream_cost_and_server_tools() -> None:
    usage, notes = usage_from_response({**RAW_USAGE, "cost": 0.0123})
    assert (usage.cost_usd, usage.cost_source, notes) == (0.0123, "upstream", [])
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1000, 500, 1500)
    assert (usage.reasoning_tokens, usage.cache_write_tokens) == (200, 300)
    assert (usage.web_search_requests, usage.web_fetch_requests) == (2, 1)
    assert usage_from_response({**RAW_USAGE, "cost": 0})[0].cost_source == "upstream"
    older = {**RAW_USAGE, "server_tool_use_details": None, "server_tool_use": {"web_search_requests": 4}}
    assert usage_from_response(older)[0].web_search_requests == 4


def test_usage_from_response_with_own_provider_key_adds_the_provider_charge() -> None:
    usage, _ = usage_from_response(
        {**RAW_USAGE, "cost": 0.001, "is_byok": True, "cost_details": {"upstream_inference_cost": 0.02}}
    )
    assert usage.cost_usd == pytest.approx(0.021) and usage.upstream_cost_usd == pytest.approx(0.02)
    plain, _ = usage_from_response(
        {**RAW_USAGE, "cost": 0.001, "is_byok": False, "cost_details": {"upstream_inference_cost": 0.02}}
    )
    assert plain.cost_usd == pytest.approx(0.001) and plain.upstream_cost_usd == 0


def test_usage_from_response_without_cost_leaves_it_to_the_estimate() -> None:
    usage, notes = usage_from_response(RAW_USAGE)
    assert usage.cost_usd is None and usage.cost_source == "unknown" and notes == []
    gemini = parse_catalog(catalog(2026))["google/gemini-2.5-flash"].pricing
    priced, _ = usage_from_response(
        {"prompt_tokens": 2000, "completion_tokens": 1000, "completion_tokens_details": {"reasoning_tokens": 400}}
    )
    assert priced.total_tokens == 3000
    assert cost_from_pricing(priced, gemini) == pytest.approx(
        2000 * 0.0000003 + 600 * 0.0000025 + 400 * 0.0000025, abs=1e-12
    )


@pytest.mark.parametrize("cost", [True, float("nan"), float("inf"), -0.05, "0.01", {"usd": 1}])
def test_usage_from_response_never_trusts_an_impossible_cost(cost: Any) -> None:
    usage, notes = usage_from_response({**RAW_USAGE, "cost": cost})
    assert usage.cost_usd is None and usage.cost_source == "unknown"
    assert len(notes) == 1 and "impossible cost" in notes[0] and usage.prompt_tokens == 1000


@pytest.mark.parametrize("count", [-5, float("nan"), float("inf"), 1e400, 10**12, "many", [1]])
def test_usage_from_response_never_trusts_an_impossible_token_count(count: Any) -> None:
    usage, notes = usage_from_response({**RAW_USAGE, "prompt_tokens": count, "cost": 0.001})
    assert usage.prompt_tokens == 0 and usage.total_tokens == 1500 and usage.cost_usd == 0.001
    assert len(notes) == 1 and "prompt token count" in notes[0]


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        "usage",
        {
            "prompt_tokens": "12",
            "completion_tokens": None,
            "prompt_tokens_details": ["x"],
            "completion_tokens_details": "none",
            "server_tool_use": 3,
        },
    ],
)
def test_usage_from_response_tolerates_odd_shapes(raw: Any) -> None:
    usage, _ = usage_from_response(raw)
    assert usage.completion_tokens == usage.reasoning_tokens == usage.web_search_requests == 0
    assert usage.prompt_tokens == (12 if isinstance(raw, dict) else 0) and usage.cost_usd is None
