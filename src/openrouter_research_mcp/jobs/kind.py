"""What every kind of job (a research run, a benchmark) does the same way on top of the job manager: keep its live
objects, find one by id for its owner (one another process runs says which), note where it could not be kept, and
record a stop.

A kind says how its object reads from a record (`of`), what its data is (`data`), and how a stop is written into
it (`stopped`); the rest is here, once.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from .manager import JobHandle, JobManager
from .store import ACTIVE, JobRecord, Status

__all__ = ["JobKind"]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


class JobKind(Generic[T]):
    """The shared half of a kind of job (see the module docstring)."""

    kind: str  # the record's kind, e.g. "research"
    what: str  # how messages name one, e.g. "research run"
    ids: re.Pattern[str]  # what its ids look like: anything else is no job of this kind

    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs
        self.live: dict[str, T] = {}  # the object of each job of this kind that this process runs

    # What a kind says about itself.

    def of(self, record: JobRecord) -> T:
        """The job's object from its record, with the record's status."""
        raise NotImplementedError

    def data(self, value: T) -> dict[str, Any]:
        return value.model_dump(mode="json")

    def stopped(self, value: T, status: Status) -> None:
        """Write a stop (cancelled, interrupted) into the job's object."""
        raise NotImplementedError

    def title(self, value: T) -> str:
        """What a listing shows of the job."""
        raise NotImplementedError

    def new_record(self, job_id: str, owner: str, value: T, key_source: str) -> JobRecord:
        """The record a new job of this kind starts with (running, held by whoever starts it)."""
        return JobRecord(
            id=job_id,
            kind=self.kind,
            owner=owner,
            status="running",
            data=self.data(value),
            title=self.title(value),
            key_source=key_source,
        )

    def warnings(self, value: T) -> list[str]:
        warnings: list[str] = value.warnings  # type: ignore[attr-defined]
        return warnings

    def running_elsewhere(self, value: T, where: str) -> None:
        """Say in the job's progress which other process runs it."""
        value.progress = f"in {where}; {value.progress}"  # type: ignore[attr-defined]

    # What every kind does alike.

    async def get(self, owner: str, job_id: str) -> T | None:
        """The owner's job (the live object when this process runs it); None for an unknown or malformed id, or
        another owner's: they answer alike."""
        if not self.ids.fullmatch(job_id):
            return None
        handle = self.jobs.live.get(job_id)
        if handle is not None and handle.record.owner == owner and job_id in self.live:
            return self.live[job_id]
        record = await self.jobs.find(self.kind, owner, job_id)
        if record is None:
            return None
        try:
            value = self.of(record)
        except ValidationError:
            log.warning("%s %s is stored in a shape this server cannot read", self.what, job_id)
            return None
        if record.status in ACTIVE and (where := self.jobs.elsewhere(record)) is not None:
            self.running_elsewhere(value, where)  # a live lease held by another process: it runs there
        return value

    def note_storage(self, value: T, handle: JobHandle) -> None:
        """Say in the job's warnings, once each, that it will not outlive the server or could not be saved."""
        warnings = self.warnings(value)
        volatile = self.jobs.volatile()
        if volatile is not None and volatile not in warnings:
            warnings.append(volatile)
        unsaved = f"This {self.what} could not be saved"
        if handle.unsaved and not any(w.startswith(unsaved) for w in warnings):
            warnings.append(
                f"{unsaved}: {handle.unsaved}. It is kept in memory until the server stops; fix the data "
                "directory (OPENROUTER_DATA_DIR) or the database to keep it."
            )

    async def cancel(self, owner: str, job_id: str) -> T | None:
        """Stop the owner's job wherever it runs, keeping what it did; a job that ended is returned as it is."""
        if not self.ids.fullmatch(job_id):
            return None

        def finish(record: JobRecord, status: Status, _error: str | None) -> dict[str, Any]:
            value = self.of(record)
            self.stopped(value, status)
            return self.data(value)

        record = await self.jobs.cancel(self.kind, owner, job_id, finish)
        return self.of(record) if record is not None else None
