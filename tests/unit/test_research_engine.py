"""deep_research without MCP, against the fake OpenRouter on loopback: the whole loop, offline."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from openrouter_research_mcp._util import usd
from openrouter_research_mcp.errors import AuthError, BudgetExceededError, ModelNotFoundError
from openrouter_research_mcp.research.run import ResearchInput
from openrouter_research_mcp.tools.render import render_research
from openrouter_research_mcp.tools.research import cancel_research, deep_research, get_research
from openrouter_research_mcp.tools.results import ResearchResult
from openrouter_research_mcp.tools.state import CallState

from ..fakes.openrouter import FakeOpenRouter
from ..support import PROMPTLY, eventually

PLAN = {"sub_questions": [{"question": f"Sub-question {i}?", "rationale": f"covers part {i}"} for i in (1, 2, 3)]}
GAPS = {
    "gaps": ["costs are unclear"],
    "follow_up_questions": [{"question": "What does it cost?", "rationale": "a gap"}],
}
NO_GAPS: dict[str, list[str]] = {"gaps": [], "follow_up_questions": []}


@pytest.fixture
def fake(fake_openrouter: FakeOpenRouter) -> FakeOpenRouter:
    """The fake OpenRouter, planning three sub-questions and reflecting with one follow-up."""
    fake_openrouter.structured_answers.update({"research_plan": PLAN, "research_gaps": GAPS})
    return fake_openrouter


@pytest.fixture
def state(fake: FakeOpenRouter, app_state: CallState) -> CallState:  # noqa: ARG001 - `fake` primes the answers first
    return app_state


class Notes:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []

    async def __call__(self, done: float, _total: float | None, message: str) -> None:
        self.seen.append((done, message))


def searches(fake: FakeOpenRouter) -> list[Any]:
    """The chat requests that asked to search the web (server tool or plugin)."""
    return [
        r
        for r in fake.chat_requests()
        if r.body and (r.body.get("tools") or any(p.get("id") == "web" for p in r.body.get("plugins") or []))
    ]


def cited(report: str) -> set[int]:
    body = report.split("## Sources")[0]
    return {int(n) for n in re.findall(r"\[(\d+)\]", body)}


async def test_research_full_loop_parallel_reflective_and_cited(fake: FakeOpenRouter, state: CallState) -> None:
    fake.latency = 0.3
    notes = Notes()
    result = await deep_research(
        state, ResearchInput(question="How do heat pumps work in cold climates?", breadth=3, depth=2), progress=notes
    )
    assert result.status == "done" and result.stopped_because == "done"
    assert [r.sub_questions for r in result.sub_questions] == [
        ["Sub-question 1?", "Sub-question 2?", "Sub-question 3?"],
        ["What does it cost?"],
    ]
    assert result.open_questions == ["costs are unclear"]
    assert len(searches(fake)) == 4 and fake.max_concurrency() == 3  # the three first-round researchers overlapped
    researcher = searches(fake)[0].body
    assert [t["type"] for t in researcher["tools"]] == ["openrouter:web_search", "openrouter:web_fetch"]
    assert (
        researcher["tool_choice"] == {"type": "openrouter:web_search"}
        and "read" in researcher["messages"][0]["content"]
    )
    assert result.pages_read == 12 and result.searches == 4  # three pages read per researcher
    assert len(result.sources) == 12 and [s.n for s in result.sources] == list(range(1, 13))
    assert {s.found_by for s in result.sources} >= {"Sub-question 1?", "What does it cost?"}
    report = result.report or ""
    v = result.verification
    assert f"_{v.line()}_" in report and v.line().startswith("8 citations; 8 quotes found on the cited page")
    assert "## Method" in report and "4 web searches and 12 pages read" in report
    assert cited(report) <= {s.n for s in result.sources} and result.removed_citations == 0
    # The fake writer's claims are its pages' own sentences: supported in code, so no verifier call is needed.
    assert v.quotes_found == v.supported == v.supported_by_code == v.citations == 8 and v.citation_accuracy == 1
    assert all(c.quote_found and c.support == "supported" and c.shown == f"[{c.n}]" for c in result.citations)
    assert {u.stage for u in result.usage} == {"plan", "search", "reflect", "write"}  # nothing left to verify
    assert 0 < result.cost_usd <= result.max_cost_usd == 0.5
    assert result.plan and (result.plan.breadth, result.plan.depth, result.plan.scaled_because) == (3, 2, [])
    assert result.upstream_requests == len(fake.chat_requests()) == 7
    assert [m for _, m in notes.seen][0] == "planning" and any(m.startswith("researching 2/3") for _, m in notes.seen)
    assert any(m == "reflecting on the findings" for _, m in notes.seen) and notes.seen[-1][1] == "writing the report"
    assert [d for d, _ in notes.seen] == sorted(d for d, _ in notes.seen)  # progress only ever increases


async def test_research_stops_when_reflection_finds_no_gap(fake: FakeOpenRouter, state: CallState) -> None:
    fake.structured_answers["research_gaps"] = NO_GAPS
    result = await deep_research(state, ResearchInput(question="What is a heat pump?", depth=3), progress=Notes())
    assert len(result.sub_questions) == 1 and result.stopped_because == "done"


async def test_research_writer_inventions_are_removed(fake: FakeOpenRouter, state: CallState) -> None:
    fake.writer_extra = (
        "Made up [42] and [99]. See https://invented.example/paper and [a fake](https://fake.example/x)."
    )
    result = await deep_research(
        state, ResearchInput(question="How do honeybees communicate?", depth=1), progress=Notes()
    )
    assert result.report is not None
    assert "invented.example" not in result.report and "fake.example" not in result.report
    assert "[42" not in result.report and "[99" not in result.report
    assert result.removed_citations == 4 and result.verification.removed == 2
    urls = {u.rstrip(".,:;") for u in re.findall(r"https?://[^\s)\]>]+", result.report)}
    assert urls <= {s.url for s in result.sources}


async def test_research_small_budget_scales_the_plan_instead_of_refusing(
    fake: FakeOpenRouter, state: CallState
) -> None:
    result = await deep_research(
        state, ResearchInput(question="Heat pumps?", breadth=6, depth=3, max_cost_usd=0.03), progress=Notes()
    )
    assert result.status == "done" and result.cost_usd <= 0.03
    plan = result.plan
    assert plan is not None and "budget" in plan.scaled_because and plan.worst_case_usd <= 0.03
    assert (plan.breadth, plan.depth, plan.searches, plan.fetches) < (6, 3, 2, 3)
    assert len(searches(fake)) == sum(max(1, plan.breadth // 2**n) for n in range(len(result.sub_questions)))
    assert (
        result.verification.citations
        and result.report
        and result.report.rstrip().endswith(f"_{result.verification.line()}_")
    )


async def test_research_budget_stop_keeps_a_verified_partial_report(fake: FakeOpenRouter, state: CallState) -> None:
    fake.usage_patch["cost"] = 0.15  # every call costs more than its worst case was estimated: a lying price list
    fake.structured_answers["research_plan"] = {
        "sub_questions": [{"question": f"Q{i}?", "rationale": "r"} for i in range(6)]
    }
    result = await deep_research(
        state,
        ResearchInput(question="How do honeybees communicate?", breadth=6, depth=1, max_cost_usd=0.5),
        progress=Notes(),
    )
    assert result.stopped_because == "budget" and result.status == "done"  # finished early, for its budget
    assert 1 <= len(searches(fake)) < 6 and result.report and "## Sources" in result.report
    assert "without a writer model" in result.report  # the writer did not fit: the report was assembled in code
    assert result.verification.citations > 0 and result.verification.quotes_found > 0


async def test_research_refuses_a_budget_too_small_to_start(fake: FakeOpenRouter, state: CallState) -> None:
    with pytest.raises(BudgetExceededError, match=r"Not even the smallest research .* at least \$0\.\d+"):
        await deep_research(
            state,
            ResearchInput(question="Heat pumps?", writer_model="anthropic/claude-sonnet-4", max_cost_usd=0.001),
            progress=Notes(),
        )
    assert fake.chat_requests() == []


async def test_research_unknown_model_override_rejected_before_spending(fake: FakeOpenRouter, state: CallState) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        await deep_research(
            state, ResearchInput(question="Heat pumps?", searcher_model="openai/gpt4o-mini"), progress=Notes()
        )
    assert "openai/gpt-4o-mini" in caught.value.message and fake.chat_requests() == []


async def test_research_time_stop_returns_partial_report(fake: FakeOpenRouter, state: CallState) -> None:
    fake.latency = 0.6
    started = time.monotonic()
    result = await deep_research(
        state, ResearchInput(question="Heat pumps?", breadth=3, depth=3, max_seconds=3), progress=Notes()
    )
    elapsed = time.monotonic() - started
    assert result.stopped_because == "time" and elapsed < 3 + PROMPTLY / 2  # stopped, not run to its end
    assert result.report and "## Sources" in result.report and result.research_id


async def test_research_background_then_poll(fake: FakeOpenRouter, state: CallState) -> None:
    fake.latency = 0.2
    started = await deep_research(
        state, ResearchInput(question="Heat pumps?", depth=1, background=True), progress=Notes()
    )
    assert started.status == "running" and started.report is None

    async def finished() -> ResearchResult | None:
        polled = await get_research(state, started.research_id)
        return polled if polled.status != "running" else None

    polled = await eventually(
        finished,
        timeout=20,
        interval=0.1,
        what="the background run finishing",
    )
    assert polled.status == "done" and polled.report and polled.cost_usd > 0


async def test_research_cancel_stops_work_and_saves(fake: FakeOpenRouter, state: CallState, tmp_path: Path) -> None:
    fake.fail(kind="hang", times=10, model="openai/gpt-4o-mini")
    fake.structured_answers.pop("research_plan")
    task = asyncio.create_task(deep_research(state, ResearchInput(question="Heat pumps?"), progress=Notes()))
    await eventually(fake.chat_requests, what="the first request reaching the fake")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the fake notices each closed connection within a poll or two
    await eventually(lambda: all(r.finished is not None for r in fake.chat_requests()), what="every request closing")
    db = sqlite3.connect(tmp_path / "data" / "jobs.db")  # what another process would read
    [(status, data)] = db.execute("SELECT status, data FROM jobs WHERE kind = 'research'").fetchall()
    run = json.loads(data)
    assert status == run["status"] == "cancelled" and run["stopped_because"] == "cancelled"


async def test_research_heartbeat_keeps_progress_flowing(
    fake: FakeOpenRouter, state: CallState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("openrouter_research_mcp.research.engine.HEARTBEAT_S", 0.1)
    fake.latency = 0.5
    notes = Notes()
    await deep_research(state, ResearchInput(question="Heat pumps?", depth=1), progress=notes)
    beats = [m for _, m in notes.seen if re.search(r"\(\d+ s, \$[\d.]+ spent\)$", m)]
    assert len(beats) >= 5 and any(b.startswith("planning") for b in beats)
    gaps = [b - a for (a, _), (b, _) in zip(notes.seen, notes.seen[1:], strict=False)]
    assert all(g == 1 for g in gaps)  # every notification advances the counter by one


async def test_research_revoked_key_fails_clearly(fake: FakeOpenRouter, state: CallState) -> None:
    fake.api_key = "sk-or-v1-someone-else"
    with pytest.raises(AuthError, match="401"):
        await deep_research(state, ResearchInput(question="Heat pumps?"), progress=Notes())
    [summary], _total = await state.shared.research.list(state.owner)
    run = await state.shared.research.get(state.owner, summary.research_id)
    assert summary.status == "failed" and run and run.error and "401" in run.error
    assert len(fake.chat_requests()) == 1  # the planner's refusal ended the run: nothing else was tried


async def test_research_all_searches_failing_is_a_failed_run(fake: FakeOpenRouter, state: CallState) -> None:
    fake.fail(503, times=30, model="openai/gpt-4o-mini")
    result = await deep_research(
        state,
        ResearchInput(
            question="Heat pumps?",
            depth=1,
            writer_model="google/gemini-2.5-flash",
            planner_model="google/gemini-2.5-flash",
        ),
        progress=Notes(),
    )
    assert result.status == "failed" and result.error and "503" in result.error and result.sources == []


async def test_research_report_neutralises_script_links_and_raw_html(fake: FakeOpenRouter, state: CallState) -> None:
    fake.text_answers["google/gemini-2.5-flash"] = (
        "## Summary\nSee <a href='javascript:alert(6)'>this</a> and ![img](data:image/svg+xml,<svg/onload=alert(7)>) "
        "and [evil](javascript:alert(4)) <img src=x onerror=alert(1)>."
    )
    result = await deep_research(
        state, ResearchInput(question="Heat pumps?", depth=1, writer_model="google/gemini-2.5-flash"), progress=Notes()
    )
    report = result.report or ""
    assert "](javascript:" not in report and "data:image" not in report and "<img" not in report and "<a " not in report
    assert "‹a href=" in report and "‹img" in report  # raw HTML is shown as text, never run
    assert "&lt;" not in report and "&gt;" not in report  # and without entities, which plain-text hosts show raw


def method_line(report: str) -> str:
    return next(line for line in report.splitlines() if "researcher calls" in line)


@pytest.mark.parametrize("stop", ["done", "cancelled at the writer"])
async def test_research_text_agrees_with_the_result(fake: FakeOpenRouter, state: CallState, stop: str) -> None:
    question = ResearchInput(question="Heat pumps?", depth=1, writer_model="google/gemini-2.5-flash", background=True)
    if stop != "done":
        fake.pass_only(4)  # the plan and three researchers answer; the writer is held
    started = await deep_research(state, question, progress=Notes())
    if stop != "done":
        await eventually(lambda: len(fake.chat_requests()) == 5, what="the writer's request reaching the fake")
        await cancel_research(state, started.research_id)

    async def ended() -> ResearchResult | None:
        polled = await get_research(state, started.research_id)
        return polled if polled.status != "running" and polled.report else None

    result = await eventually(ended, what="the run ending with a report")
    report, shown = result.report or "", render_research(result)
    method = method_line(report)
    # Who wrote it: the Method line and the text say the same thing.
    if stop == "done":
        assert "written by `google/gemini-2.5-flash`" in method and "without a writer model" not in report
    else:
        assert result.status == "cancelled" and "written by" not in report
        assert "no writer model ran" in method and "without a writer model" in report
    # How long and how much: the Method line and the footer state the same figures.
    seconds = re.search(r"and ([\d.]+) s\.$", method)
    assert seconds and f"· {seconds.group(1)} s" in shown
    assert f"{usd(result.cost_usd)} and" in method and f"{usd(result.cost_usd)} of" in shown
    assert not re.search(r"\$\d+\.\d*e-?\d|\$0\.0000\b|\$0\.000000\b", shown)  # one money format
