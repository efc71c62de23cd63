"""The store protocol: what the job system needs from a database, whichever one it is (SQLite embedded, PostgreSQL
for replicas). Everything above this module speaks only this protocol.

A job is a record with an **owner** (the caller who started it; every read and listing is scoped to one), a
**version** (every write of its content is a compare-and-set on it: a lost race is a `Conflict`, never a silent
overwrite), and a **lease** (the holder running it and until when, renewed while it runs). Only the holder of a live
lease may write a running job; a lease that expired means its holder died, and the job is interrupted. A cancel
is stored (`cancel_requested`), so the holder learns of it wherever it runs. The usage ledger records what each
owner's calls cost, per day and model.

```
StoreError
├── Conflict            the record changed since it was read (another writer won the race)
├── LeaseHeld           another live holder runs this job
├── TooManyJobs         the owner runs as many jobs as their limit allows (checked in the same transaction)
└── StoreUnavailable    the database cannot be reached or written just now
```
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BeforeValidator

from .._util import strict_json

__all__ = [
    "Timestamp",
    "ACTIVE",
    "COLUMNS",
    "SUMMARY_COLUMNS",
    "FINISHED",
    "SCHEMA_VERSION",
    "STATUSES",
    "Conflict",
    "JobRecord",
    "JobStore",
    "JobSummary",
    "LeaseHeld",
    "Page",
    "Status",
    "StoreError",
    "StoreUnavailable",
    "TooManyJobs",
    "UsageRow",
    "dump_data",
    "real_or_zero",
    "acquired",
    "open_store",
    "record_from_row",
    "summary_from_row",
]


def _possible_time(value: Any) -> Any:
    """An impossible time (NaN, infinite, negative, or null where strict JSON had to drop one) read from a saved
    job becomes 0, the epoch: never emitted."""
    if value is None:
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
        return 0.0
    return value


# A job's creation or update time (seconds since the epoch) as saved with it.
Timestamp = Annotated[float, BeforeValidator(_possible_time)]

# One status vocabulary for every kind of job.
Status = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
STATUSES: tuple[Status, ...] = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE: tuple[Status, ...] = ("queued", "running")
FINISHED: tuple[Status, ...] = ("done", "failed", "cancelled", "interrupted")
SCHEMA_VERSION = 1


class StoreError(Exception):
    """Root of the store's errors; `message` is meant for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Conflict(StoreError):
    """The record's version is not the one the write expected."""


class LeaseHeld(StoreError):
    """Another holder's lease on the job is still live."""

    def __init__(self, message: str, record: JobRecord | None = None) -> None:
        super().__init__(message)
        self.record = record


class TooManyJobs(StoreError):
    """The owner already runs `running` jobs (live leases, in any process), and their limit is `limit`."""

    def __init__(self, running: int, limit: int) -> None:
        super().__init__(f"{running} jobs running, limit {limit}")
        self.running, self.limit = running, limit


class StoreUnavailable(StoreError):
    """The database cannot be read or written just now (locked, full, gone)."""


@dataclass
class JobRecord:
    """A job as stored: its identity, lifecycle fields and its data (the kind's own JSON object)."""

    id: str
    kind: str
    owner: str
    status: Status
    data: dict[str, Any]
    version: int = 0
    lease_holder: str | None = None
    lease_expires: float | None = None
    cancel_requested: bool = False
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    title: str = ""
    cost_usd: float = 0.0
    key_source: str = "operator"  # whose OpenRouter key pays: "operator" (the server's) or "own" (the caller's)

    def lease_live(self, now: float) -> bool:
        return _live(self.lease_holder, self.lease_expires, now)

    def effective_status(self, now: float) -> Status:
        """The status a reader should see: a running job whose holder stopped renewing its lease is interrupted."""
        return _shown(self.status, self.lease_holder, self.lease_expires, now)


def _live(holder: str | None, expires: float | None, now: float) -> bool:
    return holder is not None and expires is not None and expires > now


def _shown(status: Status, holder: str | None, expires: float | None, now: float) -> Status:
    return "interrupted" if status in ACTIVE and not _live(holder, expires, now) else status


@dataclass(frozen=True)
class JobSummary:
    """What a listing shows of a job, without its data."""

    id: str
    kind: str
    status: Status
    title: str
    cost_usd: float
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    items: list[JobSummary]
    total: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None


@dataclass(frozen=True)
class UsageRow:
    """What one owner's calls to one model cost on one day (UTC)."""

    day: str
    model: str
    calls: int
    failed_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


# How every store lays a job out: its columns in this order, its data as strict JSON text (so each database
# keeps exactly what was written), and no impossible number in a numeric column.
COLUMNS = (
    "id, kind, owner, status, version, lease_holder, lease_expires, cancel_requested, created_at, updated_at, "
    "title, cost_usd, key_source, data"
)


def real_or_zero(value: float) -> float:
    """A number for a NOT NULL numeric column: an impossible one (NaN, infinite) is stored as 0, never refused."""
    return value if math.isfinite(value) else 0.0


def dump_data(data: dict[str, Any]) -> str:
    return strict_json(data, ensure_ascii=False, separators=(",", ":"))


# What a listing reads of each job, in this order (`summary_from_row`).
SUMMARY_COLUMNS = "id, kind, status, title, cost_usd, created_at, updated_at, lease_holder, lease_expires"


def summary_from_row(row: Sequence[Any], now: float) -> JobSummary:
    """A listing's line from a row of `SUMMARY_COLUMNS`, its status as a reader should see it at `now`."""
    job_id, kind, status, title, cost, created, updated, holder, expires = row
    return JobSummary(job_id, kind, _shown(status, holder, expires, now), title, cost, created, updated)


def acquired(job_id: str, changed: int, current: JobRecord | None, holder: str, now: float) -> JobRecord:
    """How a lease taken with one conditional update came out: the job, now held (`changed` is 1), or `LeaseHeld`
    when another live holder has it, or `Conflict` when it changed since it was read."""
    if changed == 1 and current is not None:
        return current
    if current is not None and current.lease_live(now) and current.lease_holder != holder:
        raise LeaseHeld(f"Job {job_id} is running elsewhere.", current)
    raise Conflict(f"Job {job_id} was changed by someone else since it was read.")


def record_from_row(row: Sequence[Any]) -> JobRecord:
    """A job from a row of `COLUMNS`."""
    (job_id, kind, owner, status, version, holder, expires, cancel, created, updated, title, cost, source, data) = row
    return JobRecord(
        id=job_id,
        kind=kind,
        owner=owner,
        status=status,
        version=version,
        lease_holder=holder,
        lease_expires=expires,
        cancel_requested=bool(cancel),
        created_at=created,
        updated_at=updated,
        title=title,
        cost_usd=cost,
        key_source=source,
        data=json.loads(data),
    )


class JobStore(Protocol):
    """A database of jobs and usage. Every method is async and never blocks the event loop."""

    description: str  # e.g. "SQLite at /path/jobs.db", "memory (the database file was unreadable)"
    durable: bool  # False when serving from memory: nothing survives a restart

    async def open(self, wait: bool = True) -> None:
        """Connect and apply migrations (safe when several processes start at once). With `wait=False`, return
        as soon as every later call is sure to run after the opening, without waiting for it: the server answers
        `initialize` meanwhile."""

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def create(self, record: JobRecord, max_active: int | None = None) -> JobRecord:
        """Insert a new job (version 1); raises `Conflict` when its id exists, and `TooManyJobs` when its owner
        already runs `max_active` jobs with a live lease (counted and inserted in one transaction, so concurrent
        starts in any process never go past it)."""

    async def running(self, owner: str) -> int:
        """How many of the owner's jobs run now (a live lease, in any process)."""

    async def get(self, job_id: str, owner: str) -> JobRecord | None:
        """The owner's job with this id, or None (another owner's job answers exactly like a missing one)."""

    async def list_jobs(self, owner: str, kind: str | None, limit: int, offset: int = 0) -> Page:
        """The owner's jobs, newest first."""

    async def write(self, record: JobRecord, holder: str | None) -> JobRecord:
        """Save the record's data, status, title and cost if its version is still `record.version` and (for
        `holder`) the lease is still that holder's; returns it at its new version. Raises `Conflict`."""

    async def acquire(
        self, record: JobRecord, holder: str, now: float, ttl: float, max_active: int | None = None
    ) -> JobRecord:
        """Take the lease on a job at `record.version` whose lease is free or expired, and mark it running (its
        stored cancel cleared); raises `LeaseHeld` (with the current record), `Conflict`, or `TooManyJobs` (as
        `create`)."""

    async def renew(self, job_id: str, holder: str, now: float, ttl: float) -> tuple[bool, bool]:
        """Extend `holder`'s lease; returns (still held, cancel requested)."""

    async def release(self, record: JobRecord, holder: str) -> JobRecord:
        """`write` the record (a finished status) and give up the lease."""

    async def request_cancel(self, job_id: str, owner: str) -> JobRecord | None:
        """Store a cancel for the job (the holder notices); None when the owner has no such job."""

    async def import_records(self, records: Sequence[JobRecord]) -> int:
        """Insert records that are not there yet (by id); returns how many were new."""

    async def orphans(self, now: float, limit: int) -> list[JobRecord]:
        """Jobs of every owner left running by a holder that died (active, lease expired, no cancel stored) and
        paid by the operator's key (a caller's own key is never stored, so only they can resume theirs), oldest
        lease first: what a replica takes over."""

    async def record_usage(
        self, owner: str, day: str, model: str, *, ok: bool, prompt_tokens: int, completion_tokens: int, cost: float
    ) -> None: ...

    async def usage(self, owner: str, since_day: str | None = None) -> list[UsageRow]: ...


def open_store(database_url: str | None, data_dir: Path, clock: Callable[[], float] = time.time) -> JobStore:
    """The store a server uses (not opened yet): PostgreSQL at `database_url` (OPENROUTER_DATABASE_URL) when it is
    set, else the embedded SQLite file in the data directory."""
    if database_url:
        from .postgres import PostgresStore

        return PostgresStore(database_url, clock=clock)
    from .sqlite import DB_FILE, SqliteStore

    return SqliteStore(data_dir / DB_FILE, clock=clock)
