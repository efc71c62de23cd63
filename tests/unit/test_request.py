"""Request policy: web tools with their parameters, provider preferences, and portable structured output."""

from __future__ import annotations

from typing import Any

import pytest

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.errors import StructuredOutputError
from openrouter_research_mcp.openrouter.completion import ChatResult
from openrouter_research_mcp.openrouter.request import (
    ProviderPrefs,
    WebPlan,
    non_portable_keywords,
    provider_body,
    split_domains,
    structured_params,
    web_params,
)
from openrouter_research_mcp.openrouter.structured import ask_for_json, parse_object
from openrouter_research_mcp.research.prompts import PLAN_SCHEMA, REFLECT_SCHEMA
from openrouter_research_mcp.tools.compare import JUDGE_SCHEMA


def test_web_params_send_tool_parameters_force_the_search_and_stop_at_the_reservation() -> None:
    plan = WebPlan(
        searches=2,
        fetches=3,
        max_results=6,
        search_engine="exa",
        fetch_engine="openrouter",
        allowed_domains=("arxiv.org",),
        excluded_domains=("reddit.com",),
        force="search",
    )
    params = web_params(plan, "server_tool", max_cost_usd=0.0421)
    assert params["tools"] == [
        {
            "type": "openrouter:web_search",
            "parameters": {
                "engine": "exa",
                "max_results": 6,
                "max_uses": 2,
                "allowed_domains": ["arxiv.org"],
                "excluded_domains": ["reddit.com"],
            },
        },
        {
            "type": "openrouter:web_fetch",
            "parameters": {
                "engine": "openrouter",
                "max_uses": 3,
                "max_content_tokens": 3000,
                "allowed_domains": ["arxiv.org"],
                "blocked_domains": ["reddit.com"],
            },
        },
    ]
    assert params["tool_choice"] == {"type": "openrouter:web_search"}
    assert params["stop_server_tools_when"] == [{"type": "max_cost", "max_cost_in_dollars": 0.0421}]
    assert web_params(WebPlan(fetches=1, force="fetch"), "server_tool")["tool_choice"] == {
        "type": "openrouter:web_fetch"
    }
    assert web_params(WebPlan(searches=1, fetches=1, force="any"), "server_tool")["tool_choice"] == "required"
    assert web_params(WebPlan(), "server_tool") == {}


def test_web_params_plugin_mode_for_gateways_without_server_tools() -> None:
    plan = WebPlan(
        searches=1,
        max_results=4,
        search_engine="native",
        allowed_domains=("a.org",),
        excluded_domains=("b.org",),
        force="search",
    )
    assert web_params(plan, "plugin", 0.1) == {
        "plugins": [
            {
                "id": "web",
                "max_results": 4,
                "engine": "native",
                "include_domains": ["a.org"],
                "exclude_domains": ["b.org"],
            }
        ]
    }


def test_split_domains_reads_a_leading_minus_as_exclude() -> None:
    assert split_domains(["Arxiv.org", " -reddit.com", "", "-"]) == (("arxiv.org",), ("reddit.com",))
    assert split_domains(None) == ((), ())


def test_web_plan_budgets_for_the_text_a_tool_loop_reads_again() -> None:
    assert WebPlan().extra_prompt_tokens() == 0
    one = WebPlan(searches=1).extra_prompt_tokens()
    both = WebPlan(searches=2, fetches=2).extra_prompt_tokens()
    assert 0 < one < both and both >= 2 * 3000  # every page read at least once


def test_provider_body_merges_the_call_over_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_DATA_COLLECTION", "deny")
    monkeypatch.setenv("OPENROUTER_PROVIDER_IGNORE", "deepinfra, together")
    monkeypatch.setenv("OPENROUTER_MAX_PRICE", "prompt=1,completion=4")
    monkeypatch.setenv("OPENROUTER_PROVIDER_SORT", "price")
    settings = load_settings()
    assert provider_body(settings) == {
        "sort": "price",
        "ignore": ["deepinfra", "together"],
        "data_collection": "deny",
        "max_price": {"prompt": "1", "completion": "4"},
    }
    call = ProviderPrefs(sort="latency", only=["openai"], zdr=True, max_price=2.5)
    assert provider_body(settings, call) == {
        "sort": "latency",
        "only": ["openai"],
        "ignore": ["deepinfra", "together"],
        "data_collection": "deny",
        "zdr": True,
        "max_price": {"prompt": "2.5", "completion": "2.5"},
    }


def test_provider_body_is_absent_without_preferences() -> None:
    assert provider_body(load_settings()) is None
    assert provider_body(load_settings(data_collection="allow")) == {"data_collection": "allow"}


@pytest.mark.parametrize("schema", [PLAN_SCHEMA, REFLECT_SCHEMA, JUDGE_SCHEMA], ids=["plan", "reflect", "judge"])
def test_structured_schemas_keep_to_the_portable_core(schema: dict[str, Any]) -> None:
    assert non_portable_keywords(schema) == set()
    params = structured_params("x", schema, {"sort": "price"})
    assert params["provider"] == {"sort": "price", "require_parameters": True}
    assert params["plugins"] == [{"id": "response-healing"}]
    assert params["response_format"]["json_schema"] == {"name": "x", "strict": True, "schema": schema}


def test_structured_params_refuse_a_non_portable_schema() -> None:
    schema = {"type": "object", "properties": {"maxItems": {"type": "array", "minItems": 1}}}
    assert non_portable_keywords(schema) == {"minItems"}  # a property named maxItems is a name, not a keyword
    with pytest.raises(ValueError, match="minItems"):
        structured_params("x", schema)


def reply(text: str) -> ChatResult:
    return ChatResult(text=text, model_requested="a/b", model="a/b")


async def test_ask_for_json_shows_the_problem_once_then_succeeds() -> None:
    seen: list[list[dict[str, Any]]] = []
    replies = iter([reply('{"sub_questions": [1,}'), reply('{"sub_questions": []}')])

    async def call(messages: list[dict[str, Any]]) -> ChatResult:
        seen.append(messages)
        return next(replies)

    data = await ask_for_json(
        call, [{"role": "user", "content": "plan"}], lambda text, model: parse_object(text, ["sub_questions"], model)
    )
    assert data == {"sub_questions": []} and len(seen) == 2
    assert seen[1][1] == {"role": "assistant", "content": '{"sub_questions": [1,}'}
    assert "not return valid JSON" in seen[1][2]["content"]


async def test_ask_for_json_gives_up_after_the_second_failure() -> None:
    calls = 0

    async def call(_messages: list[dict[str, Any]]) -> ChatResult:
        nonlocal calls
        calls += 1
        return reply('{"other": 1}')

    with pytest.raises(StructuredOutputError, match="without sub_questions.*asked twice"):
        await ask_for_json(call, [], lambda text, model: parse_object(text, ["sub_questions"], model))
    assert calls == 2


def test_parse_object_reads_a_fenced_object() -> None:
    assert parse_object('```json\n{"a": 1}\n```', ["a"], "m") == {"a": 1}
    with pytest.raises(StructuredOutputError, match="not an object"):
        parse_object("[1, 2]", [], "m")
