"""Starts research runs in the foreground or the background, and finds them again by id."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .._util import Progress, no_progress
from ..errors import OpenRouterError, UpstreamUnavailableError
from ..openrouter.catalog import ModelCatalog
from ..openrouter.models import ModelInfo
from .engine import ResearchEngine, preflight
from .run import ResearchParams, ResearchRun, new_run_id
from .store import RunStore

__all__ = ["ResearchManager"]

log = logging.getLogger(__name__)


class ResearchManager:
    """Owns the research engine, the run store and the background tasks for the server's lifetime."""

    def __init__(self, engine: ResearchEngine, store: RunStore, catalog: ModelCatalog) -> None:
        self.engine = engine
        self.store = store
        self.catalog = catalog
        self._live: dict[str, ResearchRun] = {}
        self._tasks: dict[str, asyncio.Task[ResearchRun]] = {}
        interrupted = store.mark_interrupted()
        if interrupted:
            log.info("%d research run(s) from a previous process were marked interrupted", interrupted)

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
        preflight(run, models, self.engine.web_plan())
        return run, models

    async def run(
        self,
        run: ResearchRun,
        models: dict[str, ModelInfo | None],
        progress: Progress = no_progress,
        started: float | None = None,
    ) -> ResearchRun:
        """Run to the end in the caller's task (a client cancel cancels the run). `started` (a `time.monotonic()`
        value) is when the caller's clock began, so `max_seconds` covers the preparation too."""
        self._live[run.research_id] = run
        try:
            return await self.engine.run(run, models, progress, started)
        except OpenRouterError as exc:  # e.g. a revoked key: recorded, then reported by the tool
            run.status, run.stopped_because, run.error = "failed", "failed", exc.message
            self.store.save(run)
            raise
        except Exception as exc:  # a bug must not leave the run "running" forever
            log.exception("research run %s failed", run.research_id)
            run.status, run.stopped_because = "failed", "failed"
            run.error = f"deep_research failed unexpectedly ({type(exc).__name__}: {exc})"
            self.store.save(run)
            raise OpenRouterError(
                f"{run.error}. The run {run.research_id} is saved as failed; please report this with the server log."
            ) from exc
        finally:
            self._live.pop(run.research_id, None)

    def start_background(self, run: ResearchRun, models: dict[str, ModelInfo | None]) -> ResearchRun:
        """Start the run as a task of the server and return at once."""
        self.store.save(run)
        self._live[run.research_id] = run
        task = asyncio.create_task(self._background(run, models), name=f"research-{run.research_id}")
        self._tasks[run.research_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(run.research_id, None))
        return run

    async def _background(self, run: ResearchRun, models: dict[str, ModelInfo | None]) -> ResearchRun:
        try:
            return await self.run(run, models)
        except OpenRouterError as exc:
            log.warning("background research %s failed: %s", run.research_id, exc.message)
            return run

    def get(self, research_id: str) -> ResearchRun | None:
        """A run in progress (live) or saved; None for an unknown or malformed id."""
        return self._live.get(research_id) or self.store.load(research_id)

    def list(self) -> list[ResearchRun]:
        saved = {r.research_id: r for r in self.store.list()}
        saved.update(self._live)
        return sorted(saved.values(), key=lambda r: r.created_at, reverse=True)

    async def aclose(self) -> None:
        """Cancel background runs; each saves itself as cancelled."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
