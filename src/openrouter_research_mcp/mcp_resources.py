"""The MCP resources: the catalog, the caller's usage and account, and the caller's research runs and benchmarks.

Each reader gets its caller from the request (`callers.py`; static resources have no `Context`), renders, and turns
anticipated failures into resource errors whose text is meant for people: an unknown id, or another caller's, is
"not found" (-32602).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from .callers import call_state
from .errors import NotFoundError, OpenRouterError
from .openrouter.account import account_info
from .tools.benchmark import benchmark_resource
from .tools.render import (
    render_account,
    render_benchmark_index,
    render_model_detail,
    render_models_index,
    render_research_index,
    render_usage,
)
from .tools.research import research_report
from .tools.state import today

__all__ = ["register_resources"]


@contextmanager
def _resource_errors() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise ResourceNotFoundError(exc.message) from None
    except OpenRouterError as exc:
        raise ResourceError(exc.message) from None


def _benchmark_reader(kind: str) -> Any:
    async def read(benchmark_id: str) -> str:
        with _resource_errors():
            return await benchmark_resource(call_state(), benchmark_id, kind)

    return read


def register_resources(mcp: MCPServer) -> None:
    """Register every resource on `mcp`."""

    @mcp.resource(
        "openrouter://models",
        name="models",
        title="Model catalog index",
        mime_type="application/json",
        description="Every model: id, context, USD per million prompt/completion tokens.",
    )
    async def models_index() -> str:
        with _resource_errors():
            return render_models_index(await call_state().catalog.get())

    @mcp.resource(
        "openrouter://models/{+model_id}",
        name="model",
        title="One model's metadata",
        mime_type="application/json",
        description="Everything the catalog says about one model.",
    )
    async def model_detail(model_id: str) -> str:
        with _resource_errors():
            return render_model_detail(await call_state().catalog.lookup(model_id))

    @mcp.resource(
        "openrouter://usage",
        name="usage",
        title="Your usage and quotas",
        mime_type="application/json",
        description="Your calls, tokens and USD cost this session by model, today's and this month's, and your "
        "quotas on this server: each limit, what is used and held, and when it resets.",
    )
    async def usage() -> str:
        state = call_state()
        return render_usage(state.caller.usage, await state.ledger(), today(), await state.quota())

    @mcp.resource(
        "openrouter://account",
        name="account",
        title="OpenRouter account",
        mime_type="application/json",
        description="The key's limits, usage and credits (never the key itself).",
    )
    async def account() -> str:
        with _resource_errors():
            return render_account(await account_info(call_state().get_json))

    @mcp.resource(
        "research://reports",
        name="research_reports",
        title="Research runs",
        mime_type="application/json",
        description="Every saved research run: id, question, status, cost.",
    )
    async def research_reports() -> str:
        state = call_state()
        await state.shared.ready()
        runs, _total = await state.shared.research.list(state.owner)
        return render_research_index(runs)

    @mcp.resource(
        "research://reports/{research_id}",
        name="research_report",
        title="One research report",
        mime_type="text/markdown",
        description="A run's full report with its numbered sources.",
    )
    async def research_report_resource(research_id: str) -> str:
        with _resource_errors():
            return await research_report(call_state(), research_id)

    @mcp.resource(
        "benchmark://reports",
        name="benchmark_reports",
        title="Benchmarks",
        mime_type="application/json",
        description="Every benchmark: id, status, models, objective, ranking, cost.",
    )
    async def benchmark_reports() -> str:
        state = call_state()
        await state.shared.ready()
        reports, _total = await state.shared.benchmarks.list(state.owner)
        return render_benchmark_index(reports)

    # The suffixed forms first: `{benchmark_id}` alone would also match `<id>.csv`.
    for suffix, mime, what in (
        ("csv", "text/csv", "per-model figures as CSV"),
        ("json", "application/json", "every call and figure as JSON"),
        ("svg", "image/svg+xml", "chart: cost against quality, bubble size latency"),
    ):
        mcp.resource(
            f"benchmark://reports/{{benchmark_id}}.{suffix}",
            name=f"benchmark_{suffix}",
            title=f"Benchmark {suffix.upper()}",
            mime_type=mime,
            description=f"A benchmark's {what}.",
        )(_benchmark_reader(suffix))

    @mcp.resource(
        "benchmark://reports/{benchmark_id}",
        name="benchmark_report",
        title="One benchmark",
        mime_type="text/markdown",
        description="A benchmark's ranked report.",
    )
    async def benchmark_report(benchmark_id: str) -> str:
        with _resource_errors():
            return await benchmark_resource(call_state(), benchmark_id, "md")
