"""The installed server as a subprocess over stdio, against the fake OpenRouter, in both protocol modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client, ClientSession, stdio_client

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter
from ..support import TOOLS, resource_text, result_text
from .conftest import stdio_params

MODES = ["legacy", "auto"]  # classic initialize (Claude Desktop, Cursor, Inspector) and the 2026-07-28 protocol


@pytest.mark.parametrize("mode", MODES)
async def test_e2e_every_tool_resource_and_prompt(mode: str, fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    notes: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        assert total is None or progress <= total
        notes.append(message or "")

    async with Client(stdio_params(fake_openrouter, tmp_path / "cache"), mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        tools = {t.name for t in (await client.list_tools()).tools}
        asked = await client.call_tool(
            "ask", {"prompt": "What causes tides?", "web_search": True}, progress_callback=on_progress
        )
        compared = await client.call_tool(
            "compare_models",
            {
                "prompt": "2+2?",
                "models": ["openai/gpt-4o-mini", "google/gemini-2.5-flash"],
                "judge_model": "openai/gpt-4o",
            },
        )
        listed = await client.call_tool("list_models", {"supports": ["reasoning"], "sort": "context"})
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        usage = json.loads(resource_text(await client.read_resource("openrouter://usage")))
        account = json.loads(resource_text(await client.read_resource("openrouter://account")))
        one = json.loads(resource_text(await client.read_resource("openrouter://models/deepseek/deepseek-r1")))
        index = json.loads(resource_text(await client.read_resource("openrouter://models")))
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        pick = await client.get_prompt("pick_model", {"task": "summarise contracts", "budget_usd": "0.01"})
    assert tools == TOOLS
    assert not asked.is_error, result_text(asked)
    answer = asked.structured_content
    assert answer["model"] == "openai/gpt-4o-mini" and answer["answer"].startswith("[openai/gpt-4o-mini]")
    assert answer["usage"]["cost_usd"] > 0 and len(answer["sources"]) >= 2
    assert all(s["url"].startswith("https://") for s in answer["sources"]) and "Sources:" in result_text(asked)
    assert notes and notes[-1] == "answered by openai/gpt-4o-mini"
    assert not compared.is_error and compared.structured_content["judge"]["ok"], result_text(compared)
    assert [e["ok"] for e in compared.structured_content["entries"]] == [True, True]
    assert [m["id"] for m in listed.structured_content["models"]][0] == "openrouter/auto"
    assert {"openrouter://models", "openrouter://usage", "openrouter://account"} <= resources
    assert usage["totals"]["calls"] == 4 and usage["totals"]["cost_usd"] > 0
    assert account["limit_remaining"] == 7.5 and FAKE_KEY not in json.dumps(account)
    assert one["id"] == "deepseek/deepseek-r1" and "reasoning" in one["capabilities"]
    assert len(index["models"]) == 12
    assert {"deep_research_brief", "compare_answers", "pick_model"} <= prompts
    assert "summarise contracts" in pick.messages[0].content.text  # type: ignore[union-attr]


async def test_e2e_four_fallbacks_end_in_the_fourth_model(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    chain = ["anthropic/claude-3.5-sonnet", "google/gemini-2.5-flash", "deepseek/deepseek-r1", "openai/gpt-4o-mini"]
    for model in ["openai/gpt-4o", *chain[:3]]:  # every model of the first request is down, on every retry
        fake_openrouter.fail(kind="model_down", model=model, times=10)
    async with Client(
        stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_MAX_RETRIES="0"), mode="legacy"
    ) as client:
        result = await client.call_tool("ask", {"prompt": "hi", "model": "openai/gpt-4o", "fallback_models": chain})
    data = result.structured_content
    assert not result.is_error and data["model"] == "openai/gpt-4o-mini", result_text(result)
    sent = [(r.body["model"], r.body.get("models")) for r in fake_openrouter.chat_requests()]
    # OpenRouter's limit of three in `models`, then the rest of the chain walked by the server
    assert sent == [("openai/gpt-4o", chain[:3]), ("openai/gpt-4o-mini", None)]
    assert [(a["model"], a["ok"]) for a in data["attempts"]] == [("openai/gpt-4o", False), ("openai/gpt-4o-mini", True)]


async def test_e2e_unknown_fallback_is_skipped_with_a_warning(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    params = stdio_params(
        fake_openrouter, tmp_path / "cache", OPENROUTER_FALLBACK_MODELS="openai/gpt-9-delisted,openai/gpt-4o"
    )
    async with Client(params) as client:
        result = await client.call_tool("ask", {"prompt": "hi"})
    assert not result.is_error, result_text(result)
    assert fake_openrouter.chat_requests()[0].body["models"] == ["openai/gpt-4o"]
    assert any("openai/gpt-9-delisted" in w for w in result.structured_content["warnings"])
    assert "openai/gpt-9-delisted" in result_text(result)


async def test_e2e_retry_after_429(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake_openrouter.fail(429, retry_after="1")
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("ask", {"prompt": "hello"})
    assert not result.is_error, result_text(result)
    first, second = fake_openrouter.chat_requests()
    assert second.started - first.started >= 0.95  # Retry-After: 1 was honoured


async def test_e2e_bad_key_is_reported_and_not_retried(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    wrong = "sk-or-v1-wrong-wrong-wrong-wrong-wrong-wrong-wrong-wrong-wrong-wr"
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_API_KEY=wrong)) as client:
        result = await client.call_tool("ask", {"prompt": "hello", "fallback_models": ["openai/gpt-4o"]})
    assert result.is_error and "401" in result_text(result) and "OPENROUTER_API_KEY" in result_text(result)
    assert wrong not in result_text(result) and len(fake_openrouter.chat_requests()) == 1


async def test_e2e_missing_key_keeps_serving(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    async with Client(
        stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_API_KEY=""), mode="legacy"
    ) as client:
        first = await client.call_tool("ask", {"prompt": "hello"})
        listed = await client.call_tool("list_models", {"query": "gpt"})
        again = await client.call_tool(
            "compare_models", {"prompt": "x", "models": ["openai/gpt-4o", "openai/gpt-4o-mini"]}
        )
    assert first.is_error and "OPENROUTER_API_KEY is not set" in result_text(first)
    assert not listed.is_error and listed.structured_content["total"] == 3
    assert again.structured_content["totals"]["failed"] == 2
    assert "OPENROUTER_API_KEY" in (again.structured_content["entries"][0]["error"] or "")
    assert fake_openrouter.chat_requests() == []


async def test_e2e_unknown_model_suggests_before_spending(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("ask", {"prompt": "hello", "model": "gpt-4o-mini"})
    assert result.is_error and "Did you mean `openai/gpt-4o-mini`" in result_text(result)
    assert fake_openrouter.chat_requests() == []


async def test_e2e_compare_runs_in_parallel_and_isolates_failure(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    models = ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-3.5-sonnet", "deepseek/deepseek-r1"]
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        await client.call_tool("list_models", {"limit": 1})  # warm the catalog so only the comparison is timed
        fake_openrouter.latency = 1.0
        fake_openrouter.fail(402, model="deepseek/deepseek-r1", message="Insufficient credits")
        result = await client.call_tool("compare_models", {"prompt": "Name a prime.", "models": models})
    data = result.structured_content
    assert fake_openrouter.max_concurrency() == 4  # all four were in flight at once
    assert [e["ok"] for e in data["entries"]] == [True, True, True, False]
    assert "credits" in data["entries"][3]["error"] and data["totals"]["succeeded"] == 3


async def test_e2e_catalog_fetched_once_and_reused_from_disk(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    params = stdio_params(fake_openrouter, tmp_path / "cache")
    async with Client(params) as client:
        for query in ("gpt", "claude", "llama"):
            assert not (await client.call_tool("list_models", {"query": query})).is_error
    assert fake_openrouter.count("/models") == 1
    async with Client(params, mode="legacy") as second:  # a new process finds the disk cache
        page = await second.call_tool("list_models", {})
    assert page.structured_content["total"] == 12 and fake_openrouter.count("/models") == 1


async def test_e2e_key_never_leaks_at_debug_level(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    errlog = tmp_path / "stderr.log"
    with errlog.open("w") as sink:
        params = stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_LOG_LEVEL="DEBUG")
        async with stdio_client(params, errlog=sink) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            outputs = [
                await client.call_tool("ask", {"prompt": "hi", "web_search": True}),
                await client.call_tool("list_models", {}),
                await client.read_resource("openrouter://account"),
                await client.read_resource("openrouter://usage"),
            ]
    logged = errlog.read_text()
    assert "DEBUG" in logged and fake_openrouter.base_url in logged  # debug logging really was on
    assert FAKE_KEY not in logged
    assert all(FAKE_KEY not in o.model_dump_json() for o in outputs)
    assert not list((tmp_path / "cache").rglob("*")) or all(
        FAKE_KEY not in p.read_text() for p in (tmp_path / "cache").rglob("*") if p.is_file()
    )
