"""The job system under races: concurrent resumes start a job once, a refused resume changes nothing, a cancel
stored by another process stops the job where it runs, and a job that fails for any reason ends failed with it."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openrouter_research_mcp._util import no_progress
from openrouter_research_mcp.benchmark.report import BenchmarkInput
from openrouter_research_mcp.benchmark.runner import Runner
from openrouter_research_mcp.errors import BudgetExceededError, RequestError
from openrouter_research_mcp.research.run import ResearchInput
from openrouter_research_mcp.tools.benchmark import benchmark_models, cancel_benchmark, get_benchmark, render_benchmark
from openrouter_research_mcp.tools.render import render_research
from openrouter_research_mcp.tools.research import cancel_research, deep_research, get_research
from openrouter_research_mcp.tools.state import CallState

from ..fakes.openrouter import FakeOpenRouter
from ..support import eventually, tool_state

PLAN = {"sub_questions": [{"question": f"How do honeybees {w}?", "rationale": "r"} for w in ("dance", "swarm")]}


@pytest.fixture
def fake(fake_openrouter: FakeOpenRouter) -> FakeOpenRouter:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    fake_openrouter.structured_answers["research_gaps"] = {"gaps": [], "follow_up_questions": []}
    return fake_openrouter


@pytest.fixture
async def other(fake: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[CallState]:
    """A second server on the same data directory (another host started it), for the same local user."""
    async with tool_state(fake, tmp_path, cache="cache-b") as state:
        yield state


async def interrupted_run(fake: FakeOpenRouter, state: CallState) -> str:
    """A research run stopped by a shutdown after its first researcher finished."""
    fake.release.clear()
    started = await deep_research(
        state, ResearchInput(question="How do honeybees live?", depth=1, background=True), progress=no_progress
    )
    jobs = state.shared.jobs
    handle = jobs.live[started.research_id]
    jobs.shutting_down = True
    handle.stop("interrupted")
    fake.release.set()
    assert handle.task is not None
    await asyncio.wait([handle.task])
    jobs.shutting_down = False
    return started.research_id


async def test_jobs_twenty_concurrent_resumes_start_exactly_one(fake: FakeOpenRouter, app_state: CallState) -> None:
    research_id = await interrupted_run(fake, app_state)
    fake.release.clear()  # the winner stays running while the others try
    attempts = await asyncio.gather(
        *(
            deep_research(app_state, ResearchInput(resume=research_id, background=True), progress=no_progress)
            for _ in range(20)
        ),
        return_exceptions=True,
    )
    started = [a for a in attempts if not isinstance(a, BaseException)]
    refused = [a for a in attempts if isinstance(a, RequestError)]
    assert len(started) == 1 and len(refused) == 19
    assert all(research_id in r.message and "already running" in r.message for r in refused)
    fake.release.set()
    done = await eventually(lambda: _status(app_state, research_id, "done"), timeout=20, what="the resumed run ending")
    assert done.status == "done"


async def _status(state: CallState, research_id: str, wanted: str) -> object:
    result = await get_research(state, research_id)
    return result if result.status == wanted else None


async def test_jobs_a_refused_resume_leaves_the_run_exactly_as_it_was(
    fake: FakeOpenRouter, app_state: CallState
) -> None:
    research_id = await interrupted_run(fake, app_state)
    before = await app_state.shared.store.get(research_id, app_state.owner)
    with pytest.raises(BudgetExceededError, match="the run is unchanged"):
        await deep_research(app_state, ResearchInput(resume=research_id, max_cost_usd=0.00001), progress=no_progress)
    after = await app_state.shared.store.get(research_id, app_state.owner)
    assert before is not None and after is not None
    assert (after.version, after.status, after.data) == (before.version, before.status, before.data)
    again = await deep_research(app_state, ResearchInput(resume=research_id), progress=no_progress)  # still resumable
    assert again.status == "done"


async def test_jobs_a_cancel_stored_by_another_process_stops_the_run_where_it_runs(
    fake: FakeOpenRouter, app_state: CallState, other: CallState
) -> None:
    fake.release.clear()
    started = await deep_research(
        app_state, ResearchInput(question="How do honeybees live?", depth=1, background=True), progress=no_progress
    )
    seen = await get_research(other, started.research_id)
    assert seen.status == "running"  # the other process sees it running there, not interrupted
    with pytest.raises(RequestError, match="already running"):  # and cannot start it a second time
        await deep_research(other, ResearchInput(resume=started.research_id), progress=no_progress)
    stopped = await cancel_research(other, started.research_id)  # stored, then noticed by the holder
    fake.release.set()
    assert stopped.status == "cancelled" and stopped.report
    assert started.research_id not in app_state.shared.jobs.live


async def test_jobs_a_job_another_process_runs_is_shown_running_there(
    fake: FakeOpenRouter, app_state: CallState, other: CallState
) -> None:
    there = f"in another process (pid {os.getpid()} on host {socket.gethostname()})"  # what its lease holder says
    fake.release.clear()  # both jobs stay running in `app_state`'s server while `other` looks
    run = await deep_research(
        app_state, ResearchInput(question="How do honeybees live?", depth=1, background=True), progress=no_progress
    )
    bench = await benchmark_models(
        app_state,
        BenchmarkInput(prompts=["Is 17 prime?"], models=["openai/gpt-4o-mini", "openai/gpt-4o"], background=True),
    )
    seen = await get_research(other, run.research_id)
    assert seen.status == "running" and seen.progress.startswith(there)
    assert f"Research running: {there}" in render_research(seen)
    measured = await get_benchmark(other, bench.benchmark_id)
    assert measured.status == "running" and f"is running: {there}" in render_benchmark(measured)
    with pytest.raises(RequestError, match=re.escape(f"already running {there}")):
        await deep_research(other, ResearchInput(resume=run.research_id), progress=no_progress)
    here = await get_research(app_state, run.research_id)  # the server running it says nothing of the sort
    assert "another process" not in here.progress and "another process" not in render_research(here)
    assert "another process" not in (await get_benchmark(app_state, bench.benchmark_id)).progress
    fake.release.set()


async def test_jobs_another_callers_run_answers_like_a_missing_one(app_state: CallState) -> None:
    stranger = app_state.shared.for_caller(app_state.shared.caller("mallory"))
    started = await deep_research(
        app_state, ResearchInput(question="How do honeybees live?", depth=1, background=True), progress=no_progress
    )
    for attempt in (get_research(stranger, started.research_id), cancel_research(stranger, started.research_id)):
        with pytest.raises(Exception, match="No research run has the id") as caught:
            await attempt
        assert "mallory" not in str(caught.value) and started.research_id in str(caught.value)
    assert (await stranger.shared.research.list(stranger.owner))[1] == 0


async def test_jobs_a_benchmark_whose_judge_fails_unexpectedly_ends_failed_with_the_reason(
    app_state: CallState, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_self: Runner, *_args: object) -> None:
        raise RuntimeError("the judge's parser crashed")

    monkeypatch.setattr(Runner, "_judge", broken)
    args = BenchmarkInput(
        prompts=["Is 17 prime?"],
        models=["openai/gpt-4o-mini", "openai/gpt-4o"],
        judge_model="openai/gpt-4o-mini",
        background=True,
    )
    with caplog.at_level(logging.ERROR):
        started = await benchmark_models(app_state, args)
        failed = await eventually(
            lambda: _benchmark_status(app_state, started.benchmark_id, "failed"), what="the benchmark failing"
        )
    assert failed.error and "the judge's parser crashed" in failed.error
    assert any("failed" in r.getMessage() for r in caplog.records)  # logged, with its traceback
    assert (
        await cancel_benchmark(app_state, started.benchmark_id)
    ).status == "failed"  # ended: a cancel changes nothing


async def _benchmark_status(state: CallState, benchmark_id: str, wanted: str) -> object:
    report = await get_benchmark(state, benchmark_id)
    return report if report.status == wanted else None
