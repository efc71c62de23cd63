"""How each kind's files from earlier releases become job records (see `jobs/legacy.py`): research runs from
`research/`, benchmarks from `benchmarks/`, all owned by the local caller, their statuses in today's vocabulary."""

from __future__ import annotations

import json
from typing import Any

from ..benchmark.jobs import KIND as BENCHMARK
from ..benchmark.report import BENCHMARK_ID, BenchmarkReport
from ..jobs.legacy import LegacyKind
from ..jobs.store import JobRecord
from ..research.manager import KIND as RESEARCH
from ..research.run import RUN_ID, ResearchRun

__all__ = ["LEGACY_KINDS", "benchmark_record", "research_record"]

OWNER = "local"  # earlier releases served one person over stdio
INTERRUPTED = "interrupted: the server stopped while this was in progress"


def _today(raw: dict[str, Any]) -> dict[str, Any]:
    """A saved job's data with an earlier release's status in today's vocabulary: `budget` and `time` were jobs that
    finished early; `running` cannot be running any more, since its server is gone."""
    status = raw.get("status")
    if status in ("budget", "time"):
        raw["status"], raw["stopped_because"] = "done", status
    elif status == "running":
        raw["status"], raw["stopped_because"], raw["progress"] = "interrupted", "interrupted", INTERRUPTED
    return raw  # impossible times are made 0 by the models (`jobs.store.Timestamp`)


def _object(text: str) -> dict[str, Any]:
    raw = json.loads(text)  # NaN and Infinity are read, then replaced
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    return _today(raw)


def research_record(text: str) -> JobRecord:
    run = ResearchRun.model_validate(_object(text))
    return JobRecord(
        id=run.research_id,
        kind=RESEARCH,
        owner=OWNER,
        status=run.status,
        data=run.model_dump(mode="json"),
        created_at=run.created_at,
        updated_at=run.updated_at,
        title=run.params.question[:200],
        cost_usd=run.cost_usd,
    )


def benchmark_record(text: str) -> JobRecord:
    report = BenchmarkReport.model_validate(_object(text))
    return JobRecord(
        id=report.benchmark_id,
        kind=BENCHMARK,
        owner=OWNER,
        status=report.status,
        data=report.model_dump(mode="json"),
        created_at=report.created_at,
        updated_at=report.created_at,
        title=f"{len(report.params.models)} models × {len(report.params.prompts)} prompts",
        cost_usd=report.totals.cost_usd or 0.0,
    )


LEGACY_KINDS = (
    LegacyKind("research", RUN_ID, research_record),
    LegacyKind("benchmarks", BENCHMARK_ID, benchmark_record),
)
