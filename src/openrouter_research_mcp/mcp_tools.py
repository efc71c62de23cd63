"""The MCP tools: each handler parses its arguments, calls the tool's logic in `tools/`, and returns structured
content with a text rendering; anticipated failures become `ToolError`s whose text is meant for people.

`build_tools()` publishes them with compact schemas, annotations, icons and, where one exists, the MCP Apps view that
renders the result (`_meta.ui.resourceUri`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ._constants import DEFAULT_COMPARE_MAX_COST_USD, DEFAULT_COMPARE_MAX_TOKENS
from ._schema import compact_schema
from ._util import Progress
from .errors import OpenRouterError
from .openrouter.models import Capability, ReasoningEffort, SortKey
from .openrouter.request import ProviderPrefs
from .research.run import ReportLength
from .tools.ask import ask
from .tools.benchmark import benchmark_models, get_benchmark, render_benchmark
from .tools.benchmark_report import BenchmarkReport, BenchmarkResult, Objective
from .tools.compare import compare_models
from .tools.models import list_models, search_query
from .tools.render import error_text, render_ask, render_compare, render_models, render_research
from .tools.research import Clarification, cancel_research, deep_research, get_research
from .tools.results import AskResult, CompareResult, ModelsPage, ResearchResult
from .tools.state import AppState
from .views import TOOL_VIEWS, tool_icons

__all__ = ["build_tools"]


def _state(ctx: Context) -> AppState:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, AppState)
    return state


def _progress(ctx: Context) -> Progress:
    async def report(done: float, total: float | None, message: str) -> None:
        await ctx.report_progress(done, total, message)

    return report


@contextmanager
def _tool_errors() -> Iterator[None]:
    try:
        yield
    except OpenRouterError as exc:
        raise ToolError(error_text(exc)) from None


def _result(model: BaseModel, text: str, links: Sequence[ResourceLink] = ()) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text), *links], structured_content=model.model_dump(mode="json")
    )


def _research_links(result: ResearchResult) -> list[ResourceLink]:
    """The saved report a research run produced (readable at once, complete once the run ends)."""
    return [
        ResourceLink(
            type="resource_link",
            uri=f"research://reports/{result.research_id}",
            name=f"research-{result.research_id}",
            title=f"Research report: {result.question[:80]}",
            description=f"The run's report with its numbered sources ({result.status}).",
            mime_type="text/markdown",
        )
    ]


def _benchmark_links(result: BenchmarkResult) -> list[ResourceLink]:
    """A benchmark's report and its chart."""
    base = f"benchmark://reports/{result.benchmark_id}"
    return [
        ResourceLink(
            type="resource_link",
            uri=base,
            name=result.benchmark_id,
            title="Benchmark report",
            description=f"Ranking, figures and trade-offs ({result.status}); CSV and JSON at {base}.csv and .json.",
            mime_type="text/markdown",
        ),
        ResourceLink(
            type="resource_link",
            uri=f"{base}.svg",
            name=f"{result.benchmark_id}.svg",
            title="Benchmark chart",
            description="Cost against quality; bubble size is latency.",
            mime_type="image/svg+xml",
        ),
    ]


LINKS_SINCE = "2025-06-18"  # the first protocol version with `resource_link` content


def _links_allowed(ctx: Context) -> bool:
    """Whether this client's protocol has `resource_link` content (older clients may refuse a result carrying it)."""
    version = ctx.protocol_version
    return version is None or version >= LINKS_SINCE  # versions are ISO dates: they sort as strings


def _research(result: ResearchResult, ctx: Context) -> CallToolResult:
    links = _research_links(result) if _links_allowed(ctx) else []
    return _result(result, render_research(result), links)


def _benchmark(report: BenchmarkReport, ctx: Context) -> CallToolResult:
    result = BenchmarkResult.of(report)
    links = _benchmark_links(result) if _links_allowed(ctx) else []
    return _result(result, render_benchmark(report), links)


Prompt = Annotated[str, Field(min_length=1, description="the question or task")]
ModelId = Annotated[str, Field(description="an OpenRouter model id such as openai/gpt-4o-mini (see list_models)")]
System = Annotated[str | None, Field(description="optional system prompt")]
Temperature = Annotated[float | None, Field(ge=0, le=2, description="sampling temperature")]
Provider = Annotated[ProviderPrefs | None, Field(description="routing and privacy")]
Files = Annotated[
    list[str] | None,
    Field(max_length=10, description="paths, http(s) or data: URIs: images, PDFs, wav/mp3"),
]


async def ask_tool(
    prompt: Prompt,
    ctx: Context,
    model: Annotated[str | None, Field(description="default OPENROUTER_DEFAULT_MODEL")] = None,
    system: System = None,
    fallback_models: Annotated[
        list[str] | None,
        Field(max_length=8, description="tried in order if the model fails"),
    ] = None,
    temperature: Temperature = None,
    max_tokens: Annotated[int | None, Field(ge=1, le=200_000, description="cap on answer tokens")] = None,
    reasoning_effort: Annotated[
        ReasoningEffort | None, Field(description="thinking effort for reasoning models")
    ] = None,
    web_search: Annotated[bool, Field(description="search the web and cite sources (about $0.007 a search)")] = False,
    urls: Annotated[list[str] | None, Field(max_length=5, description="pages the model reads and answers from")] = None,
    domains: Annotated[
        list[str] | None, Field(max_length=10, description='search only these; prefix - to exclude: ["-x.com"]')
    ] = None,
    provider: Provider = None,
    attachments: Files = None,
) -> Annotated[CallToolResult, AskResult]:
    """Ask one OpenRouter model: its answer, tokens and USD cost. web_search=true for current facts with numbered
    sources; urls to answer from pages; attachments to show files."""
    with _tool_errors():
        result = await ask(
            _state(ctx),
            prompt,
            model=model,
            system=system,
            fallback_models=fallback_models,
            temperature=temperature,
            max_tokens=max_tokens,
            reasoning_effort=reasoning_effort,
            web_search=web_search,
            urls=urls or (),
            domains=domains,
            provider=provider,
            attachments=attachments,
            progress=_progress(ctx),
        )
    return _result(result, render_ask(result))


async def compare_models_tool(
    prompt: Prompt,
    models: Annotated[list[str], Field(min_length=2, max_length=8, description="2 to 8 model ids to ask at once")],
    ctx: Context,
    system: System = None,
    max_tokens: Annotated[
        int, Field(ge=1, le=32_000, description="cap on each answer's tokens")
    ] = DEFAULT_COMPARE_MAX_TOKENS,
    temperature: Temperature = None,
    judge_model: Annotated[
        str | None,
        Field(description="reads all answers: agreement, disagreements, best answer"),
    ] = None,
    max_cost_usd: Annotated[
        float,
        Field(
            gt=0,
            le=50,
            description="USD cap; calls whose worst case does not fit are not started",
        ),
    ] = DEFAULT_COMPARE_MAX_COST_USD,
    provider: Provider = None,
    attachments: Files = None,
) -> Annotated[CallToolResult, CompareResult]:
    """Send one prompt to 2-8 models in parallel and compare answers, tokens, cost and latency; a failing model is
    reported in its entry. judge_model adds a verdict."""
    with _tool_errors():
        result = await compare_models(
            _state(ctx),
            prompt,
            models,
            system=system,
            max_tokens=max_tokens,
            temperature=temperature,
            judge_model=judge_model,
            max_cost_usd=max_cost_usd,
            provider=provider,
            attachments=attachments,
            progress=_progress(ctx),
        )
    return _result(result, render_compare(result))


async def list_models_tool(
    ctx: Context,
    query: Annotated[str | None, Field(description="words to find in the id, name or description")] = None,
    provider: Annotated[str | None, Field(description="e.g. openai, anthropic, google, meta-llama")] = None,
    free_only: Annotated[bool, Field(description="only models that cost nothing")] = False,
    min_context: Annotated[int | None, Field(ge=0, description="minimum context length in tokens")] = None,
    max_price: Annotated[
        float | None, Field(ge=0, description="max USD per million tokens, prompt and completion")
    ] = None,
    modality: Annotated[str | None, Field(description="input modality (image, audio, file); '->image': output")] = None,
    supports: Annotated[list[Capability] | None, Field(description="required capabilities")] = None,
    sort: Annotated[SortKey, Field(description="order of results")] = "name",
    limit: Annotated[int, Field(ge=1, le=100, description="models per page")] = 20,
    offset: Annotated[int, Field(ge=0, description="start of the page (next_offset)")] = 0,
) -> Annotated[CallToolResult, ModelsPage]:
    """Find OpenRouter models: ids, context, USD per million tokens, modalities, capabilities. Cached; cheap."""
    search = search_query(
        query=query,
        provider=provider,
        free_only=free_only,
        min_context=min_context,
        max_price=max_price,
        modality=modality,
        supports=supports,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    with _tool_errors():
        page = await list_models(_state(ctx), search)
    return _result(page, render_models(page))


def _form_elicitation(ctx: Context) -> bool:
    """Whether the client takes form elicitation (a bare `elicitation: {}` counts, as the SDK rules)."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


class _NotAsked(BaseModel):
    could_ask: bool


def _ask_first(question: str, clarify: bool, ctx: Context) -> _NotAsked | Elicit[Clarification]:
    """Before a research run plans: its clarifying questions, when asked for and the client can show them."""
    if not clarify or not _form_elicitation(ctx):
        return _NotAsked(could_ask=not clarify)
    return Elicit(f'Before researching "{question[:200]}": three quick questions, all optional.', Clarification)


async def deep_research_tool(
    ctx: Context,
    clarification: Annotated[ElicitationResult[Clarification], Resolve(_ask_first)],
    question: Annotated[str, Field(description="the research question; may be empty with resume")] = "",
    breadth: Annotated[int, Field(ge=1, le=6, description="sub-questions in round 1 (halved after)")] = 3,
    depth: Annotated[int, Field(ge=1, le=3, description="rounds of research and reflection")] = 2,
    max_cost_usd: Annotated[
        float | None, Field(gt=0, le=100, description="USD cap; default OPENROUTER_RESEARCH_MAX_COST_USD")
    ] = None,
    max_seconds: Annotated[float, Field(gt=0, le=3600, description="time cap")] = 50,
    planner_model: Annotated[str | None, Field(description="plans, reflects, verifies")] = None,
    searcher_model: Annotated[str | None, Field(description="searches and reads pages")] = None,
    writer_model: Annotated[str | None, Field(description="writes the report")] = None,
    report_length: Annotated[ReportLength, Field(description="~600, ~1,500 or ~4,000 words")] = "standard",
    verify_with_model: Annotated[bool, Field(description="a model judges each cited claim against its page")] = True,
    background: Annotated[bool, Field(description="return a research_id at once; poll get_research")] = False,
    resume: Annotated[str | None, Field(description="research_id of a stopped run to continue")] = None,
    clarify: Annotated[bool, Field(description="ask the user up to 3 questions first")] = False,
) -> Annotated[CallToolResult, ResearchResult]:
    """Research a question on the web: a cited report whose every citation is checked against its page. Plans,
    searches and reads in parallel, scaled to max_cost_usd and max_seconds; a stop returns a checked partial
    report. Long runs: background=true, then get_research."""
    outcome = clarification
    answers = outcome.data if isinstance(outcome, AcceptedElicitation) else None
    asked = isinstance(answers, Clarification)
    could_not_ask = isinstance(answers, _NotAsked) and not answers.could_ask
    with _tool_errors():
        result = await deep_research(
            _state(ctx),
            question,
            breadth=breadth,
            depth=depth,
            max_cost_usd=max_cost_usd,
            max_seconds=max_seconds,
            planner_model=planner_model,
            searcher_model=searcher_model,
            writer_model=writer_model,
            report_length=report_length,
            verify_with_model=verify_with_model,
            background=background,
            resume=resume,
            clarifications=answers if asked else None,
            assumed=could_not_ask or (clarify and not asked),
            progress=_progress(ctx),
        )
    return _research(result, ctx)


async def benchmark_models_tool(
    prompts: Annotated[list[str], Field(min_length=1, max_length=20, description="the prompts to try")],
    models: Annotated[list[str], Field(min_length=2, max_length=8, description="2 to 8 model ids")],
    ctx: Context,
    runs: Annotated[int, Field(ge=1, le=5, description="times each model answers each prompt")] = 1,
    references: Annotated[list[str] | None, Field(description="a reference answer per prompt, for the judge")] = None,
    rubric: Annotated[str | None, Field(description="what a good answer does, for the judge")] = None,
    judge_model: Annotated[str | None, Field(description="scores each answer 1-10")] = None,
    objective: Annotated[Objective, Field(description="what to rank by; balanced: quality per dollar")] = "balanced",
    max_latency_s: Annotated[float, Field(gt=0, description="latency limit for balanced")] = 30,
    max_tokens: Annotated[int, Field(ge=1, le=32_000, description="cap on each answer")] = 512,
    max_cost_usd: Annotated[float, Field(gt=0, le=50, description="cap, checked before anything starts")] = 1.0,
    background: Annotated[bool, Field(description="return the id at once; poll get_benchmark")] = False,
) -> Annotated[CallToolResult, BenchmarkResult]:
    """Measure models on your prompts: success, latency p50/p95, first token, tokens/s, cost, and (judge_model)
    quality 1-10; ranked by objective with trade-offs. CSV, JSON, chart: benchmark://reports/{id}."""
    with _tool_errors():
        report = await benchmark_models(
            _state(ctx),
            prompts,
            models,
            runs=runs,
            references=references,
            rubric=rubric,
            judge_model=judge_model,
            objective=objective,
            max_latency_s=max_latency_s,
            max_tokens=max_tokens,
            max_cost_usd=max_cost_usd,
            background=background,
            progress=_progress(ctx),
        )
    return _benchmark(report, ctx)


async def get_benchmark_tool(
    benchmark_id: Annotated[str, Field(description="the id benchmark_models returned")],
    ctx: Context,
    cancel: Annotated[bool, Field(description="stop it, keeping the calls made")] = False,
) -> Annotated[CallToolResult, BenchmarkResult]:
    """A benchmark's status and figures so far, or its ranked results; cancel=true stops one in progress."""
    with _tool_errors():
        report = await get_benchmark(_state(ctx), benchmark_id, cancel=cancel)
    return _benchmark(report, ctx)


async def get_research_tool(
    research_id: Annotated[str, Field(description="the id deep_research returned")],
    ctx: Context,
) -> Annotated[CallToolResult, ResearchResult]:
    """A research run's status, progress and spend so far, and its checked report and sources once done."""
    with _tool_errors():
        result = await get_research(_state(ctx), research_id)
    return _research(result, ctx)


async def cancel_research_tool(
    research_id: Annotated[str, Field(description="the id deep_research returned")],
    ctx: Context,
) -> Annotated[CallToolResult, ResearchResult]:
    """Stop a research run in progress, keeping what it found; returns its partial, checked report."""
    with _tool_errors():
        result = await cancel_research(_state(ctx), research_id)
    return _research(result, ctx)


def _tool(fn: Any, name: str, title: str, hints: ToolAnnotations) -> Tool:
    """A tool whose published schemas are compacted (see `_schema.py`; behaviour is unchanged), with its icon and,
    where one exists, its view."""
    view = TOOL_VIEWS.get(name)
    meta = {"ui": {"resourceUri": view}, "ui/resourceUri": view} if view else None  # the flat key for older hosts
    tool = Tool.from_function(
        fn,
        name=name,
        title=title,
        description=inspect.cleandoc(fn.__doc__ or ""),
        annotations=hints,
        icons=tool_icons(name),
        meta=meta,
    )
    tool.parameters = compact_schema(tool.parameters, input=True)
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema)
    return tool


def build_tools() -> list[Tool]:
    """Every tool, ready to register."""
    # Paid tools are not read-only: they spend money (and deep_research saves files), so hosts should ask first.
    paid = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True, idempotent_hint=False)
    catalog_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    status = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    control = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    tools = [
        _tool(ask_tool, "ask", "Ask a model", paid),
        _tool(compare_models_tool, "compare_models", "Compare models side by side", paid),
        _tool(list_models_tool, "list_models", "Find models", catalog_only),
        _tool(deep_research_tool, "deep_research", "Deep research with citations", paid),
        _tool(get_research_tool, "get_research", "Research status and report", status),
        _tool(cancel_research_tool, "cancel_research", "Stop a research run", control),
        _tool(benchmark_models_tool, "benchmark_models", "Benchmark models on your prompts", paid),
        _tool(get_benchmark_tool, "get_benchmark", "Benchmark status and results", control),
    ]
    return tools
