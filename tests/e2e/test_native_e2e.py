"""Native in every client, through the real server over stdio: readable argument errors for every tool, protocol
error codes for prompts, whole-value completion, the same capabilities in both protocol generations, icons, views
linked from tools, and results that link to what they produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import ClientExtension
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference

from ..fakes.openrouter import FakeOpenRouter
from ..support import resource_text, result_text
from .conftest import stdio_params
from .raw import RawServer

MODES = ["legacy", "auto"]

# One wrong argument per tool, and the sentence that must explain it.
BAD_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("ask", {"prompt": "hi", "web_search": "yes please"}, '`web_search` is true or false; got "yes please".'),
    (
        "compare_models",
        {"prompt": "hi", "models": "openai/gpt-4o"},
        '`models` is a list, e.g. ["openai/gpt-4o"]; got "openai/gpt-4o".',
    ),
    ("list_models", {"supports": "tools"}, '`supports` is a list, e.g. ["tools"]; got "tools".'),
    ("deep_research", {"question": "Why?", "breadth": 9}, "`breadth` is at most 6; got 9."),
    ("get_research", {}, "`research_id` is required (the id deep_research returned)."),
    ("cancel_research", {"research_id": 5}, "`research_id` is text; got 5."),
    (
        "benchmark_models",
        {"prompts": ["Hi"], "models": ["a/b", "c/d"], "objective": "fastest"},
        '`objective` is one of quality, cost, speed, balanced; got "fastest".',
    ),
    ("get_benchmark", {"benchmark_id": 7}, "`benchmark_id` is text; got 7."),
    ("cancel_benchmark", {"benchmark_id": ["b"]}, '`benchmark_id` is text; got ["b"].'),
]


@pytest.mark.parametrize("mode", MODES)
async def test_e2e_argument_errors_read_like_ours_for_every_tool(
    mode: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache"), mode=mode) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        results = {name: await client.call_tool(name, args) for name, args, _ in BAD_ARGUMENTS}
        typo = await client.call_tool("ask", {"prompt": "hi", "modle": "openai/gpt-4o"})
        several = await client.call_tool("list_models", {"limit": 0, "sort": "cheap"})
    assert {name for name, _, _ in BAD_ARGUMENTS} == tools  # every tool is covered
    for name, _, sentence in BAD_ARGUMENTS:
        text = result_text(results[name])
        assert results[name].is_error and text.startswith(f"{name} was called with an argument it cannot use"), text
        assert f"- {sentence}" in text and text.endswith(f"Correct it and call {name} again."), text
        assert not any(raw in text for raw in ("validation error", "pydantic", "type=", "Error executing")), text
    assert typo.is_error and "`modle` is not an argument of ask; did you mean `model`?" in result_text(typo)
    lines = result_text(several).splitlines()
    assert "- `limit` is at least 1; got 0." in lines and any(line.startswith("- `sort` is one of") for line in lines)
    assert fake_openrouter.chat_requests() == []  # nothing was spent on a bad call


@pytest.mark.parametrize("mode", MODES)
async def test_e2e_prompt_errors_are_invalid_params(mode: str, fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache"), mode=mode) as client:
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("summarise_everything", {})
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("pick_model", {"budget_usd": "0.01"})
        with pytest.raises(MCPError) as stranger:
            await client.get_prompt("pick_model", {"task": "t", "budget": "0.01"})
        fine = await client.get_prompt("pick_model", {"task": "translate contracts"})
    assert unknown.value.code == missing.value.code == stranger.value.code == -32602
    assert "no argument `budget` (did you mean `budget_usd`?)" in stranger.value.message
    assert "no prompt `summarise_everything`" in unknown.value.message and "pick_model" in unknown.value.message
    assert missing.value.message == "The prompt `pick_model` needs `task` (what the model must do)."
    assert "translate contracts" in fine.messages[0].content.text  # type: ignore[union-attr]


def test_e2e_prompt_errors_leave_no_traceback_in_the_log(tmp_path: Path) -> None:
    with RawServer(tmp_path) as server:
        server.initialize()
        answer = server.request("prompts/get", {"name": "nope", "arguments": {}})
        server.close_stdin()
    assert answer["error"]["code"] == -32602
    assert "Traceback" not in server.stderr, server.stderr


@pytest.mark.parametrize("mode", MODES)
async def test_e2e_completion_of_a_model_list_returns_whole_values(
    mode: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    ref = PromptReference(type="ref/prompt", name="compare_answers")
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache"), mode=mode) as client:
        first = await client.complete(ref, {"name": "models", "value": "openai/gpt-4o-m"})
        later = await client.complete(ref, {"name": "models", "value": "openai/gpt-4o-mini, anthropic/cl"})
        repeat = await client.complete(ref, {"name": "models", "value": "openai/gpt-4o-mini,openai/"})
    assert first.completion.values == ["openai/gpt-4o-mini"]
    assert sorted(later.completion.values) == [
        "openai/gpt-4o-mini, anthropic/claude-3.5-sonnet",
        "openai/gpt-4o-mini, anthropic/claude-sonnet-4",
    ]
    # The id already chosen is kept in front and not offered again.
    assert repeat.completion.values and all(
        v.startswith("openai/gpt-4o-mini, openai/") for v in repeat.completion.values
    )
    assert "openai/gpt-4o-mini, openai/gpt-4o-mini" not in repeat.completion.values
    # What is counted is what is offered: the id already chosen is not in the total either.
    assert repeat.completion.total == len(repeat.completion.values) and not repeat.completion.has_more


async def test_e2e_capabilities_icons_and_views_are_the_same_in_both_generations(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        async with Client(stdio_params(fake_openrouter, tmp_path / "cache"), mode=mode) as client:
            tools = (await client.list_tools()).tools
            view_uris = {t.meta["ui"]["resourceUri"] for t in tools if t.meta and "ui" in t.meta}
            views = {uri: (await client.read_resource(uri)).contents[0] for uri in sorted(view_uris)}
            seen[mode] = {
                "capabilities": client.server_capabilities.model_dump(exclude_none=True),
                "server_icons": [i.src[:30] for i in (client.server_info and client.server_info.icons) or []],
                "tool_icons": {t.name: bool(t.icons) for t in tools},
                "tool_views": {t.name: (t.meta or {}).get("ui", {}).get("resourceUri") for t in tools},
                "views": {uri: (c.mime_type, len(c.text)) for uri, c in views.items()},  # type: ignore[union-attr]
            }
    legacy, modern = seen["legacy"], seen["auto"]
    assert legacy == modern
    assert legacy["capabilities"]["extensions"] == {"io.modelcontextprotocol/ui": {}}
    assert "subscribe" not in json.dumps(legacy["capabilities"]).replace('"subscribe": false', "")
    assert legacy["server_icons"] == ["data:image/svg+xml;base64,PHN2"] and all(legacy["tool_icons"].values())
    assert legacy["tool_views"]["deep_research"] == "ui://openrouter-research/research.html"
    assert legacy["tool_views"]["ask"] is None  # an answer reads best as text
    assert len(legacy["views"]) == 4
    assert all(mime == "text/html;profile=mcp-app" and 0 < size < 150 * 1024 for mime, size in legacy["views"].values())


async def test_e2e_results_link_to_what_they_produced(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake_openrouter.structured_answers["research_plan"] = {
        "sub_questions": [{"question": "How do heat pumps move heat?", "rationale": "r"}]
    }
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        research = await client.call_tool("deep_research", {"question": "How do heat pumps work?", "depth": 1})
        bench = await client.call_tool(
            "benchmark_models", {"prompts": ["Hi"], "models": ["openai/gpt-4o-mini", "google/gemini-2.5-flash"]}
        )
        linked = {}
        for result in (research, bench):
            for link in (c for c in result.content if c.type == "resource_link"):
                linked[str(link.uri)] = (link.mime_type, resource_text(await client.read_resource(link.uri)))
    research_id = research.structured_content["research_id"]
    bench_id = bench.structured_content["benchmark_id"]
    assert set(linked) == {
        f"research://reports/{research_id}",
        f"benchmark://reports/{bench_id}",
        f"benchmark://reports/{bench_id}.svg",
    }
    assert linked[f"research://reports/{research_id}"][1] == research.structured_content["report"]
    assert linked[f"benchmark://reports/{bench_id}"][1].startswith(f"# Benchmark {bench_id}")
    assert linked[f"benchmark://reports/{bench_id}.svg"][0] == "image/svg+xml"
    assert linked[f"benchmark://reports/{bench_id}.svg"][1].startswith("<svg")


def test_e2e_clients_before_resource_links_get_none(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    """`resource_link` content arrived with protocol 2025-06-18: an older client gets the text alone."""
    arguments = {"prompts": ["Hi"], "models": ["openai/gpt-4o-mini", "google/gemini-2.5-flash"]}
    kinds = {}
    for version in ("2025-03-26", "2025-06-18"):
        (tmp_path / version).mkdir()
        with RawServer(tmp_path / version, OPENROUTER_BASE_URL=fake_openrouter.base_url) as server:
            handshake = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}
            assert server.request("initialize", handshake)["result"]["protocolVersion"] == version
            server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            kinds[version] = [c["type"] for c in server.call("benchmark_models", arguments)["content"]]
    assert kinds == {"2025-03-26": ["text"], "2025-06-18": ["text", "resource_link", "resource_link"]}


class AppsHost(ClientExtension):
    """A client that renders MCP Apps views, as Claude, ChatGPT or VS Code advertise it."""

    identifier = "io.modelcontextprotocol/ui"

    def settings(self) -> dict[str, Any]:
        return {"mimeTypes": ["text/html;profile=mcp-app"]}


@pytest.mark.parametrize("mode", MODES)
async def test_e2e_results_are_the_same_with_or_without_views(
    mode: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    """Views are extra: a client that renders them and one that does not get the same text and structured content."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_models", {"limit": 5}),
        ("compare_models", {"prompt": "2+2?", "models": ["openai/gpt-4o-mini", "google/gemini-2.5-flash"]}),
    ]
    seen = []
    for extensions in ([], [AppsHost()]):
        async with Client(
            stdio_params(fake_openrouter, tmp_path / "cache"), mode=mode, extensions=extensions
        ) as client:
            results = [await client.call_tool(name, args) for name, args in calls]
        seen.append([(r.structured_content, [c.type for c in r.content]) for r in results])
    plain, rendering = seen
    (page_a, kinds_a), (page_b, kinds_b) = plain[0], rendering[0]
    assert page_a is not None and page_b is not None
    ages = page_a.pop("catalog_age_s"), page_b.pop("catalog_age_s")  # read a moment apart: whole seconds may differ
    assert all(isinstance(a, int) and a >= 0 for a in ages)
    assert (page_a, kinds_a) == (page_b, kinds_b)  # the catalog page is otherwise identical
    for (data_a, kinds_a), (data_b, kinds_b) in zip(plain[1:], rendering[1:], strict=True):
        assert kinds_a == kinds_b == ["text"]
        assert [e["answer"] for e in data_a["entries"]] == [e["answer"] for e in data_b["entries"]]
