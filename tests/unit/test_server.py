"""The MCP surface in-process (`Client(server)`), with OpenRouter faked by respx: tools, resources, prompts,
completion, and errors that people can act on."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import respx
from mcp import Client, MCPError
from mcp.shared.inbound import validate_mcp_param_headers, x_mcp_header_map
from mcp.types import ElicitResult, PromptReference, ResourceTemplateReference
from pydantic import Field

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.server import build_server

from ..fakes import FAKE_KEY
from ..fakes.catalog_data import catalog, with_extra_models
from ..fakes.openrouter import FakeOpenRouter
from ..support import PROMPTLY, TOOLS, model_facing_chars, resource_text, result_text
from .helpers import BASE, citation, completion, error_body, mock_upstream


@pytest.fixture
def respx_openrouter() -> Iterator[respx.MockRouter]:
    with mock_upstream(base_url=BASE, assert_all_called=False) as router:
        router.get("/models").mock(return_value=httpx.Response(200, json=catalog(2026)))
        yield router


def server(tmp_path: Path, **settings: str) -> Any:
    values = {
        "api_key": FAKE_KEY,
        "base_url": BASE,
        "cache_dir": str(tmp_path / "cache"),
        "data_dir": str(tmp_path / "data"),
        **settings,
    }
    return build_server(load_settings(**{name: value for name, value in values.items() if value}))


@pytest.mark.usefixtures("respx_openrouter")
async def test_server_lists_tools_with_schemas_and_annotations(tmp_path: Path) -> None:
    async with Client(server(tmp_path)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    hints = {name: tool.annotations for name, tool in tools.items()}
    assert hints["list_models"] and hints["list_models"].read_only_hint and hints["list_models"].idempotent_hint
    assert hints["ask"] and hints["ask"].open_world_hint
    assert hints["compare_models"] and hints["compare_models"].open_world_hint
    for reader in ("get_research", "get_benchmark"):  # a "get" only reads
        annotations = hints[reader]
        assert annotations is not None and annotations.read_only_hint
        assert tools[reader].input_schema["required"] == [reader.replace("get_", "") + "_id"]
    for tool in tools.values():
        assert tool.description and tool.output_schema and tool.output_schema.get("type") == "object"
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description") or name == "ctx", (tool.name, name)
    assert tools["compare_models"].input_schema["properties"]["models"]["minItems"] == 2
    # What every host pays on every turn: kept under 10,000 characters (about 2,500 tokens).
    assert model_facing_chars(tools.values()) < 10_000


def test_server_checks_mcp_param_headers_only_for_tools_that_declare_them(tmp_path: Path) -> None:
    """Over HTTP the SDK compares `Mcp-Param-*` headers with the arguments of a tool whose schema declares an
    `x-mcp-header`; ours declare none, so it is handed no schema (nothing to walk on each call), while a tool that
    declares one still has its headers checked."""
    made = server(tmp_path)

    def regional(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
        return region

    made.add_tool(regional)

    lookup = made._lowlevel_server.get_tool_input_schema
    assert all(lookup(name) is None for name in TOOLS) and lookup("no_such_tool") is None
    schema = lookup("regional")
    assert schema is not None and x_mcp_header_map(schema) == {("region",): "Region"}
    assert validate_mcp_param_headers(schema, {"region": "eu"}, {"mcp-param-region": "us"}) is not None  # refused
    assert validate_mcp_param_headers(schema, {"region": "eu"}, {"mcp-param-region": "eu"}) is None


async def test_server_ask_returns_answer_usage_and_sources(tmp_path: Path, respx_openrouter: respx.MockRouter) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(
            200,
            json=completion(
                "It is 42.", cost=0.0003, annotations=[citation("https://src.test/a", "Source A", "passage")]
            ),
        )
    )
    async with Client(server(tmp_path)) as client:
        result = await client.call_tool("ask", {"prompt": "What is it?", "web_search": True, "max_tokens": 100})
    assert not result.is_error
    body = json.loads(route.calls[0].request.content)
    assert body["tools"] == [
        {"type": "openrouter:web_search", "parameters": {"engine": "auto", "max_results": 5, "max_uses": 3}}
    ]
    assert body["tool_choice"] == {"type": "openrouter:web_search"}
    assert "stream" not in body  # the caller follows no progress: the answer is asked for unstreamed
    [stop] = body["stop_server_tools_when"]
    assert stop["type"] == "max_cost" and 0 < stop["max_cost_in_dollars"] < 0.05
    data = result.structured_content
    assert data["answer"] == "It is 42." and data["model"] == data["model_requested"] == "openai/gpt-4o-mini"
    assert data["usage"]["cost_usd"] == 0.0003 and data["sources"][0]["url"] == "https://src.test/a"
    assert "It is 42." in result_text(result) and "[1] Source A — <https://src.test/a>" in result_text(result)


async def test_server_unknown_model_fails_fast_with_suggestions(
    tmp_path: Path, respx_openrouter: respx.MockRouter
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion()))
    async with Client(server(tmp_path)) as client:
        result = await client.call_tool("ask", {"prompt": "hi", "model": "openai/gpt-4o-mni"})
        compared = await client.call_tool(
            "compare_models", {"prompt": "hi", "models": ["openai/gpt-4o", "antropic/claude-3.5-sonnet"]}
        )
    assert result.is_error and "`openai/gpt-4o-mini`" in result_text(result) and "Did you mean" in result_text(result)
    assert compared.is_error and "anthropic/claude-3.5-sonnet" in result_text(compared)
    assert route.call_count == 0


async def test_server_missing_key_explains_itself(tmp_path: Path, respx_openrouter: respx.MockRouter) -> None:
    route = respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion()))
    async with Client(server(tmp_path, api_key="")) as client:
        result = await client.call_tool("ask", {"prompt": "hi"})
        listed = await client.call_tool("list_models", {"limit": 2})
    assert (
        result.is_error
        and "OPENROUTER_API_KEY" in result_text(result)
        and "openrouter.ai/settings/keys" in result_text(result)
    )
    assert not listed.is_error and len(listed.structured_content["models"]) == 2
    assert route.call_count == 0


async def test_server_compare_keeps_failures_in_their_entry(tmp_path: Path, respx_openrouter: respx.MockRouter) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        model = json.loads(request.content)["model"]
        if model == "deepseek/deepseek-r1":
            return httpx.Response(402, json=error_body(402, "Insufficient credits"))
        if model == "google/gemini-2.5-flash":  # the judge
            verdict = {
                "agreement": "high",
                "summary": "Both say 4.",
                "disagreements": [],
                "recommended_answer": "4",
                "best_model": "openai/gpt-4o",
            }
            return httpx.Response(200, json=completion(json.dumps(verdict), model=model, cost=0.0001))
        return httpx.Response(200, json=completion(f"4 (from {model})", model=model, cost=0.001))

    route = respx_openrouter.post("/chat/completions").mock(side_effect=answer)
    async with Client(server(tmp_path)) as client:
        result = await client.call_tool(
            "compare_models",
            {
                "prompt": "2+2?",
                "models": ["openai/gpt-4o", "anthropic/claude-3.5-sonnet", "deepseek/deepseek-r1"],
                "judge_model": "google/gemini-2.5-flash",
                "max_tokens": 200,
            },
        )
    assert not result.is_error, result_text(result)
    data = result.structured_content
    by_model = {e["model"]: e for e in data["entries"]}
    assert by_model["openai/gpt-4o"]["ok"] and by_model["openai/gpt-4o"]["answer"] == "4 (from openai/gpt-4o)"
    assert not by_model["deepseek/deepseek-r1"]["ok"] and "credits" in by_model["deepseek/deepseek-r1"]["error"]
    assert data["judge"]["ok"] and data["judge"]["agreement"] == "high" and data["judge"]["best_model"]
    assert data["totals"]["succeeded"] == 2 and data["totals"]["failed"] == 1
    assert data["totals"]["cost_usd"] == pytest.approx(0.0021)
    judge_request = json.loads(route.calls[-1].request.content)
    assert judge_request["response_format"]["type"] == "json_schema"
    assert '<answer model="openai/gpt-4o">' in judge_request["messages"][1]["content"]


async def test_server_compare_refuses_what_could_exceed_budget(
    tmp_path: Path, respx_openrouter: respx.MockRouter
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion()))
    async with Client(server(tmp_path)) as client:
        result = await client.call_tool(
            "compare_models",
            {
                "prompt": "Write an essay.",
                "models": ["openai/gpt-4o", "anthropic/claude-3.5-sonnet"],
                "max_tokens": 20000,
                "max_cost_usd": 0.1,
            },
        )
        auto = await client.call_tool("compare_models", {"prompt": "x", "models": ["openrouter/auto", "openai/gpt-4o"]})
    assert result.is_error and "max_cost_usd" in result_text(result) and "budget" in result_text(result)
    assert auto.is_error and "routing time" in result_text(auto)
    assert route.call_count == 0


async def test_server_list_models_filters_and_pages(tmp_path: Path, respx_openrouter: respx.MockRouter) -> None:
    async with Client(server(tmp_path)) as client:
        first = await client.call_tool("list_models", {"limit": 3, "sort": "price"})
        vision = await client.call_tool("list_models", {"modality": "image", "supports": ["tools"]})
        images_out = await client.call_tool("list_models", {"modality": "->image"})
        again = await client.call_tool("list_models", {"query": "llama", "free_only": True})
    page = first.structured_content
    assert page["total"] == 12 and page["next_offset"] == 3 and len(page["models"]) == 3
    assert page["models"][0]["prompt_usd_per_mtok"] == 0.0
    assert {m["id"] for m in vision.structured_content["models"]} == {
        "openai/gpt-4o-mini",
        "openai/gpt-4o",
        "anthropic/claude-3.5-sonnet",
        "anthropic/claude-sonnet-4",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-pro",
        "openrouter/auto",
    }
    assert [m["id"] for m in images_out.structured_content["models"]] == ["openai/gpt-image-1"]
    assert [m["id"] for m in again.structured_content["models"]] == ["meta-llama/llama-3.3-70b-instruct:free"]
    assert respx_openrouter.routes[0].call_count == 1  # the catalog was fetched once for all four calls


async def test_server_default_model_page_fits_the_context_budget(tmp_path: Path) -> None:
    realistic = with_extra_models(catalog(2026), 400)
    for entry in realistic["data"][10:]:  # real names and ids are longer than the synthetic ones
        entry["name"] = f"Provider Name: {entry['name']} Instruct Preview (extended context)"
    with mock_upstream(base_url=BASE) as router:
        router.get("/models").mock(return_value=httpx.Response(200, json=realistic))
        async with Client(server(tmp_path)) as client:
            page = await client.call_tool("list_models", {})
    assert len(page.structured_content["models"]) == 20
    characters = len(result_text(page)) + len(json.dumps(page.structured_content))
    assert characters / 4 < 2500, f"a default page costs about {characters / 4:.0f} tokens"


async def test_server_resources(tmp_path: Path, respx_openrouter: respx.MockRouter) -> None:
    respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion(cost=0.002)))
    respx_openrouter.get("/key").mock(
        return_value=httpx.Response(
            200,
            json={
                "data": {
                    "label": "sk-or-v1-abc...xyz",
                    "limit": 10.0,
                    "limit_remaining": 7.5,
                    "usage": 2.5,
                    "usage_daily": 0.1,
                    "is_free_tier": False,
                }
            },
        )
    )
    respx_openrouter.get("/credits").mock(return_value=httpx.Response(403, json=error_body(403, "management key")))
    async with Client(server(tmp_path)) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        await client.call_tool("ask", {"prompt": "hi"})
        usage = json.loads(resource_text(await client.read_resource("openrouter://usage")))
        account = json.loads(resource_text(await client.read_resource("openrouter://account")))
        index = json.loads(resource_text(await client.read_resource("openrouter://models")))
        one = json.loads(resource_text(await client.read_resource("openrouter://models/openai/gpt-4o")))
        with pytest.raises(MCPError) as missing:
            await client.read_resource("openrouter://models/openai/gpt-40")
    assert {"openrouter://models", "openrouter://usage", "openrouter://account"} <= listed
    assert "openrouter://models/{+model_id}" in templates
    assert usage["totals"]["calls"] == 1 and usage["by_model"]["openai/gpt-4o-mini"]["cost_usd"] == 0.002
    assert account["limit_remaining"] == 7.5 and "label" not in account and FAKE_KEY not in json.dumps(account)
    assert ["openai/gpt-4o", 128000, 2.5, 10.0] in index["models"]
    assert one["id"] == "openai/gpt-4o" and "tools" in one["capabilities"] and one["pricing"]["prompt"]
    assert missing.value.code == -32602 and "openai/gpt-4o" in missing.value.message


@pytest.mark.usefixtures("respx_openrouter")
async def test_server_prompts_and_completion(tmp_path: Path) -> None:
    async with Client(server(tmp_path)) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        brief = await client.get_prompt(
            "deep_research_brief", {"topic": "solid-state batteries", "audience": "investors"}
        )
        done = await client.complete(PromptReference(name="compare_answers"), {"name": "models", "value": "openai/"})
        template = await client.complete(
            ResourceTemplateReference(uri="openrouter://models/{+model_id}"), {"name": "model_id", "value": "anthrop"}
        )
    assert {"deep_research_brief", "compare_answers", "pick_model"} <= set(prompts)
    for prompt in prompts.values():
        assert prompt.description and all(a.description for a in prompt.arguments or [])
    assert [a.name for a in prompts["deep_research_brief"].arguments or [] if a.required] == ["topic"]
    message = brief.messages[0].content
    assert message.type == "text" and "solid-state batteries" in message.text and "deep_research" in message.text
    assert done.completion.values == ["openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-image-1"]
    assert template.completion.values == ["anthropic/claude-3.5-sonnet", "anthropic/claude-sonnet-4"]


async def test_server_fallback_reports_attempts(tmp_path: Path, respx_openrouter: respx.MockRouter) -> None:
    route = respx_openrouter.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=completion("ok", model="google/gemini-2.5-flash"))
    )
    async with Client(server(tmp_path)) as client:
        result = await client.call_tool(
            "ask", {"prompt": "hi", "model": "openai/gpt-4o", "fallback_models": ["google/gemini-2.5-flash"]}
        )
    data = result.structured_content
    assert json.loads(route.calls[0].request.content)["models"] == ["google/gemini-2.5-flash"]
    assert data["model"] == "google/gemini-2.5-flash" and data["model_requested"] == "openai/gpt-4o"
    assert [(a["model"], a["ok"], a["answered_by"]) for a in data["attempts"]] == [
        ("openai/gpt-4o", True, "google/gemini-2.5-flash"),
    ]
    assert "requested openai/gpt-4o" in result_text(result) and "Attempts:" in result_text(result)


async def test_server_catalog_outage(tmp_path: Path) -> None:
    with mock_upstream(base_url=BASE, assert_all_called=False) as router:
        router.get("/models").mock(return_value=httpx.Response(503, json=error_body(503, "down")))
        chat = router.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion("still here")))
        async with Client(server(tmp_path, max_retries="0")) as client:
            compared = await client.call_tool("compare_models", {"prompt": "x", "models": ["a/b", "c/d"]})
            asked = await client.call_tool("ask", {"prompt": "x"})
    assert compared.is_error and "catalog" in result_text(compared) and "max_cost_usd" in result_text(compared)
    assert not asked.is_error and asked.structured_content["answer"] == "still here" and chat.call_count == 1


async def test_server_slow_catalog_does_not_stretch_ask_past_its_deadline(tmp_path: Path) -> None:
    async def hang(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=catalog(2026))

    with mock_upstream(base_url=BASE, assert_all_called=False) as router:
        router.get("/models").mock(side_effect=hang)
        router.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion("quick")))
        async with Client(server(tmp_path, timeout="2")) as client:
            started = time.monotonic()
            asked = await client.call_tool("ask", {"prompt": "x"})
            elapsed = time.monotonic() - started
    assert not asked.is_error and asked.structured_content["answer"] == "quick"
    assert elapsed < PROMPTLY  # the catalog check gave up after a fifth of OPENROUTER_TIMEOUT; it was not waited for


async def _answer_questions(_context: Any, params: Any) -> ElicitResult:
    assert "three quick questions" in params.message
    return ElicitResult(action="accept", content={"audience": "city planners", "focus": "costs", "timeframe": ""})


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_server_deep_research_clarifies_when_the_client_can_be_asked(
    mode: str, tmp_path: Path, fake_openrouter: FakeOpenRouter
) -> None:
    fake_openrouter.structured_answers["research_plan"] = {"sub_questions": [{"question": "Q?", "rationale": "r"}]}
    built = server(tmp_path, base_url=fake_openrouter.base_url)
    async with Client(built, mode=mode, elicitation_callback=_answer_questions) as client:  # type: ignore[arg-type]
        asked = await client.call_tool(
            "deep_research", {"question": "How do honeybees live?", "depth": 1, "clarify": True}
        )
    assert not asked.is_error, result_text(asked)
    planner = next(r for r in fake_openrouter.chat_requests() if r.body.get("response_format"))
    assert "audience: city planners" in planner.body["messages"][1]["content"]
    assert "Asked first: audience: city planners; focus: costs." in asked.structured_content["report"]


async def test_server_deep_research_without_elicitation_notes_its_assumptions(
    tmp_path: Path, fake_openrouter: FakeOpenRouter
) -> None:
    fake_openrouter.structured_answers["research_plan"] = {"sub_questions": [{"question": "Q?", "rationale": "r"}]}
    async with Client(server(tmp_path, base_url=fake_openrouter.base_url)) as client:
        result = await client.call_tool(
            "deep_research", {"question": "How do honeybees live?", "depth": 1, "clarify": True}
        )
        plain = await client.call_tool("deep_research", {"question": "How do honeybees live?", "depth": 1})
    assert not result.is_error, result_text(result)
    assert (
        "Assumed (no one could be asked): written for an informed general reader" in result.structured_content["report"]
    )
    assert "Assumed" not in plain.structured_content["report"]


@pytest.mark.usefixtures("respx_openrouter")
async def test_server_unknown_tool_is_a_protocol_error_naming_the_tools(tmp_path: Path) -> None:
    async with Client(server(tmp_path)) as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("ask_everything", {"prompt": "hi"})
        known = await client.call_tool("list_models", {"limit": 1})  # the session goes on
    assert unknown.value.code == -32602  # invalid params, as the 2025-11-25 specification asks
    assert "There is no tool `ask_everything`" in unknown.value.message and "deep_research" in unknown.value.message
    assert not known.is_error


async def test_server_ask_streams_only_for_a_caller_who_follows_progress(
    tmp_path: Path, respx_openrouter: respx.MockRouter
) -> None:
    route = respx_openrouter.post("/chat/completions").mock(return_value=httpx.Response(200, json=completion("Hi.")))
    seen: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        del progress, total  # the SDK's ProgressFnT names all three
        seen.append(message or "")

    async with Client(server(tmp_path)) as client:
        followed = await client.call_tool("ask", {"prompt": "Hello?"}, progress_callback=on_progress)
        quiet = await client.call_tool("ask", {"prompt": "Hello?"})
    streamed, unstreamed = (json.loads(call.request.content) for call in route.calls)
    assert streamed["stream"] is True and "stream" not in unstreamed
    assert not followed.is_error and not quiet.is_error and any("answered by" in m for m in seen)
