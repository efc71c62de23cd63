"""Benchmarks as jobs (see `jobs/manager.py`), with the same lifecycle as research runs: started in the foreground or
the background, found again by id, cancelled from any process, interrupted when their server dies, and resumed
(making only the calls they are missing)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._util import Progress, no_progress
from ..config import Settings
from ..errors import NotFoundError, RequestError
from ..jobs.kind import JobKind
from ..jobs.manager import JobHandle, JobManager, JobRefused
from ..jobs.store import JobRecord, Status
from ..openrouter.models import ModelInfo
from .report import BENCHMARK_ID, BenchmarkReport
from .runner import Chat, Runner

__all__ = ["KIND", "BenchmarkJobs"]

log = logging.getLogger(__name__)

KIND = "benchmark"
WHAT = "benchmark"


def report_of(record: JobRecord) -> BenchmarkReport:
    report = BenchmarkReport.model_validate(record.data)
    if record.status != report.status:
        report.status = record.status
        if record.status == "interrupted":
            report.stopped_because = "interrupted"
            report.progress = "interrupted: the server running it stopped; resume it with benchmark_models resume=<id>"
    return report


def _data(report: BenchmarkReport) -> dict[str, Any]:
    return report.model_dump(mode="json")


def _title(report: BenchmarkReport) -> str:
    return f"{len(report.params.models)} models × {len(report.params.prompts)} prompts"


class BenchmarkJobs(JobKind[BenchmarkReport]):
    """Benchmarks for every caller of this server."""

    kind, what, ids = KIND, WHAT, BENCHMARK_ID

    def __init__(self, jobs: JobManager, settings: Settings) -> None:
        super().__init__(jobs)
        self.settings = settings

    def title(self, value: BenchmarkReport) -> str:
        return _title(value)

    def of(self, record: JobRecord) -> BenchmarkReport:
        return report_of(record)

    def stopped(self, value: BenchmarkReport, status: Status) -> None:
        value.status, value.stopped_because = status, status  # type: ignore[assignment]
        value.progress = f"{status}; the calls made so far are kept"

    def _body(
        self, report: BenchmarkReport, infos: dict[str, ModelInfo | None], chat: Chat, progress: Progress
    ) -> Callable[[JobHandle], Any]:
        async def body(handle: JobHandle) -> None:
            async def save() -> None:
                await handle.save(_data(report), title=_title(report), cost_usd=report.totals.cost_usd or 0.0)
                self.note_storage(report, handle)

            self.live[report.benchmark_id] = report
            await Runner(report, infos, chat=chat, settings=self.settings, progress=progress).run(save)

        return body

    def _finish(self, report: BenchmarkReport) -> Callable[[JobRecord, Status, str | None], dict[str, Any]]:
        def finish(record: JobRecord, status: Status, error: str | None) -> dict[str, Any]:
            self.live.pop(report.benchmark_id, None)
            report.status = status
            if status != "done":
                report.stopped_because = status  # type: ignore[assignment]
                report.progress = f"{status}; the calls made so far are kept"
            if status == "failed":
                report.error = report.error or error
                report.progress = f"failed: {report.error}"
            record.title, record.cost_usd = _title(report), report.totals.cost_usd or 0.0
            return _data(report)

        return finish

    async def start(
        self,
        report: BenchmarkReport,
        infos: dict[str, ModelInfo | None],
        *,
        owner: str,
        chat: Chat,
        key_source: str = "operator",
        progress: Progress = no_progress,
        background: bool = False,
        max_jobs: int | None = None,
    ) -> BenchmarkReport:
        record = self.new_record(report.benchmark_id, owner, report, key_source)
        body = self._body(report, infos, chat, no_progress if background else progress)
        handle = await self.jobs.start(record, body, self._finish(report), background=background, max_jobs=max_jobs)
        return self._result(report, handle)

    async def resumable(self, owner: str, benchmark_id: str) -> BenchmarkReport:
        """A benchmark `resume` may continue, or a refusal saying why not (nothing is changed)."""
        report = await self.get(owner, benchmark_id)
        if report is None:
            raise NotFoundError(f"No benchmark has the id `{benchmark_id}` to resume.")
        record = await self.jobs.find(KIND, owner, benchmark_id)
        if record is not None:
            try:
                self.jobs.refuse_if_running(record, WHAT)
            except JobRefused as exc:
                raise RequestError(exc.message) from None
        if report.status == "done" and report.stopped_because != "budget":
            raise RequestError(f"Benchmark {benchmark_id} is done; every call was made. Start a new one instead.")
        return report

    async def resume(
        self,
        owner: str,
        benchmark_id: str,
        infos: dict[str, ModelInfo | None],
        *,
        chat: Chat,
        progress: Progress = no_progress,
        background: bool = False,
        max_jobs: int | None = None,
    ) -> BenchmarkReport:
        report = await self.resumable(owner, benchmark_id)

        def prepare(current: JobRecord) -> dict[str, Any]:
            nonlocal report
            report = report_of(current)
            report.status, report.stopped_because, report.progress = "running", None, "resumed"
            return _data(report)

        def body(handle: JobHandle) -> Any:
            return self._body(report, infos, chat, no_progress if background else progress)(handle)

        def finish(record: JobRecord, status: Status, error: str | None) -> dict[str, Any]:
            return self._finish(report)(record, status, error)

        try:
            handle = await self.jobs.resume(
                KIND, owner, benchmark_id, prepare, body, finish, background=background, what=WHAT, max_jobs=max_jobs
            )
        except JobRefused as exc:
            raise RequestError(exc.message) from None
        return self._result(report, handle)

    def _result(self, report: BenchmarkReport, handle: JobHandle) -> BenchmarkReport:
        self.note_storage(report, handle)
        return report

    async def list(self, owner: str, limit: int = 100, offset: int = 0) -> tuple[list[BenchmarkReport], int]:
        """The owner's benchmarks, newest first (their whole reports), and how many there are."""
        page = await self.jobs.list(KIND, owner, limit, offset)
        reports = [r for s in page.items if (r := await self.get(owner, s.id)) is not None]
        return reports, page.total
