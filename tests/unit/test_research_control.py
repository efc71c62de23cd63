"""Control over long runs: cancel keeps what was found; a run interrupted by a shutdown resumes without repeating
or paying again for the research already done."""

from __future__ import annotations

import asyncio

import pytest

from openrouter_research_mcp._util import no_progress
from openrouter_research_mcp.errors import RequestError
from openrouter_research_mcp.research.run import ResearchInput
from openrouter_research_mcp.tools.research import cancel_research, deep_research, get_research
from openrouter_research_mcp.tools.state import CallState

from ..fakes.openrouter import FakeOpenRouter
from ..support import eventually

PLAN = {
    "sub_questions": [
        {"question": f"How do honeybees {w}?", "rationale": "r"} for w in ("dance", "make honey", "choose a queen")
    ]
}


@pytest.fixture
def fake(fake_openrouter: FakeOpenRouter) -> FakeOpenRouter:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    fake_openrouter.structured_answers["research_gaps"] = {"gaps": [], "follow_up_questions": []}
    return fake_openrouter


def researchers(fake: FakeOpenRouter) -> list[str]:
    """The sub-question of every researcher request the fake saw."""
    return [r.body["messages"][-1]["content"].split("\n")[0] for r in fake.chat_requests() if r.body.get("tools")]


async def test_research_cancel_keeps_the_partial_report(fake: FakeOpenRouter, app_state: CallState) -> None:
    fake.model_latency["openai/gpt-4o-mini"] = 0.3
    started = await deep_research(
        app_state, ResearchInput(question="How do honeybees live?", depth=1, background=True), progress=no_progress
    )

    async def some_found() -> bool:
        return bool((await get_research(app_state, started.research_id)).sources)

    await eventually(some_found, timeout=10, what="a first researcher finishing")
    cancelled = await cancel_research(app_state, started.research_id)
    assert cancelled.status == cancelled.stopped_because == "cancelled"
    assert cancelled.report and "## Sources" in cancelled.report and cancelled.sources
    assert cancelled.verification.citations > 0 and "cancelled" in cancelled.progress
    again = await cancel_research(app_state, started.research_id)  # cancelling a finished run changes nothing
    assert again.status == "cancelled" and again.report == cancelled.report


async def test_research_interrupted_then_resumed_without_paying_twice(
    fake: FakeOpenRouter, app_state: CallState
) -> None:
    fake.model_latency["openai/gpt-4o-mini"] = 0.4
    app_state.shared.research.engine.concurrency = 1  # one researcher at a time, so the shutdown lands between two
    started = await deep_research(
        app_state, ResearchInput(question="How do honeybees live?", depth=1, background=True), progress=no_progress
    )

    async def two_found() -> bool:
        run = await app_state.shared.research.get(app_state.owner, started.research_id)
        return run is not None and sum(sq.status == "done" for r in run.rounds for sq in r.sub_questions) >= 2

    await eventually(two_found, timeout=10, what="two researchers finishing")
    jobs = app_state.shared.jobs
    jobs.shutting_down = True  # as a server stopping does
    handle = jobs.live[started.research_id]
    handle.stop("interrupted")
    assert handle.task is not None
    await asyncio.wait([handle.task])
    interrupted = await get_research(app_state, started.research_id)
    assert interrupted.status == "interrupted" and interrupted.report  # with its partial report
    run = await app_state.shared.research.get(app_state.owner, started.research_id)
    assert run is not None
    finished = {f"Sub-question: {sq.question}" for r in run.rounds for sq in r.sub_questions if sq.status == "done"}
    assert len(finished) >= 2
    spent_before = interrupted.cost_usd
    jobs.shutting_down = False  # the next server session
    fake.clear()
    fake.model_latency.clear()
    resumed = await deep_research(app_state, ResearchInput(resume=started.research_id), progress=no_progress)
    assert resumed.status == "done" and resumed.research_id == started.research_id
    again = researchers(fake)
    # Only what had not finished is researched again: nothing finished is asked (or paid for) twice.
    everything = {f"Sub-question: {q['question']}" for q in PLAN["sub_questions"]}
    assert set(again) == everything - finished and len(again) == len(set(again))
    assert not any("research_plan" in str(r.body.get("response_format")) for r in fake.chat_requests())
    assert resumed.cost_usd > spent_before and len(resumed.sources) >= len(interrupted.sources)


async def test_research_resume_refuses_a_finished_run(fake: FakeOpenRouter, app_state: CallState) -> None:
    done = await deep_research(
        app_state, ResearchInput(question="How do honeybees live?", depth=1), progress=no_progress
    )
    fake.clear()
    with pytest.raises(RequestError, match="only a run stopped early"):
        await deep_research(app_state, ResearchInput(resume=done.research_id), progress=no_progress)
    assert fake.chat_requests() == []
