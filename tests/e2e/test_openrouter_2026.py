"""The 2026 OpenRouter behaviours, end to end over stdio against the fake: web search by server tool with its
parameters, own-key (BYOK) costs that budgets bind on, refusals, availability codes, and portable planner schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from ..fakes.openrouter import FakeOpenRouter
from ..support import result_text
from .conftest import stdio_params

PLAN = {"sub_questions": [{"question": f"Sub-question {i}?", "rationale": "r"} for i in (1, 2, 3, 4, 5, 6)]}


async def test_e2e_web_search_by_server_tool_with_its_parameters(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    params = stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_WEB_ENGINE="parallel")
    async with Client(params) as client:
        result = await client.call_tool(
            "ask",
            {
                "prompt": "How do honeybees communicate with the waggle dance?",
                "web_search": True,
                "domains": ["hivescience.test", "-spam.test"],
            },
        )
    assert not result.is_error, result_text(result)
    body = fake_openrouter.chat_requests()[0].body
    [tool] = body["tools"]
    assert tool == {
        "type": "openrouter:web_search",
        "parameters": {
            "engine": "parallel",
            "max_results": 5,
            "max_uses": 3,
            "allowed_domains": ["hivescience.test"],
            "excluded_domains": ["spam.test"],
        },
    }
    assert body["tool_choice"] == {"type": "openrouter:web_search"} and body["stop_server_tools_when"]
    data = result.structured_content
    assert data["sources"] and all(s["url"].startswith("https://hivescience.test/") for s in data["sources"])
    assert data["usage"]["web_search_requests"] == 1
    assert "hivescience.test" in result_text(result)


async def test_e2e_byok_cost_is_the_real_cost_and_budgets_bind_on_it(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake_openrouter.byok = True
    fake_openrouter.structured_answers["research_plan"] = PLAN
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        asked = await client.call_tool("ask", {"prompt": "hi", "model": "openai/gpt-4o"})
        research = await client.call_tool(
            "deep_research",
            {
                "question": "How do heat pumps work?",
                "breadth": 6,
                "depth": 1,
                "max_cost_usd": 0.05,
                "searcher_model": "openai/gpt-4o",
            },
        )
    usage = asked.structured_content["usage"]
    assert usage["upstream_cost_usd"] > 0 and usage["cost_usd"] > usage["upstream_cost_usd"]  # provider + fee
    data = research.structured_content
    assert not research.is_error, result_text(research)
    # Counted at the real cost (provider + fee): the run stays within its cap.
    assert data["cost_usd"] <= 0.05 and data["stopped_because"] in ("done", "budget"), data["progress"]
    real = sum(line["cost_usd"] for line in data["usage"])
    assert real == pytest.approx(data["cost_usd"]) and all(line["upstream_cost_usd"] > 0 for line in data["usage"])


async def test_e2e_refusal_is_shown_as_the_models_refusal(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake_openrouter.refusals["openai/gpt-4o-mini"] = "I can't help with that request."
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("ask", {"prompt": "Something forbidden"})
    assert not result.is_error
    assert result.structured_content["refusal"] == "I can't help with that request."
    assert result_text(result).startswith("The model declined to answer: I can't help with that request.")
    assert "no text" not in result_text(result)


async def test_e2e_privacy_restricted_is_explained(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake_openrouter.data_collecting.add("openai/gpt-4o")
    params = stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_DATA_COLLECTION="deny")
    async with Client(params) as client:
        result = await client.call_tool("ask", {"prompt": "hi", "model": "openai/gpt-4o"})
    assert result.is_error
    text = result_text(result)
    assert "privacy" in text and "openrouter.ai/settings/privacy" in text and "was not found" not in text
    assert fake_openrouter.chat_requests()[0].body["provider"] == {"data_collection": "deny"}


async def test_e2e_planner_on_a_provider_that_rejects_max_items(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool(
            "deep_research",
            {
                "question": "How do heat pumps work?",
                "breadth": 2,
                "depth": 1,
                "planner_model": "anthropic/claude-sonnet-4",
                "max_cost_usd": 2.0,  # room for the whole plan at the sonnet's prices: nothing is scaled down
            },
        )
    assert not result.is_error, result_text(result)
    planner = [r for r in fake_openrouter.chat_requests() if r.model == "anthropic/claude-sonnet-4"]
    assert planner and all(r.status == 200 for r in planner)  # the strict schema was accepted: no maxItems in it
    assert len(result.structured_content["sub_questions"][0]["sub_questions"]) == 2  # breadth enforced in code
