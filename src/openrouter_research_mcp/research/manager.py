"""Research runs as jobs (see `jobs/manager.py`): started in the foreground or the background, found again by id,
resumed, cancelled, listed, each scoped to its owner, on whatever store the server uses.

The job system decides who runs a job and when it stops; this module turns a `ResearchRun` into a job's data and
back, and says how a run ends: done (with why it stopped), failed (with the reason), cancelled or interrupted, its
partial report kept in each case.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._util import Progress, no_progress, usd
from ..errors import (
    AuthError,
    BudgetExceededError,
    CreditsError,
    NotFoundError,
    OpenRouterError,
    RequestError,
    UpstreamUnavailableError,
)
from ..jobs.kind import JobKind
from ..jobs.manager import JobHandle, JobManager, JobRefused
from ..jobs.store import JobRecord, Status
from ..openrouter.catalog import ModelCatalog
from ..openrouter.models import ModelInfo
from .engine import Chat, ResearchEngine
from .run import RESUMABLE, RUN_ID, ResearchParams, ResearchRun, new_run_id
from .writing import finish_hold

__all__ = ["KIND", "ResearchJobs", "RunSummary"]

log = logging.getLogger(__name__)

KIND = "research"
WHAT = "research run"


@dataclass(frozen=True)
class RunSummary:
    """What a listing shows of a run."""

    research_id: str
    question: str
    status: str
    created_at: float
    cost_usd: float


def run_of(record: JobRecord) -> ResearchRun:
    """The run a job record holds, its status the record's (a lease that expired reads as interrupted)."""
    run = ResearchRun.model_validate(record.data)
    if record.status != run.status:
        run.status = record.status
        if record.status == "interrupted" and run.stopped_because in (None, "done"):
            run.stopped_because = "interrupted"
            run.progress = "interrupted: the server running it stopped; resume it with deep_research resume=<id>"
    return run


def _data(run: ResearchRun) -> dict[str, Any]:
    return run.model_dump(mode="json")


class ResearchJobs(JobKind[ResearchRun]):
    """Research runs for every caller of this server (see the module docstring)."""

    kind, what, ids = KIND, WHAT, RUN_ID

    def __init__(self, engine: ResearchEngine, jobs: JobManager, catalog: ModelCatalog) -> None:
        super().__init__(jobs)
        self.engine = engine
        self.catalog = catalog

    def title(self, value: ResearchRun) -> str:
        return value.params.question[:200]

    def of(self, record: JobRecord) -> ResearchRun:
        return run_of(record)

    def stopped(self, value: ResearchRun, status: Status) -> None:
        value.status, value.stopped_because = status, status  # type: ignore[assignment]
        value.progress = f"{status}; the findings so far are kept"

    # ------------------------------------------------------------------------------------------- preparing

    async def models_for(self, params: ResearchParams) -> dict[str, ModelInfo | None]:
        ids = list(dict.fromkeys([params.planner_model, params.searcher_model, params.writer_model]))
        try:
            snap = await self.catalog.get()
        except OpenRouterError as exc:
            raise UpstreamUnavailableError(
                "deep_research needs the model catalog to price and cap its calls, and "
                f"it could not be loaded: {exc.message}"
            ) from None
        return {m: self.catalog.resolve(snap, m) for m in ids}

    async def prepare(self, params: ResearchParams) -> tuple[ResearchRun, dict[str, ModelInfo | None]]:
        """Validate the models and the budget before anything is spent; return the new run."""
        models = await self.models_for(params)
        run = ResearchRun(research_id=new_run_id(), params=params)
        run.plan = self.engine.plan_for(run, models)  # refuses, before anything is spent, a budget too small
        return run, models

    # --------------------------------------------------------------------------------------------- running

    def _body(
        self,
        run: ResearchRun,
        models: dict[str, ModelInfo | None],
        chat: Chat,
        progress: Progress,
        started: float | None,
    ) -> Any:
        async def body(handle: JobHandle) -> None:
            async def save(current: ResearchRun) -> None:
                await handle.save(_data(current), title=current.params.question[:200], cost_usd=current.cost_usd)
                self.note_storage(current, handle)

            def stopped_as() -> Any:
                return (
                    "interrupted"
                    if (handle.stop_reason or "") == "interrupted" or self.jobs.shutting_down
                    else ("cancelled")
                )

            self.live[run.research_id] = run
            await self.engine.run(
                run, models, chat=chat, save=save, progress=progress, started=started, stopped_as=stopped_as
            )

        return body

    def _finish(self, run: ResearchRun) -> Any:
        def finish(record: JobRecord, status: Status, error: str | None) -> dict[str, Any]:
            self.live.pop(run.research_id, None)
            run.status = status
            if status == "failed":
                run.stopped_because = "failed"
                run.error = run.error or error
                run.progress = f"failed: {run.error}"
            elif status in ("cancelled", "interrupted"):
                run.stopped_because = status
            record.title, record.cost_usd = run.params.question[:200], run.cost_usd
            return _data(run)

        return finish

    async def start(
        self,
        run: ResearchRun,
        models: dict[str, ModelInfo | None],
        *,
        owner: str,
        chat: Chat,
        key_source: str = "operator",
        progress: Progress = no_progress,
        started: float | None = None,
        background: bool = False,
        max_jobs: int | None = None,
    ) -> ResearchRun:
        """Run a new research job for `owner`; in the foreground, to its end (a cancel of the calling request
        cancels the run). `started` (a `time.monotonic()` value) is when the caller's clock began."""
        record = self.new_record(run.research_id, owner, run, key_source)
        body = self._body(run, models, chat, progress if not background else no_progress, started)
        handle = await self.jobs.start(record, body, self._finish(run), background=background, max_jobs=max_jobs)
        return self._result(run, handle)

    async def resume(
        self,
        owner: str,
        research_id: str,
        changes: Mapping[str, object],
        *,
        chat: Chat,
        progress: Progress = no_progress,
        background: bool = False,
        max_jobs: int | None = None,
    ) -> ResearchRun:
        """Go on with a stopped run: its finished research is kept (not repeated, not paid for again); `changes`
        (a new budget, time) apply to the continuation. A refused resume leaves the run exactly as it was."""
        missing = NotFoundError(f"No research run has the id `{research_id}` to resume.")
        if not RUN_ID.fullmatch(research_id):
            raise missing
        record = await self.jobs.find(KIND, owner, research_id)
        if record is None:
            raise missing
        update = {k: v for k, v in changes.items() if v is not None}
        # Everything is checked before the lease is taken, so a refused resume leaves the run as it was.
        try:
            self.jobs.refuse_if_running(record, WHAT)
        except JobRefused as exc:
            raise RequestError(exc.message) from None
        candidate = self._continuation(run_of(record), update)
        models = await self.models_for(candidate.params)
        hold = finish_hold(candidate, models)
        if hold is None or hold > candidate.params.max_cost_usd:
            need = "an unknown amount" if hold is None else f"up to {usd(hold)}"
            raise BudgetExceededError(
                f"Writing and checking the report of run {research_id} could cost {need}, more than the "
                f"max_cost_usd {usd(candidate.params.max_cost_usd)} given for resuming it. Raise max_cost_usd; the "
                "run is unchanged."
            )
        run: ResearchRun = candidate

        def prepare(current: JobRecord) -> dict[str, Any]:
            nonlocal run
            run = self._continuation(run_of(current), update)
            run.resumed += 1
            run.timings["earlier_s"] = run.timings.get("earlier_s", 0.0) + run.timings.get("elapsed_s", 0.0)
            run.status, run.stopped_because = "running", None
            return _data(run)

        def body(handle: JobHandle) -> Any:
            return self._body(run, models, chat, progress, None)(handle)

        def finish(record: JobRecord, status: Status, error: str | None) -> dict[str, Any]:
            done: dict[str, Any] = self._finish(run)(record, status, error)
            return done

        try:
            handle = await self.jobs.resume(
                KIND, owner, research_id, prepare, body, finish, background=background, what=WHAT, max_jobs=max_jobs
            )
        except JobRefused as exc:
            raise RequestError(exc.message) from None
        return self._result(run, handle)

    @staticmethod
    def _continuation(run: ResearchRun, update: Mapping[str, object]) -> ResearchRun:
        """`run` with the resume's changes, or a refusal naming why it cannot go on."""
        if not run.resumable:
            raise RequestError(
                f"Run {run.research_id} is {run.status} ({run.stopped_because}); only a run stopped early "
                f"({', '.join(RESUMABLE)}) can be resumed."
            )
        run.params = run.params.model_copy(update=update)
        return run

    def _result(self, run: ResearchRun, handle: JobHandle) -> ResearchRun:
        """The run as its caller sees it; a key or credits problem (every further call would fail too) is raised,
        the run being saved as failed."""
        if isinstance(handle.error, AuthError | CreditsError):
            raise handle.error
        self.note_storage(run, handle)
        return run

    # --------------------------------------------------------------------------------------------- finding

    async def list(self, owner: str, limit: int = 100, offset: int = 0) -> tuple[list[RunSummary], int]:
        """The owner's runs, newest first, and how many there are."""
        page = await self.jobs.list(KIND, owner, limit, offset)
        return [RunSummary(s.id, s.title, s.status, s.created_at, s.cost_usd) for s in page.items], page.total
