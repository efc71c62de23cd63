"""Everything the server writes as JSON is strict JSON: no NaN or Infinity, whether the impossible number came
from upstream, a saved job written by another program, or a run's own fields."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

from openrouter_research_mcp._util import strict_json
from openrouter_research_mcp.benchmark.report import BenchmarkParams, BenchmarkReport
from openrouter_research_mcp.jobs.sqlite import DB_FILE
from openrouter_research_mcp.jobs.store import JobRecord
from openrouter_research_mcp.research.run import ResearchParams, ResearchRun
from openrouter_research_mcp.tools.benchmark import benchmark_resource, get_benchmark
from openrouter_research_mcp.tools.render import render_benchmark_index, render_research_index
from openrouter_research_mcp.tools.research import get_research, research_report

from ..fakes.openrouter import FakeOpenRouter
from ..support import tool_state

RUN_ID = "20261202-120000-0000abcd"
BENCH_ID = "bench-20261202-120000-0000abcd"


def strict(text: str) -> Any:
    """Parse `text` as strict JSON: NaN, Infinity and -Infinity are refused."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_strict_json_turns_impossible_numbers_into_null() -> None:
    value = {"a": math.nan, "b": [math.inf, 1.5, {"c": -math.inf}], "d": (2, math.nan)}
    assert strict(strict_json(value)) == {"a": None, "b": [None, 1.5, {"c": None}], "d": [2, None]}


async def test_saved_jobs_with_impossible_numbers_still_read_and_render_as_strict_json(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    run = ResearchRun(
        research_id=RUN_ID,
        params=ResearchParams(
            question="Q?", max_cost_usd=0.5, planner_model="a/b", searcher_model="a/b", writer_model="a/b"
        ),
        report="# Q?\n\nText.",
        status="done",
    )
    bench = BenchmarkReport(
        benchmark_id=BENCH_ID, params=BenchmarkParams(prompts=["Hi?"], models=["a/b", "c/d"]), status="done"
    )
    async with tool_state(fake_openrouter, tmp_path) as state:
        await state.shared.ready()
        # Saved through the store, even with impossible numbers in its fields: the save is not refused.
        run.created_at = math.nan
        bench.totals.cost_usd = math.inf
        records = [
            JobRecord(
                id=RUN_ID, kind="research", owner=state.owner, status="done", data=state.shared.research.data(run)
            ),
            JobRecord(
                id=BENCH_ID, kind="benchmark", owner=state.owner, status="done", data=bench.model_dump(mode="json")
            ),
        ]
        records[0].cost_usd = math.nan
        assert await state.shared.store.import_records(records) == 2
    # Then another program writes NaN and Infinity into the saved JSON itself.
    db = sqlite3.connect(tmp_path / "data" / DB_FILE)
    for job_id in (RUN_ID, BENCH_ID):
        (text,) = db.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
        data = json.loads(text)
        data["created_at"], data["wall_time_s" if job_id == BENCH_ID else "cost_usd"] = math.nan, math.inf
        db.execute("UPDATE jobs SET data = ? WHERE id = ?", (json.dumps(data), job_id))  # json.dumps allows NaN
    db.commit()
    db.close()
    async with tool_state(fake_openrouter, tmp_path) as state:
        await state.shared.ready()
        runs, _ = await state.shared.research.list(state.owner)
        benches, _ = await state.shared.benchmarks.list(state.owner)
        assert [r.research_id for r in runs] == [RUN_ID] and [b.benchmark_id for b in benches] == [BENCH_ID]
        for text in (
            render_research_index(runs),
            render_benchmark_index(benches),
            await benchmark_resource(state, BENCH_ID, "json"),
            (await get_research(state, RUN_ID)).model_dump_json(),
            (await get_benchmark(state, BENCH_ID)).model_dump_json(),
        ):
            strict(text)  # parses: no NaN, no Infinity
        assert "Text." in await research_report(state, RUN_ID)
        assert (await get_benchmark(state, BENCH_ID)).created_at == 0  # an impossible time reads as the epoch
