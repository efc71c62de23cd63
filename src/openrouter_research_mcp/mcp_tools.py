"""The MCP tools: each handler parses its arguments, calls the tool's logic in `tools/`, and returns structured
content with a text rendering; anticipated failures become `ToolError`s whose text is meant for people.

`build_tools()` publishes them with compact schemas, annotations, icons and, where one exists, the MCP Apps view that
renders the result (`_meta.ui.resourceUri`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.types import CallToolResult, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ._schema import compact_schema
from ._util import Progress, no_progress
from .benchmark.report import BenchmarkInput, BenchmarkReport, BenchmarkResult
from .callers import call_state, current_caller
from .errors import OpenRouterError, QuotaExceededError
from .research.run import ResearchInput
from .tools.ask import AskInput, ask
from .tools.benchmark import benchmark_models, cancel_benchmark, get_benchmark, render_benchmark
from .tools.compare import CompareInput, compare_models
from .tools.models import ListModelsInput, list_models, search_query
from .tools.render import error_text, render_ask, render_compare, render_models, render_research
from .tools.research import Clarification, cancel_research, deep_research, get_research
from .tools.results import AskResult, CompareResult, ModelsPage, ResearchResult
from .views import TOOL_VIEWS, tool_icons

__all__ = ["build_tools", "handler"]


def _wants_progress(ctx: Context) -> bool:
    """Whether the caller follows this request's progress. Over JSON-RPC (stdio, HTTP) that is a `progressToken`
    in the request; the SDK's in-process dispatch (the Python `Client(server)`) calls the client's callback
    instead, when one was given, and keeps it on its dispatch context (no public accessor: read with a default
    that reports progress when unsure)."""
    if progress_token_from_params(ctx.request_context.params) is not None:
        return True
    outbound = getattr(ctx.request_context.session, "_request_outbound", None)
    outbound = getattr(outbound, "_inner", outbound)  # the 2026-07-28 generation wraps the dispatch context
    # JSON-RPC dispatch (stdio and classic HTTP: `_progress_token`; 2026-07-28 HTTP: `progress_token`), no token sent
    if hasattr(outbound, "_progress_token") or hasattr(outbound, "progress_token"):
        return False
    return getattr(outbound, "_on_progress", True) is not None


def _progress(ctx: Context) -> Progress:
    """The request's progress reporter; `no_progress` when the caller asked for none (then a tool may skip the
    work of producing it, such as streaming an answer only to count it)."""
    if not _wants_progress(ctx):
        return no_progress

    async def report(done: float, total: float | None, message: str) -> None:
        await ctx.report_progress(done, total, message)

    return report


@contextmanager
def _tool_errors() -> Iterator[None]:
    try:
        yield
    except OpenRouterError as exc:
        caller = current_caller()
        if isinstance(exc, QuotaExceededError) and caller is not None:
            caller.refused_by = exc.limit
        raise ToolError(error_text(caller.explain(exc) if caller is not None else exc)) from None


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


def handler(
    name: str,
    model: type[BaseModel],
    run: Callable[..., Awaitable[CallToolResult]],
    result: type[BaseModel],
    doc: str,
    extra: Sequence[inspect.Parameter] = (),
) -> Callable[..., Awaitable[CallToolResult]]:
    """A tool handler whose parameters are `model`'s fields (their types, defaults, bounds and descriptions: the
    input model is their one declaration), plus the `Context` and any `extra` (resolved) parameters. It validates the
    arguments into `model` and calls `run(ctx, args, **extra)`."""
    extras = [p.name for p in extra]

    async def fn(ctx: Context, **kwargs: Any) -> CallToolResult:
        resolved = {name: kwargs.pop(name) for name in extras}
        with _tool_errors():
            return await run(ctx, model.model_validate(kwargs), **resolved)

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context), *extra]
    for field_name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True) if not field.is_required() else inspect.Parameter.empty
        parts: Any = (field.annotation, *field.metadata, Field(description=field.description))
        annotation: Any = Annotated[parts]  # Annotated[(T, *metadata)] is Annotated[T, *metadata]
        params.append(
            inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
    returns = Annotated[CallToolResult, result]
    fn.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    fn.__name__ = fn.__qualname__ = f"{name}_tool"
    fn.__doc__ = doc
    return fn


async def _ask(ctx: Context, args: AskInput) -> CallToolResult:
    result = await ask(call_state(), args, _progress(ctx))
    return _result(result, render_ask(result))


async def _compare(ctx: Context, args: CompareInput) -> CallToolResult:
    result = await compare_models(call_state(), args, _progress(ctx))
    return _result(result, render_compare(result))


async def _list_models(_ctx: Context, args: ListModelsInput) -> CallToolResult:
    page = await list_models(call_state(), search_query(args))
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


async def _deep_research(
    ctx: Context, args: ResearchInput, clarification: ElicitationResult[Clarification]
) -> CallToolResult:
    answers = clarification.data if isinstance(clarification, AcceptedElicitation) else None
    asked = isinstance(answers, Clarification)
    could_not_ask = isinstance(answers, _NotAsked) and not answers.could_ask
    result = await deep_research(
        call_state(),
        args,
        clarifications=answers if asked else None,
        assumed=could_not_ask or (args.clarify and not asked),
        progress=_progress(ctx),
    )
    return _research(result, ctx)


async def _benchmark_models(ctx: Context, args: BenchmarkInput) -> CallToolResult:
    return _benchmark(await benchmark_models(call_state(), args, _progress(ctx)), ctx)


class ResearchId(BaseModel):
    research_id: str = Field(description="the id deep_research returned")


class BenchmarkId(BaseModel):
    benchmark_id: str = Field(description="the id benchmark_models returned")


async def _get_research(ctx: Context, args: ResearchId) -> CallToolResult:
    return _research(await get_research(call_state(), args.research_id), ctx)


async def _cancel_research(ctx: Context, args: ResearchId) -> CallToolResult:
    return _research(await cancel_research(call_state(), args.research_id), ctx)


async def _get_benchmark(ctx: Context, args: BenchmarkId) -> CallToolResult:
    return _benchmark(await get_benchmark(call_state(), args.benchmark_id), ctx)


async def _cancel_benchmark(ctx: Context, args: BenchmarkId) -> CallToolResult:
    return _benchmark(await cancel_benchmark(call_state(), args.benchmark_id), ctx)


CLARIFY = inspect.Parameter(
    "clarification",
    inspect.Parameter.KEYWORD_ONLY,
    annotation=Annotated[ElicitationResult[Clarification], Resolve(_ask_first)],
)
DOCS = {
    "ask": """Ask one OpenRouter model: its answer, tokens and USD cost. web_search=true for current facts with numbered
    sources; urls to answer from pages; attachments to show files.""",
    "compare_models": """Send one prompt to 2-8 models in parallel and compare answers, tokens, cost and latency; a
    failing model is reported in its entry. judge_model adds a verdict.""",
    "list_models": """Find OpenRouter models: ids, context, USD per million tokens, modalities, capabilities. Cached;
    cheap.""",
    "deep_research": """Research a question on the web: a cited report, each cited claim checked against its page.
    Scaled to max_cost_usd and max_seconds; a stop returns a checked partial report. Long runs: background=true,
    then get_research.""",
    "get_research": "A research run's status, progress and spend so far, and its checked report and sources once done.",
    "cancel_research": """Stop a research run wherever it runs, keeping what it found; returns its partial, checked
    report.""",
    "benchmark_models": """Measure models on your prompts: success, latency p50/p95, first token, tokens/s, cost, and
    (judge_model) quality 1-10; ranked by objective with trade-offs. CSV, JSON, chart: benchmark://reports/{id}.""",
    "get_benchmark": "A benchmark's status and figures so far, or its ranked results.",
    "cancel_benchmark": "Stop a benchmark wherever it runs, keeping the calls it made.",
}


def _tool(fn: Callable[..., Any], name: str, title: str, hints: ToolAnnotations) -> Tool:
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

    def make(name: str, model: type[BaseModel], run: Any, result: type[BaseModel], *extra: inspect.Parameter) -> Any:
        return handler(name, model, run, result, inspect.cleandoc(DOCS[name]), extra)

    return [
        _tool(make("ask", AskInput, _ask, AskResult), "ask", "Ask a model", paid),
        _tool(
            make("compare_models", CompareInput, _compare, CompareResult),
            "compare_models",
            "Compare models side by side",
            paid,
        ),
        _tool(
            make("list_models", ListModelsInput, _list_models, ModelsPage), "list_models", "Find models", catalog_only
        ),
        _tool(
            make("deep_research", ResearchInput, _deep_research, ResearchResult, CLARIFY),
            "deep_research",
            "Deep research with citations",
            paid,
        ),
        _tool(
            make("get_research", ResearchId, _get_research, ResearchResult),
            "get_research",
            "Research status and report",
            status,
        ),
        _tool(
            make("cancel_research", ResearchId, _cancel_research, ResearchResult),
            "cancel_research",
            "Stop a research run",
            control,
        ),
        _tool(
            make("benchmark_models", BenchmarkInput, _benchmark_models, BenchmarkResult),
            "benchmark_models",
            "Benchmark models on your prompts",
            paid,
        ),
        _tool(
            make("get_benchmark", BenchmarkId, _get_benchmark, BenchmarkResult),
            "get_benchmark",
            "Benchmark status and results",
            status,
        ),
        _tool(
            make("cancel_benchmark", BenchmarkId, _cancel_benchmark, BenchmarkResult),
            "cancel_benchmark",
            "Stop a benchmark",
            control,
        ),
    ]
