"""One job manager for every kind of job (research runs, benchmarks): start, resume, cancel, find and list them,
each scoped to its owner, on any `JobStore`.

Whoever runs a job holds its lease and renews it while the job runs (`LEASE_RENEW_S`), and with the same query
learns of a cancel stored by any process: a cancel reaches the job within about a second wherever it runs (in the
same process it is immediate). Starting, resuming and cancelling take the lease atomically, so two resumes of one
job, in one process or two, start it once; the other is refused with a message that names the running one. A job
another process runs reads as running there (the holder id records its host and pid); a job whose holder dies (its
lease expires) reads as interrupted and may be resumed by anyone with the owner's id.

A running job's body gets a `JobHandle`: `save` writes its data (compare-and-set under the lease; a job whose
lease was taken over stops at once, since another process now runs it); when the database cannot be written the
data stays in memory, the job goes on, and `unsaved` says why. However a job's body ends, the manager records it
in a `finally`: done, failed with the reason (logged), cancelled, or interrupted by a shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import OpenRouterError, QuotaExceededError
from .store import Conflict, JobRecord, JobStore, LeaseHeld, Page, Status, StoreError, StoreUnavailable, TooManyJobs

__all__ = ["CANCEL_WAIT_S", "JobGone", "JobHandle", "JobManager", "JobRefused", "StopReason"]

log = logging.getLogger(__name__)

LEASE_RENEW_S = 0.5  # how often a holder renews its lease and looks for a stored cancel
RELEASE_RETRY_S = 1.0  # how often a finished job whose end could not be saved (database away) tries again
CANCEL_WAIT_S = 3.0  # how long a cancel waits for a job running elsewhere to stop
StopReason = Literal["cancelled", "interrupted", "lost"]


class JobRefused(Exception):
    """A start, resume or cancel that cannot be done; the message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobGone(Exception):
    """The job's lease was taken over by another holder: this process must stop running it."""


def _first_leaf(exc: Exception) -> Exception:
    """The first real error inside (possibly nested) exception groups, such as a task group raises."""
    while isinstance(exc, ExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def jobs_refusal(exc: TooManyJobs) -> str:
    """What a caller at their limit of jobs running at once is told."""
    return (
        f"You have {exc.running} research and benchmark jobs running, as many as your quota allows at once "
        f"({exc.limit}). Wait for one to end (get_research / get_benchmark) or cancel one, then try again; ask the "
        "operator to raise it (`token add NAME --jobs N`, or OPENROUTER_QUOTA_JOBS for everyone)."
    )


def new_holder() -> str:
    """This process's lease-holder id: its host, its pid and a random part (`host:pid:token`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_text(holder: str) -> str:
    """A lease holder as people read it: "pid 4242 on host alpha" for an id `new_holder` made, else the id."""
    host, _, rest = holder.rpartition(":")[0].rpartition(":")
    if host and rest.isdigit():
        return f"pid {rest} on host {host}"
    return f"holder {holder}"


@dataclass
class JobHandle:
    """What a running job's body uses: its record, `save`, and why it was stopped (when it was)."""

    manager: JobManager
    record: JobRecord
    stop_reason: StopReason | None = None
    unsaved: str | None = None
    persisted: bool = True  # False until the record is in the store (it was unavailable when the job started)
    error: Exception | None = None  # what ended the job, when it failed
    started: bool = False  # its task began: a task cancelled before it begins would never run its own `finally`
    task: asyncio.Task[Any] | None = field(default=None, repr=False)
    # One write of the record at a time: each is a compare-and-set on its version, and a job's steps save
    # concurrently (a pooled database would run two writes of one version at once, and one would lose).
    writing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def save(self, data: dict[str, Any], *, title: str | None = None, cost_usd: float | None = None) -> None:
        """Write the job's data under the lease (see the module docstring)."""
        self.record.data = data
        if title is not None:
            self.record.title = title
        if cost_usd is not None:
            self.record.cost_usd = cost_usd
        await self.manager._save(self)

    def stop(self, reason: StopReason) -> None:
        """Cancel the job's task, recording why (the first reason wins)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.started and self.task is not None and not self.task.done():
            self.task.cancel()  # (a task that has not begun sees `stop_reason` when it does, and ends at once)


JobBody = Callable[[JobHandle], Awaitable[None]]
# How a job's data records its end: (the record, its final status, the error when it failed) -> the data to save.
Finish = Callable[[JobRecord, Status, str | None], dict[str, Any]]


class JobManager:
    """Jobs of every kind for one process (see the module docstring). `clock` is wall-clock time (leases are
    compared across processes); `lease_s` how long a lease lasts without renewal. With `hand_over` (replicas),
    jobs stopped by this server's shutdown are left running with no lease, for another replica to take over at
    once, instead of interrupted."""

    def __init__(
        self,
        store: JobStore,
        *,
        lease_s: float = 15.0,
        clock: Callable[[], float] = time.time,
        holder: str | None = None,
        hand_over: bool = False,
    ) -> None:
        self.store = store
        self.hand_over = hand_over
        self.lease_s = lease_s
        self.clock = clock
        self.holder = holder or new_holder()
        self.shutting_down = False
        self.live: dict[str, JobHandle] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def volatile(self) -> str | None:
        """What to tell a user whose job cannot outlive this server (the store is in memory), or None."""
        if self.store.durable:
            return None
        return (
            f"This job is kept in memory only: {self.store.description}. It will be lost when the server stops; "
            "fix OPENROUTER_DATA_DIR to keep jobs."
        )

    # ---------------------------------------------------------------------------------------------- running

    async def start(
        self,
        record: JobRecord,
        body: JobBody,
        finish: Finish,
        *,
        background: bool,
        max_jobs: int | None = None,
    ) -> JobHandle:
        """Create `record` (held by this process) and run `body`; a foreground start returns when it ends. With
        `max_jobs`, refused (`QuotaExceededError`) while its owner already runs that many jobs anywhere."""
        now = self.clock()
        record.status, record.lease_holder, record.lease_expires = "running", self.holder, now + self.lease_s
        record.cancel_requested = False
        handle = JobHandle(self, record)
        try:
            await self.store.create(record, max_active=max_jobs)
        except TooManyJobs as exc:
            raise QuotaExceededError(jobs_refusal(exc), limit="jobs") from None
        except StoreUnavailable as exc:
            handle.unsaved, handle.persisted = exc.message, False  # kept in memory: not lost, and the result says so
        return await self._launch(handle, body, finish, background)

    async def resume(
        self,
        kind: str,
        owner: str,
        job_id: str,
        prepare: Callable[[JobRecord], dict[str, Any]],
        body: JobBody,
        finish: Finish,
        *,
        background: bool,
        what: str,
        max_jobs: int | None = None,
    ) -> JobHandle:
        """Take the lease on a stopped job and run it again. `prepare` checks the stored record and returns its data
        made ready to go on (raising to refuse: then nothing about the job has changed)."""
        record = await self.find(kind, owner, job_id)
        if record is None:
            raise JobRefused(f"No {what} has the id `{job_id}` to resume.")
        self.refuse_if_running(record, what)
        data = prepare(record)  # may refuse; the stored job is untouched
        try:
            taken = await self.store.acquire(record, self.holder, self.clock(), self.lease_s, max_active=max_jobs)
        except TooManyJobs as exc:
            raise QuotaExceededError(jobs_refusal(exc), limit="jobs") from None
        except LeaseHeld as exc:
            raise JobRefused(self._running_message(exc.record or record, what)) from None
        except Conflict:
            current = await self.store.get(record.id, owner)
            raise JobRefused(self._running_message(current or record, what)) from None
        taken.data = data
        handle = JobHandle(self, taken)
        await self._save(handle)
        return await self._launch(handle, body, finish, background)

    def refuse_if_running(self, record: JobRecord, what: str) -> None:
        """Refuse to start again a job that runs (here or in another process), naming it."""
        if record.id in self.live or record.lease_live(self.clock()):
            raise JobRefused(self._running_message(record, what))

    def elsewhere(self, record: JobRecord) -> str | None:
        """Where another process runs the job, as its stored lease holder says ("another process (pid 4242 on host
        alpha)"); None when this process runs it."""
        if record.lease_holder == self.holder or record.id in self.live:
            return None
        if record.lease_holder is None:
            return "another process"
        return f"another process ({holder_text(record.lease_holder)})"

    def _running_message(self, record: JobRecord, what: str) -> str:
        kind = record.kind
        return (
            f"The {what} {record.id} is already running in {self.elsewhere(record) or 'this server'}; only one may "
            f"run it at a time. Poll it with get_{kind}, or cancel_{kind} it first."
        )

    async def _launch(self, handle: JobHandle, body: JobBody, finish: Finish, background: bool) -> JobHandle:
        job_id = handle.record.id
        self.live[job_id] = handle
        task = asyncio.create_task(self._drive(handle, body, finish), name=f"{handle.record.kind}-{job_id}")
        handle.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._watchers[job_id] = asyncio.create_task(self._watch(handle), name=f"lease-{job_id}")
        if background:
            return handle
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():  # the caller went away: so does its foreground job
                handle.stop("cancelled")
                with contextlib.suppress(BaseException):
                    await asyncio.wait([task])
                raise
        return handle

    async def _drive(self, handle: JobHandle, body: JobBody, finish: Finish) -> None:
        status: Status = "failed"
        error: str | None = None
        handle.started = True
        try:
            if handle.stop_reason is not None:  # stopped before it began
                raise asyncio.CancelledError
            await body(handle)
            status = "done"
        except asyncio.CancelledError:
            reason = handle.stop_reason or ("interrupted" if self.shutting_down else "cancelled")
            handle.stop_reason = reason
            if reason == "lost":
                log.warning("job %s was taken over by another process; this one stopped running it", handle.record.id)
                return
            status = reason
        except JobGone:
            handle.stop_reason = "lost"
            log.warning("job %s was taken over by another process; this one stopped running it", handle.record.id)
            return
        except Exception as exc:  # any failure ends the job as failed, with the reason, logged
            cause = _first_leaf(exc)
            handle.error = cause
            if isinstance(cause, OpenRouterError):
                error = cause.message
                log.warning("job %s failed: %s", handle.record.id, error)
            else:
                error = (
                    f"it failed unexpectedly ({type(cause).__name__}: {cause}); please report this with the server log"
                )
                log.error("job %s failed", handle.record.id, exc_info=cause)
        finally:
            await self._end(handle, status, error, finish)

    async def _end(self, handle: JobHandle, status: Status, error: str | None, finish: Finish) -> None:
        job_id = handle.record.id
        watcher = self._watchers.pop(job_id, None)
        if watcher is not None:
            watcher.cancel()
        try:
            if handle.stop_reason == "lost":
                return
            try:
                handle.record.data = finish(handle.record, status, error)
            except Exception:  # the job's own record of its end failed: keep the status at least
                log.exception("job %s could not record how it ended", job_id)
            handing = self.hand_over and self.shutting_down and status == "interrupted"
            handle.record.status = "running" if handing else status  # handed over: an orphan for another replica
            await asyncio.shield(self._release(handle))
        finally:
            if self.live.get(job_id) is handle:
                del self.live[job_id]

    async def _release(self, handle: JobHandle) -> None:
        async with handle.writing:
            await self._release_now(handle)

    async def _release_now(self, handle: JobHandle) -> None:
        try:
            if not handle.persisted:
                await self._persist(handle)
            await self.store.release(handle.record, self.holder)
            handle.unsaved = None
        except Conflict:
            log.warning(
                "job %s: its lease was taken over before it could be saved as %s",
                handle.record.id,
                handle.record.status,
            )
        except StoreUnavailable as exc:  # the database is away: saved as soon as it is back, in the background
            handle.unsaved = exc.message
            log.warning("job %s could not be saved yet (%s); trying again until it is", handle.record.id, exc.message)
            if not self.shutting_down:
                task = asyncio.create_task(self._release_later(handle), name=f"save-{handle.record.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except StoreError as exc:
            handle.unsaved = exc.message
            log.warning("job %s could not be saved: %s", handle.record.id, exc.message)

    async def _release_later(self, handle: JobHandle) -> None:
        """Save a finished job whose end could not be written (the database was away) once the database answers,
        so its result is not lost and no replica takes it over to run it again."""
        while handle.unsaved is not None and not self.shutting_down:
            await asyncio.sleep(RELEASE_RETRY_S)
            async with handle.writing:
                try:
                    await self.store.release(handle.record, self.holder)
                    handle.unsaved = None
                    log.info(
                        "job %s saved as %s, now that the database is back", handle.record.id, handle.record.status
                    )
                except StoreUnavailable:
                    continue
                except StoreError as exc:  # taken over meanwhile (its lease lapsed): the other holder's now
                    handle.unsaved = None
                    log.warning("job %s could not be saved after all: %s", handle.record.id, exc.message)

    async def _persist(self, handle: JobHandle) -> None:
        """Create the record of a job that started while the store was away."""
        handle.record.version = 0
        await self.store.create(handle.record)
        handle.persisted = True

    async def _save(self, handle: JobHandle) -> None:
        async with handle.writing:
            await self._save_now(handle)

    async def _save_now(self, handle: JobHandle) -> None:
        try:
            if not handle.persisted:
                await self._persist(handle)
                return
            await self.store.write(handle.record, self.holder)
            handle.unsaved = None
        except Conflict:
            raise JobGone(handle.record.id) from None
        except StoreUnavailable as exc:
            handle.unsaved = exc.message

    async def _watch(self, handle: JobHandle) -> None:
        """Renew the lease while the job runs, and stop it when a cancel is stored or the lease was lost."""
        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            try:
                held, cancel = await self.store.renew(handle.record.id, self.holder, self.clock(), self.lease_s)
            except StoreError:
                continue  # the database is away: keep running, try again
            if not held and not handle.unsaved:
                handle.stop("lost")
                return
            if cancel:
                handle.stop("cancelled")
                return

    # --------------------------------------------------------------------------------------------- finding

    async def find(self, kind: str, owner: str, job_id: str) -> JobRecord | None:
        """The owner's job of `kind` (the live copy when this process runs it), with its effective status."""
        handle = self.live.get(job_id)
        if handle is not None and handle.record.owner == owner and handle.record.kind == kind:
            return handle.record
        try:
            record = await self.store.get(job_id, owner)
        except StoreUnavailable:
            return None
        if record is None or record.kind != kind:
            return None
        record.status = record.effective_status(self.clock())
        return record

    async def list(self, kind: str, owner: str, limit: int = 100, offset: int = 0) -> Page:
        return await self.store.list_jobs(owner, kind, limit, offset)

    # -------------------------------------------------------------------------------------------- stopping

    async def cancel(self, kind: str, owner: str, job_id: str, finish: Finish) -> JobRecord | None:
        """Stop the owner's job wherever it runs and return it as it ended (None when there is no such job). A job
        that was interrupted (its holder died) is recorded as cancelled with `finish`."""
        handle = self.live.get(job_id)
        if handle is not None and handle.record.owner == owner and handle.record.kind == kind:
            handle.stop("cancelled")
            if handle.task is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait([handle.task])
            return await self.find(kind, owner, job_id) or handle.record
        record = await self.find(kind, owner, job_id)
        if record is None:
            return None
        if record.status == "interrupted":
            with contextlib.suppress(Conflict, StoreUnavailable):
                record.data = finish(record, "cancelled", None)
                record.status = "cancelled"
                return await self.store.write(record, None)
            return await self.find(kind, owner, job_id)
        if record.status not in ("running", "queued"):
            return record
        await self.store.request_cancel(job_id, owner)
        waited = 0.0
        while waited < CANCEL_WAIT_S:
            await asyncio.sleep(0.1)
            waited += 0.1
            current = await self.find(kind, owner, job_id)
            if current is None or current.status not in ("running", "queued"):
                return current
        return await self.find(kind, owner, job_id)

    async def aclose(self, grace: float = 1.0) -> None:
        """Stop every job this process runs: each saves itself as interrupted (resumable)."""
        self.shutting_down = True
        handles = list(self.live.values())
        for handle in handles:
            handle.stop("interrupted")
        tasks = [h.task for h in handles if h.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for watcher in list(self._watchers.values()):
            watcher.cancel()
