"""`deep_research` and `get_research`, free of MCP: arguments in, `ResearchResult` out."""

from __future__ import annotations

import asyncio
import time

from .._util import Progress
from ..errors import AuthError, NotFoundError, RequestError, UpstreamUnavailableError
from ..openrouter.pricing import Usage
from ..research.run import ResearchParams, ResearchRun
from .checks import require_structured
from .render import render_research
from .results import ResearchResult, RoundSummary
from .state import AppState

__all__ = ["deep_research", "get_research", "research_report", "research_result"]


def research_result(run: ResearchRun) -> ResearchResult:
    """The structured view of a run."""
    totals = Usage.total(run.spend)
    return ResearchResult(
        research_id=run.research_id,
        question=run.params.question,
        status=run.status,
        stopped_because=run.stopped_because,
        progress=run.progress,
        report=run.report,
        sources=run.sources,
        sub_questions=[
            RoundSummary(round=r.n, sub_questions=[sq.question for sq in r.sub_questions], gaps=r.gaps)
            for r in run.rounds
        ],
        open_questions=run.open_questions,
        removed_citations=run.removed_citations,
        usage=run.spend,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        cost_usd=run.cost_usd,
        max_cost_usd=run.params.max_cost_usd,
        upstream_requests=run.upstream_requests,
        timings=run.timings,
        error=run.error,
        warnings=run.warnings,
    )


async def deep_research(
    state: AppState,
    question: str,
    *,
    breadth: int = 3,
    depth: int = 2,
    max_cost_usd: float | None = None,
    max_seconds: float = 50,
    planner_model: str | None = None,
    searcher_model: str | None = None,
    writer_model: str | None = None,
    background: bool = False,
    progress: Progress,
) -> ResearchResult:
    """Validate, then run (or start in the background) a research job."""
    if not question.strip():
        raise RequestError("The question is empty. Pass what to research in `question`.")
    if not state.settings.has_api_key:
        raise AuthError.missing()
    default = state.settings.default_model
    params = ResearchParams(
        question=question.strip(),
        breadth=breadth,
        depth=depth,
        max_cost_usd=max_cost_usd if max_cost_usd is not None else state.settings.research_max_cost_usd,
        max_seconds=max_seconds,
        planner_model=planner_model or default,
        searcher_model=searcher_model or default,
        writer_model=writer_model or default,
        background=background,
    )
    started = time.monotonic()
    try:  # checking models and prices may use at most a third of max_seconds
        async with asyncio.timeout(max_seconds / 3):
            run, models = await state.research.prepare(params)
    except TimeoutError:
        raise UpstreamUnavailableError(
            "deep_research needs the model catalog to price and cap its calls, and it "
            "did not load in time. Try again in a minute."
        ) from None
    require_structured(state, models.get(params.planner_model), "planner")
    if background:
        return research_result(await state.research.start_background(run, models))
    return research_result(await state.research.run(run, models, progress, started=started))


async def _find(state: AppState, research_id: str) -> ResearchRun:
    run = await state.research.get(research_id.strip())
    if run is None:
        known = [r.research_id for r in (await state.research.list())[:5]]
        hint = f" Recent runs: {', '.join(known)}." if known else " No runs have been saved yet."
        raise NotFoundError(f"No research run has the id `{research_id}`.{hint}")
    return run


async def get_research(state: AppState, research_id: str) -> ResearchResult:
    """Status, progress, spend so far, and the report when done."""
    return research_result(await _find(state, research_id))


async def research_report(state: AppState, research_id: str) -> str:
    """`research://reports/{id}`: the run's full markdown report (or its status while it has none)."""
    result = research_result(await _find(state, research_id))
    return result.report or render_research(result)
