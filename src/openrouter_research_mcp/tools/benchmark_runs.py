"""Benchmark runs of this session (kept in memory whatever the disk says) and saved ones, their tasks, and cancel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from .._store import JsonStore
from .benchmark_report import BENCHMARK_ID, BenchmarkReport

__all__ = ["BenchmarkManager"]


class BenchmarkManager:
    """Benchmark runs of this session (in memory whatever the disk says) and saved ones, their tasks, and cancel."""

    def __init__(self, store: JsonStore[BenchmarkReport]) -> None:
        self.store = store
        self.shutting_down = False
        self._reports: dict[str, BenchmarkReport] = {}
        self._tasks: dict[str, asyncio.Task[BenchmarkReport]] = {}

    async def save(self, report: BenchmarkReport) -> None:
        self._reports[report.benchmark_id] = report
        problem = await asyncio.to_thread(self.store.save, report.benchmark_id, report.model_copy(deep=True))
        note = "This benchmark could not be saved to disk"
        if problem is not None and not any(w.startswith(note) for w in report.warnings):
            report.warnings.append(f"{note}: {problem}. It is kept in memory until the server stops.")

    async def get(self, benchmark_id: str) -> BenchmarkReport | None:
        if benchmark_id in self._reports:
            return self._reports[benchmark_id]
        report = (
            await asyncio.to_thread(self.store.load, benchmark_id) if BENCHMARK_ID.fullmatch(benchmark_id) else None
        )
        if report is not None:
            self._reports[benchmark_id] = report
        return report

    async def list(self) -> list[BenchmarkReport]:
        saved = await asyncio.to_thread(lambda: [r for p in self.store.files() if (r := self.store.read(p))])
        by_id = {r.benchmark_id: r for r in saved} | self._reports
        return sorted(by_id.values(), key=lambda r: r.created_at, reverse=True)

    def start(
        self, report: BenchmarkReport, work: Coroutine[Any, Any, BenchmarkReport], background: bool
    ) -> asyncio.Task[BenchmarkReport]:
        """Run `work` (the benchmark of `report`) as a task; a background one is nobody's to await."""
        self._reports[report.benchmark_id] = report
        task = asyncio.create_task(work, name=f"benchmark-{report.benchmark_id}")
        self._tasks[report.benchmark_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(report.benchmark_id, None))
        if background:
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def cancel(self, benchmark_id: str) -> BenchmarkReport | None:
        """Stop a run in progress, keeping the calls it made; a run that ended is returned as it is."""
        task = self._tasks.get(benchmark_id)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait([task])
        return await self.get(benchmark_id)

    async def aclose(self) -> None:
        self.shutting_down = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
