"""`deep_research` and `get_research`, free of MCP: arguments in, `ResearchResult` out."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, Field

from .._util import Progress, no_progress
from ..errors import AuthError, NotFoundError, RequestError, UpstreamUnavailableError
from ..openrouter.pricing import Usage
from ..research.run import ResearchInput, ResearchParams, ResearchRun
from .checks import require_structured
from .render import render_research
from .results import ResearchResult, RoundSummary
from .state import CallState

__all__ = [
    "ASSUMED",
    "Clarification",
    "cancel_research",
    "deep_research",
    "get_research",
    "research_report",
    "research_result",
]


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
        plan=run.plan,
        verification=run.verification,
        citations=run.citations,
        searches=run.searches,
        pages_read=run.pages_read,
    )


class Clarification(BaseModel):
    """What the user is asked before a research run plans (every answer optional)."""

    audience: str = Field(default="", description="Who is the report for?")
    focus: str = Field(default="", description="What should it focus on, or leave out?")
    timeframe: str = Field(default="", description="Which period, place or version matters?")


ASSUMED = [
    "written for an informed general reader",
    "the question as asked, with no part left out",
    "the most recent information available",
]


async def deep_research(
    state: CallState,
    args: ResearchInput,
    *,
    clarifications: Clarification | None = None,
    assumed: bool = False,
    progress: Progress = no_progress,
) -> ResearchResult:
    """Validate, then run (or start in the background) a research job, or resume a stopped one. `clarifications`
    are the user's answers before planning; `assumed` says the user could not be asked (the report notes what was
    assumed instead)."""
    if args.resume:
        return await _resume(state, args, progress)
    if not args.question.strip():
        raise RequestError("The question is empty. Pass what to research in `question` (or `resume` a stopped run).")
    if not state.has_key:
        raise AuthError.missing()
    default = state.settings.default_model
    answers = {k: v.strip() for k, v in (clarifications.model_dump() if clarifications else {}).items() if v.strip()}
    params = ResearchParams.model_validate(
        {
            **args.model_dump(),
            "question": args.question.strip(),
            "max_cost_usd": args.max_cost_usd
            if args.max_cost_usd is not None
            else state.settings.research_max_cost_usd,
            "planner_model": args.planner_model or default,
            "searcher_model": args.searcher_model or default,
            "writer_model": args.writer_model or default,
            "clarifications": answers,
            "assumptions": ASSUMED if assumed else [],
        }
    )
    started = time.monotonic()
    try:  # checking models and prices may use at most a third of max_seconds
        async with asyncio.timeout(params.max_seconds / 3):
            run, models = await state.shared.research.prepare(params)
    except TimeoutError:
        raise UpstreamUnavailableError(
            "deep_research needs the model catalog to price and cap its calls, and it "
            "did not load in time. Try again in a minute."
        ) from None
    require_structured(state, models.get(params.planner_model), "planner")
    run = await state.shared.research.start(
        run,
        models,
        owner=state.owner,
        chat=state.chat,
        key_source=state.caller.key_source,
        progress=progress,
        started=started,
        background=params.background,
        max_jobs=state.caller.limits.jobs,
    )
    return research_result(run)


async def _resume(state: CallState, args: ResearchInput, progress: Progress) -> ResearchResult:
    """Go on with a stopped run: its finished research is kept (not repeated, not paid for again); the new
    `max_cost_usd` (default: the configured one) bounds what the continuation may spend."""
    if not state.has_key:
        raise AuthError.missing()
    assert args.resume is not None
    budget = args.max_cost_usd if args.max_cost_usd is not None else state.settings.research_max_cost_usd
    await state.shared.ready()
    run = await state.shared.research.resume(
        state.owner,
        args.resume.strip(),
        {"max_cost_usd": budget, "max_seconds": args.max_seconds},
        chat=state.chat,
        progress=progress,
        background=args.background,
        max_jobs=state.caller.limits.jobs,
    )
    return research_result(run)


async def cancel_research(state: CallState, research_id: str) -> ResearchResult:
    """Stop a run in progress, keeping what it found: the partial report comes back."""
    await _find(state, research_id)
    run = await state.shared.research.cancel(state.owner, research_id.strip())
    if run is None:  # pragma: no cover - _find found it a moment ago
        raise NotFoundError(f"No research run has the id `{research_id}`.")
    return research_result(run)


async def _find(state: CallState, research_id: str) -> ResearchRun:
    await state.shared.ready()
    run = await state.shared.research.get(state.owner, research_id.strip())
    if run is None:
        known, _total = await state.shared.research.list(state.owner, limit=5)
        hint = f" Recent runs: {', '.join(r.research_id for r in known)}." if known else " No runs have been saved yet."
        raise NotFoundError(f"No research run has the id `{research_id}`.{hint}")
    return run


async def get_research(state: CallState, research_id: str) -> ResearchResult:
    """Status, progress, spend so far, and the report when done."""
    return research_result(await _find(state, research_id))


async def research_report(state: CallState, research_id: str) -> str:
    """`research://reports/{id}`: the run's full markdown report (or its status while it has none)."""
    result = research_result(await _find(state, research_id))
    return result.report or render_research(result)
