"""Starts research runs in the foreground or the background, finds them again by id, cancels and stops them.

Every run of this session stays in memory whatever the disk says, so an unwritable data directory never loses
one. Saved runs from earlier sessions are indexed by one scan on a worker thread, started after the server is up:
nothing about them sits on the start-up path or the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

from .._util import Progress, no_progress
from ..errors import NotFoundError, OpenRouterError, RequestError, UpstreamUnavailableError
from ..openrouter.catalog import ModelCatalog
from ..openrouter.models import ModelInfo
from .engine import ResearchEngine
from .run import RUN_ID, ResearchParams, ResearchRun, new_run_id
from .store import RunStore, RunSummary

__all__ = ["ResearchManager"]

log = logging.getLogger(__name__)

RESUMABLE = ("interrupted", "time", "budget", "cancelled")


class ResearchManager:
    """Owns the research engine, the run store and the runs' tasks for the server's lifetime."""

    def __init__(self, engine: ResearchEngine, store: RunStore, catalog: ModelCatalog) -> None:
        self.engine = engine
        self.store = store
        self.catalog = catalog
        self.shutting_down = False
        self._runs: dict[str, ResearchRun] = {}  # every run this session touched, finished or not
        self._tasks: dict[str, asyncio.Task[ResearchRun]] = {}  # runs in progress (foreground and background)
        self._cancelled: set[str] = set()  # runs cancel() stopped, as opposed to a client or a shutdown
        self._index: dict[str, RunSummary] = {}
        self._scan: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------------- the index

    def start(self) -> None:
        """Begin indexing saved runs on a worker thread (call once the event loop runs)."""
        if self._scan is None:
            self._scan = asyncio.create_task(self._index_saved(), name="research-index")

    async def _index_saved(self) -> None:
        summaries = await asyncio.to_thread(self.store.scan)
        self._index.update((s.research_id, s) for s in summaries if s.research_id not in self._index)
        interrupted = sum(s.status == "interrupted" for s in summaries)
        log.info("%d saved research run(s) indexed (%d interrupted)", len(summaries), interrupted)

    async def ready(self) -> None:
        """Wait for the index of saved runs (a failed scan leaves it empty rather than failing the caller)."""
        self.start()
        assert self._scan is not None
        with contextlib.suppress(Exception):
            await asyncio.shield(self._scan)

    def _remember(self, run: ResearchRun) -> None:
        self._runs[run.research_id] = run
        self._index[run.research_id] = RunSummary.of(run)

    # ---------------------------------------------------------------------------------------------- starting

    async def prepare(self, params: ResearchParams) -> tuple[ResearchRun, dict[str, ModelInfo | None]]:
        """Validate the models and the budget before anything is spent; return the new run."""
        ids = list(dict.fromkeys([params.planner_model, params.searcher_model, params.writer_model]))
        try:
            snap = await self.catalog.get()
        except OpenRouterError as exc:
            raise UpstreamUnavailableError(
                "deep_research needs the model catalog to price and cap its calls, and "
                f"it could not be loaded: {exc.message}"
            ) from None
        models: dict[str, ModelInfo | None] = {m: self.catalog.resolve(snap, m) for m in ids}
        run = ResearchRun(research_id=new_run_id(), params=params)
        run.plan = self.engine.plan_for(run, models)  # refuses, before anything is spent, a budget too small
        return run, models

    async def prepare_resume(
        self, research_id: str, changes: dict[str, object]
    ) -> tuple[ResearchRun, dict[str, ModelInfo | None]]:
        """A stopped run made ready to go on from where it stopped (`changes`: new budget, time, models…)."""
        run = await self.get(research_id)
        if run is None:
            raise NotFoundError(f"No research run has the id `{research_id}` to resume.")
        if research_id in self._tasks:
            raise RequestError(f"Run {research_id} is still running; poll get_research, or cancel_research it first.")
        if run.status not in RESUMABLE:
            raise RequestError(
                f"Run {research_id} is {run.status}; only a run stopped early ({', '.join(RESUMABLE)}) can be resumed."
            )
        run.params = run.params.model_copy(update={k: v for k, v in changes.items() if v is not None})
        ids = list(dict.fromkeys([run.params.planner_model, run.params.searcher_model, run.params.writer_model]))
        snap = await self.catalog.get()
        models: dict[str, ModelInfo | None] = {m: self.catalog.resolve(snap, m) for m in ids}
        run.resumed += 1
        run.timings["earlier_s"] = run.timings.get("earlier_s", 0.0) + run.timings.get("elapsed_s", 0.0)
        return run, models

    def _stopped_as(self, research_id: str) -> Literal["cancelled", "interrupted"]:
        """How a run whose task was cancelled ends: by cancel() or its client (cancelled), or by a server shutdown
        (interrupted, and resumable)."""
        return "interrupted" if self.shutting_down and research_id not in self._cancelled else "cancelled"

    def _task(
        self, run: ResearchRun, models: dict[str, ModelInfo | None], progress: Progress, started: float | None
    ) -> asyncio.Task[ResearchRun]:
        self._remember(run)
        task = asyncio.create_task(self._guarded(run, models, progress, started), name=f"research-{run.research_id}")
        self._tasks[run.research_id] = task
        task.add_done_callback(lambda _t: self._finished(run))
        return task

    def _finished(self, run: ResearchRun) -> None:
        self._tasks.pop(run.research_id, None)
        self._remember(run)

    async def _guarded(
        self, run: ResearchRun, models: dict[str, ModelInfo | None], progress: Progress, started: float | None
    ) -> ResearchRun:
        try:
            return await self.engine.run(run, models, progress, started, stopped_as=self._stopped_as)
        except OpenRouterError as exc:  # e.g. a revoked key: recorded, then reported by the tool
            run.status, run.stopped_because, run.error = "failed", "failed", exc.message
            await self.engine.save(run)
            raise
        except Exception as exc:
            log.exception("research run %s failed", run.research_id)  # a bug must not leave it "running"
            run.status, run.stopped_because = "failed", "failed"
            run.error = f"deep_research failed unexpectedly ({type(exc).__name__}: {exc})"
            await self.engine.save(run)
            raise OpenRouterError(
                f"{run.error}. The run {run.research_id} is saved as failed; please report this with the server log."
            ) from exc

    async def run(
        self,
        run: ResearchRun,
        models: dict[str, ModelInfo | None],
        progress: Progress = no_progress,
        started: float | None = None,
    ) -> ResearchRun:
        """Run to the end for the calling tool: a cancel of the call cancels the run; `cancel()` ends the run early
        and the call returns what it found. `started` (a `time.monotonic()` value) is when the caller's clock
        began, so `max_seconds` covers the preparation too."""
        task = self._task(run, models, progress, started)
        try:
            return await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if task.done() and not (me is not None and me.cancelling()):
                return run  # cancel() stopped the run, not the caller: hand back what it found
            raise

    async def start_background(self, run: ResearchRun, models: dict[str, ModelInfo | None]) -> ResearchRun:
        """Start the run as a task of the server and return at once (saved first, so it can be found)."""
        await self.engine.save(run)
        task = self._task(run, models, no_progress, None)
        task.add_done_callback(_quiet)
        return run

    # --------------------------------------------------------------------------------------------- finding

    async def get(self, research_id: str) -> ResearchRun | None:
        """A run of this session, or a saved one; None for an unknown or malformed id."""
        if research_id in self._runs:
            return self._runs[research_id]
        if not RUN_ID.fullmatch(research_id):
            return None
        await self.ready()
        if research_id not in self._index:
            return None
        run = await asyncio.to_thread(self.store.load, research_id)
        if run is not None:
            self._runs[research_id] = run
        return run

    async def list(self) -> list[RunSummary]:
        """Every run known, newest first."""
        await self.ready()
        for run in self._runs.values():
            self._index[run.research_id] = RunSummary.of(run)
        return sorted(self._index.values(), key=lambda s: s.created_at, reverse=True)

    # ---------------------------------------------------------------------------------------------- stopping

    async def cancel(self, research_id: str) -> ResearchRun | None:
        """Stop a run in progress, keeping what it found (saved as cancelled with its partial report). Returns
        the run (or None for an unknown id); a run that already ended is returned as it is."""
        task = self._tasks.get(research_id)
        if task is not None and not task.done():
            self._cancelled.add(research_id)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait([task])
        return await self.get(research_id)

    def begin_shutdown(self) -> None:
        """From now on, runs that stop are interrupted (resumable), not cancelled."""
        self.shutting_down = True

    async def aclose(self) -> None:
        """Stop every run in progress; each saves itself as interrupted with its partial report."""
        self.begin_shutdown()
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        if self._scan is not None and not self._scan.done():
            self._scan.cancel()


def _quiet(task: asyncio.Task[ResearchRun]) -> None:
    """A background run's failure is recorded in the run itself; nobody awaits its task."""
    if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, OpenRouterError):
        log.warning("background research ended with %s", type(exc).__name__)
