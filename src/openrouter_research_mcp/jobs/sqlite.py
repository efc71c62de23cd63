"""The embedded store: one SQLite file under `OPENROUTER_DATA_DIR`, correct across processes on one machine.

The standard library's `sqlite3` in WAL mode, on one worker thread that owns the connection, so nothing blocks the
event loop. Every compare-and-set is one `UPDATE … WHERE version = ? AND …` inside `BEGIN IMMEDIATE`, which SQLite
serialises across processes: of two processes racing for one job, exactly one wins.

Nothing here may stop the server. A file that is not a database (corrupt, or something else) is set aside as
`jobs.db.unreadable-<time>` and a new one is made; when no file can be made or opened in time (an unwritable
directory, a database locked by another program), the store runs in memory, says so in `description`, and
`durable` is False.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .._util import private_file
from .loopside import CHECKPOINT_EVERY, WOULD_WAIT, LoopSide
from .store import (
    COLUMNS,
    SUMMARY_COLUMNS,
    Conflict,
    JobRecord,
    Page,
    StoreUnavailable,
    TooManyJobs,
    UsageRow,
    acquired,
    dump_data,
    real_or_zero,
    record_from_row,
    summary_from_row,
)

__all__ = ["DB_FILE", "SqliteStore"]

log = logging.getLogger(__name__)

DB_FILE = "jobs.db"
BUSY_TIMEOUT_S = 5.0
T = TypeVar("T")

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        lease_holder TEXT,
        lease_expires REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        cost_usd REAL NOT NULL DEFAULT 0,
        key_source TEXT NOT NULL DEFAULT 'operator',
        data TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, kind, created_at DESC);
    CREATE TABLE IF NOT EXISTS usage (
        owner TEXT NOT NULL,
        day TEXT NOT NULL,
        model TEXT NOT NULL,
        calls INTEGER NOT NULL DEFAULT 0,
        failed_calls INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (owner, day, model)
    );
    """,
}


def _log_failure(opening: Future[None]) -> None:
    exc = opening.exception()
    if exc is not None:  # `_open` handles what it expects; anything else leaves the store closed, said here
        log.error("the job database could not be opened: %s", exc, exc_info=exc)


class SqliteStore:
    """The `JobStore` on one SQLite file (or, when that cannot be had, in memory)."""

    def __init__(
        self, path: Path | None, *, clock: Callable[[], float] = time.time, busy_timeout: float = BUSY_TIMEOUT_S
    ) -> None:
        self.path = path
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.description = f"SQLite at {path}" if path is not None else "memory"
        self.durable = path is not None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobs-db")
        self._db: sqlite3.Connection | None = None
        self._loop_side: LoopSide | None = None  # once the file is open: the event loop's connection to it
        self._opened = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------- plumbing

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise StoreUnavailable("The job database is closed.")
        try:
            return fn(self._db)
        except sqlite3.OperationalError as exc:
            with contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:
                    self._db.rollback()
            raise StoreUnavailable(f"The job database could not be used ({exc}).") from exc

    def _connect(self, target: str) -> sqlite3.Connection:
        db = sqlite3.connect(target, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        if target != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
        self._migrate(db)
        return db

    def _connect_patiently(self, target: str) -> sqlite3.Connection:
        """Connect, trying again while another process holds the database for a moment: two servers starting at
        once both set WAL mode and migrate, and SQLite answers "locked" at once to some of that, busy timeout or
        not. Past the busy timeout, the lock is someone else's and it stays."""
        give_up = time.monotonic() + self.busy_timeout
        while True:
            try:
                return self._connect(target)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() >= give_up:
                    raise
                time.sleep(0.05)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Apply the migrations not yet applied, in one write transaction: a second process starting at the same
        moment waits for it, then finds nothing left to do."""
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number in sorted(MIGRATIONS):
                if number > version:
                    # One statement at a time: `executescript` would commit the transaction that guards this.
                    for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _open(self) -> None:
        if self.path is None:
            self._db = self._connect(":memory:")
            return
        try:
            private_file(self.path)  # jobs hold prompts, answers and reports: the owner's alone
            self._db = self._connect_patiently(str(self.path))
            self._db.execute("SELECT count(*) FROM jobs").fetchone()
            self._loop_side = LoopSide(self.path, writes=True)  # the file is there and migrated
            return
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                reason = f"it is locked by another program ({exc})"
            elif isinstance(exc, sqlite3.OperationalError):
                reason = f"it cannot be opened ({exc})"
            else:
                reason = self._set_aside(exc)
                with contextlib.suppress(sqlite3.Error, OSError):
                    self._db = self._connect(str(self.path))
                    self._loop_side = LoopSide(self.path, writes=True)
                    self.description = f"SQLite at {self.path} (new: {reason})"
                    log.warning("the job database %s: %s; a new one was made", self.path, reason)
                    return
        except OSError as exc:
            reason = f"its folder cannot be written ({exc.strerror or exc})"
        log.warning("the job database %s cannot be used: %s; jobs are kept in memory until restart", self.path, reason)
        self.description = f"memory ({self.path}: {reason})"
        self.durable = False
        self._db = self._connect(":memory:")

    def _set_aside(self, exc: Exception) -> str:
        assert self.path is not None
        aside = self.path.with_name(f"{self.path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        with contextlib.suppress(sqlite3.Error):
            if self._db is not None:
                self._db.close()
        self._db = None
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        except OSError as move:
            return f"it is not a readable database ({exc}) and could not be moved aside ({move.strerror})"
        return f"it was not a readable database ({exc}); it was moved to {aside.name}"

    async def open(self, wait: bool = True) -> None:
        with self._lock:
            if self._opened:
                return
            self._opened = True
        # On the store's one worker thread, every later call queues behind the opening, so none runs before it.
        opening = self._executor.submit(self._open)
        opening.add_done_callback(_log_failure)
        if wait:
            await asyncio.wrap_future(opening)

    async def close(self) -> None:
        if self._loop_side is not None:
            self._loop_side.close()
            self._loop_side = None

        def shut() -> None:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None

        loop = asyncio.get_running_loop()
        with contextlib.suppress(RuntimeError):
            await loop.run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=False)

    async def schema_version(self) -> int:
        return await self._run(lambda db: int(db.execute("PRAGMA user_version").fetchone()[0]))

    # ----------------------------------------------------------------------------------------------- jobs

    @staticmethod
    def _running(db: sqlite3.Connection, owner: str, now: float) -> int:
        return int(
            db.execute(
                "SELECT count(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running') AND lease_expires > ?",
                (owner, now),
            ).fetchone()[0]
        )

    def _check_room(self, db: sqlite3.Connection, owner: str, now: float, max_active: int | None) -> None:
        """Inside a write transaction: refuse when `owner` already runs `max_active` jobs with a live lease."""
        if max_active is not None and (running := self._running(db, owner, now)) >= max_active:
            raise TooManyJobs(running, max_active)

    async def running(self, owner: str) -> int:
        return await self._run(lambda db: self._running(db, owner, self.clock()))

    async def create(self, record: JobRecord, max_active: int | None = None) -> JobRecord:
        def insert(db: sqlite3.Connection) -> JobRecord:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._check_room(db, record.owner, self.clock(), max_active)
                db.execute(
                    f"INSERT INTO jobs ({COLUMNS}) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.kind,
                        record.owner,
                        record.status,
                        record.lease_holder,
                        record.lease_expires,
                        int(record.cancel_requested),
                        real_or_zero(record.created_at),
                        real_or_zero(record.updated_at),
                        record.title,
                        real_or_zero(record.cost_usd),
                        record.key_source,
                        dump_data(record.data),
                    ),
                )
                db.execute("COMMIT")
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise Conflict(f"A job with the id {record.id} exists already.") from None
            except BaseException:
                db.execute("ROLLBACK")
                raise
            record.version = 1
            return record

        return await self._run(insert)

    async def get(self, job_id: str, owner: str) -> JobRecord | None:
        def read(db: sqlite3.Connection) -> JobRecord | None:
            row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)).fetchone()
            return record_from_row(row) if row else None

        return await self._run(read)

    async def list_jobs(self, owner: str, kind: str | None, limit: int, offset: int = 0) -> Page:
        def read(db: sqlite3.Connection) -> Page:
            where, args = ("owner = ? AND kind = ?", (owner, kind)) if kind else ("owner = ?", (owner,))
            total = db.execute(f"SELECT count(*) FROM jobs WHERE {where}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
            now = self.clock()
            return Page(items=[summary_from_row(row, now) for row in rows], total=total, offset=offset)

        return await self._run(read)

    def _write(self, db: sqlite3.Connection, record: JobRecord, holder: str | None, release: bool) -> JobRecord:
        now = self.clock()
        lease = ", lease_holder = NULL, lease_expires = NULL" if release else ""
        guard = " AND lease_holder = ?" if holder is not None else ""
        db.execute("BEGIN IMMEDIATE")
        try:
            changed = db.execute(
                "UPDATE jobs SET data = ?, status = ?, title = ?, cost_usd = ?, updated_at = ?, "
                f"version = version + 1{lease} WHERE id = ? AND owner = ? AND version = ?{guard}",
                (
                    dump_data(record.data),
                    record.status,
                    record.title,
                    real_or_zero(record.cost_usd),
                    now,
                    record.id,
                    record.owner,
                    record.version,
                    *((holder,) if holder is not None else ()),
                ),
            ).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if changed != 1:
            raise Conflict(f"Job {record.id} was changed by someone else since it was read.")
        record.version += 1
        record.updated_at = now
        if release:
            record.lease_holder = record.lease_expires = None
        return record

    async def write(self, record: JobRecord, holder: str | None) -> JobRecord:
        return await self._run(lambda db: self._write(db, record, holder, release=False))

    async def release(self, record: JobRecord, holder: str) -> JobRecord:
        return await self._run(lambda db: self._write(db, record, holder, release=True))

    async def acquire(
        self, record: JobRecord, holder: str, now: float, ttl: float, max_active: int | None = None
    ) -> JobRecord:
        def take(db: sqlite3.Connection) -> JobRecord:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._check_room(db, record.owner, now, max_active)
                changed = db.execute(
                    "UPDATE jobs SET lease_holder = ?, lease_expires = ?, status = 'running', cancel_requested = 0, "
                    "version = version + 1, updated_at = ? WHERE id = ? AND owner = ? AND version = ? AND "
                    "(lease_holder IS NULL OR lease_expires IS NULL OR lease_expires <= ?)",
                    (holder, now + ttl, now, record.id, record.owner, record.version, now),
                ).rowcount
                row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (record.id,)).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return acquired(record.id, changed, record_from_row(row) if row else None, holder, now)

        return await self._run(take)

    async def renew(self, job_id: str, holder: str, now: float, ttl: float) -> tuple[bool, bool]:
        def extend(db: sqlite3.Connection) -> tuple[bool, bool]:
            changed = db.execute(
                "UPDATE jobs SET lease_expires = ? WHERE id = ? AND lease_holder = ?", (now + ttl, job_id, holder)
            ).rowcount
            row = db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return changed == 1, bool(row and row[0])

        return await self._run(extend)

    async def request_cancel(self, job_id: str, owner: str) -> JobRecord | None:
        def mark(db: sqlite3.Connection) -> JobRecord | None:
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND owner = ?", (job_id, owner))
            row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)).fetchone()
            return record_from_row(row) if row else None

        return await self._run(mark)

    async def import_records(self, records: Sequence[JobRecord]) -> int:
        def insert(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                added = 0
                for r in records:
                    added += db.execute(
                        f"INSERT OR IGNORE INTO jobs ({COLUMNS}) "
                        "VALUES (?, ?, ?, ?, 1, NULL, NULL, 0, ?, ?, ?, ?, ?, ?)",
                        (
                            r.id,
                            r.kind,
                            r.owner,
                            r.status,
                            real_or_zero(r.created_at),
                            real_or_zero(r.updated_at),
                            r.title,
                            real_or_zero(r.cost_usd),
                            r.key_source,
                            dump_data(r.data),
                        ),
                    ).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return added

        return await self._run(insert)

    async def orphans(self, now: float, limit: int) -> list[JobRecord]:
        def read(db: sqlite3.Connection) -> list[JobRecord]:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE status IN ('queued', 'running') AND key_source = 'operator' AND "
                "cancel_requested = 0 AND (lease_expires IS NULL OR lease_expires <= ?) ORDER BY lease_expires "
                "LIMIT ?",
                (now, limit),
            ).fetchall()
            return [record_from_row(row) for row in rows]

        return await self._run(read)

    # ---------------------------------------------------------------------------------------------- usage

    async def record_usage(
        self, owner: str, day: str, model: str, *, ok: bool, prompt_tokens: int, completion_tokens: int, cost: float
    ) -> None:
        def add(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO usage (owner, day, model, calls, failed_calls, prompt_tokens, completion_tokens, "
                "cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (owner, day, model) DO UPDATE SET "
                "calls = calls + excluded.calls, failed_calls = failed_calls + excluded.failed_calls, "
                "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
                "completion_tokens = completion_tokens + excluded.completion_tokens, "
                "cost_usd = cost_usd + excluded.cost_usd",
                (owner, day, model, int(ok), int(not ok), prompt_tokens, completion_tokens, cost),
            )

        # Every call writes a line: on the event loop's own connection when that need not wait (loopside.py)
        if self._loop_side is not None and self._loop_side.run(add) is not WOULD_WAIT:
            if self._loop_side.commits % CHECKPOINT_EVERY == 0:
                with contextlib.suppress(RuntimeError):  # (the store is closing)
                    self._executor.submit(self._checkpoint)
            return
        await self._run(add)

    def _checkpoint(self) -> None:
        """Fold the write-ahead log back into the file (the event loop's connection never does: it syncs)."""
        with contextlib.suppress(sqlite3.Error, StoreUnavailable):
            self._call(lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)"))

    async def usage(self, owner: str, since_day: str | None = None) -> list[UsageRow]:
        def read(db: sqlite3.Connection) -> list[UsageRow]:
            rows = db.execute(
                "SELECT day, model, calls, failed_calls, prompt_tokens, completion_tokens, cost_usd FROM usage "
                "WHERE owner = ? AND day >= ? ORDER BY day, model",
                (owner, since_day or ""),
            ).fetchall()
            return [UsageRow(*row) for row in rows]

        return await self._run(read)
