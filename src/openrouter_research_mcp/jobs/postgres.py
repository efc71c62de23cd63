"""The store for several replicas: PostgreSQL (`OPENROUTER_DATABASE_URL=postgresql://…`), with psycopg 3's async
connection pool.

The same protocol and the same rules as the embedded store (`sqlite.py`), made true across machines by the
database itself:

- every compare-and-set is one `UPDATE … WHERE version = %s AND …`: PostgreSQL re-checks the condition on the row
  it locks, so of two replicas racing for one job exactly one wins;
- the jobs limit is counted and the job inserted (or its lease taken) under a transaction-scoped advisory lock on
  the owner, so starts on different replicas at the same moment cannot pass it together;
- migrations are numbered, recorded in `schema_migrations`, and applied at start-up under an advisory lock: two
  replicas starting at once apply each exactly once (or run `openrouter-research-mcp migrate` first).

Leases do the work a job queue's workers would: a running job's replica renews its lease, a cancel is stored in the
row, and a job whose lease expired is interrupted, to be resumed (taken over) by any replica. A database that cannot
be reached makes each call that needs it fail with `StoreUnavailable` (a message for people); the pool reconnects
by itself when the database is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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

__all__ = ["MIGRATIONS", "PostgresStore", "describe_url", "migrate_now"]

log = logging.getLogger(__name__)

POOL_MAX = 10
CONNECT_TIMEOUT_S = 5.0
MIGRATION_LOCK = 0x6F726D31  # "orm1": one advisory lock key for every replica's migrations

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        lease_holder TEXT,
        lease_expires DOUBLE PRECISION,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        key_source TEXT NOT NULL DEFAULT 'operator',
        data TEXT NOT NULL
    );
    CREATE INDEX jobs_by_owner ON jobs (owner, kind, created_at DESC);
    CREATE TABLE usage (
        owner TEXT NOT NULL,
        day TEXT NOT NULL,
        model TEXT NOT NULL,
        calls BIGINT NOT NULL DEFAULT 0,
        failed_calls BIGINT NOT NULL DEFAULT 0,
        prompt_tokens BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0,
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (owner, day, model)
    );
    """,
    # The accounts (jobs/accounts.py): tokens by hash, OAuth subjects' quotas, holds, settled spend, calls.
    2: """
    CREATE TABLE tokens (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        created DOUBLE PRECISION NOT NULL,
        usd_per_day DOUBLE PRECISION,
        usd_per_month DOUBLE PRECISION,
        calls_per_minute INTEGER,
        jobs INTEGER
    );
    CREATE TABLE subjects (
        principal TEXT PRIMARY KEY,
        usd_per_day DOUBLE PRECISION,
        usd_per_month DOUBLE PRECISION,
        calls_per_minute INTEGER,
        jobs INTEGER
    );
    CREATE TABLE holds (
        id BIGSERIAL PRIMARY KEY,
        owner TEXT NOT NULL,
        amount DOUBLE PRECISION NOT NULL,
        created DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX holds_owner ON holds (owner);
    CREATE TABLE spend (
        owner TEXT NOT NULL,
        day TEXT NOT NULL,
        usd DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (owner, day)
    );
    CREATE TABLE calls (
        owner TEXT NOT NULL,
        minute BIGINT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (owner, minute)
    );
    """,
    # Users signed in with OpenRouter (jobs/signins.py): clients, sign-ins in progress, grants with their sealed
    # keys, codes and tokens by hash. The same tables as SQLite's (`signins.SIGNIN_SCHEMA`).
    3: """
    CREATE TABLE signin_clients (
        client_id TEXT PRIMARY KEY,
        info TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE signin_pending (
        flow_hash TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        redirect_explicit INTEGER NOT NULL,
        code_challenge TEXT NOT NULL,
        state TEXT,
        scopes TEXT,
        resource TEXT,
        verifier TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL,
        browser TEXT
    );
    CREATE TABLE signin_grants (
        id TEXT PRIMARY KEY,
        principal TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT,
        resource TEXT,
        sealed_key TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        expires DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX signin_grants_principal ON signin_grants (principal);
    CREATE TABLE signin_codes (
        id_hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        redirect_explicit INTEGER NOT NULL,
        code_challenge TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX signin_codes_grant ON signin_codes (grant_id);
    CREATE TABLE signin_tokens (
        id_hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX signin_tokens_grant ON signin_tokens (grant_id);
    """,
    # Calls per minute in a sliding window, counted per second (jobs/accounts.py); `calls` (fixed minutes) is no
    # longer written, and is left for a replica of an earlier release still running beside this one.
    4: """
    CREATE TABLE call_seconds (
        owner TEXT NOT NULL,
        second BIGINT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (owner, second)
    );
    """,
}
SCHEMA = max(MIGRATIONS)


def describe_url(url: str) -> str:
    """The database's address for people and logs: host, port and name, never the user or password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def migrate_now(url: str) -> list[int]:
    """Apply the migrations not applied yet, in one transaction under the migration lock (a second replica waits
    for the first, then finds nothing to do); returns the numbers applied. Synchronous, on a connection of its own:
    the accounts' worker thread, `openrouter-research-mcp migrate` and (through a thread) the store use it."""
    applied: list[int] = []
    with psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "applied_at DOUBLE PRECISION NOT NULL)"
            )
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
            current = int(row[0]) if row else 0
            for number in sorted(MIGRATIONS):
                if number > current:
                    for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                        conn.execute(statement)  # our own migration text
                    conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)", (number, time.time())
                    )
                    applied.append(number)
    return applied


class PostgresStore:
    """The `JobStore` on PostgreSQL."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        pool_max: int = POOL_MAX,
        timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.url, self.clock = url, clock
        self.description = f"PostgreSQL at {describe_url(url)}"
        self.durable = True
        self._migrated = False
        self._migrating = asyncio.Lock()
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_max,
            open=False,
            timeout=timeout,
            kwargs={
                "autocommit": True,  # one statement, one transaction; `conn.transaction()` where there are more
                "connect_timeout": max(1, int(timeout)),
                "application_name": "openrouter-research-mcp",
            },
            check=AsyncConnectionPool.check_connection,
            name="jobs",
        )

    # ------------------------------------------------------------------------------------------- plumbing

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection to a migrated database; one that cannot be reached (or goes away mid-way) is
        `StoreUnavailable`, and the pool reconnects by itself when it is back."""
        try:
            async with self._pool.connection() as conn:
                if not self._migrated:
                    await self._migrate()
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(
                f"The job database ({describe_url(self.url)}) cannot be reached just now ({_first_line(exc)}). "
                "Calls that need no database (ask, compare_models, list_models) still work; try this again once "
                "it is back."
            ) from exc

    async def _migrate(self) -> None:
        async with self._migrating:
            if self._migrated:
                return
            applied = await asyncio.to_thread(migrate_now, self.url)
            self._migrated = True
        if applied:
            log.info("the job database at %s: migrations %s applied", describe_url(self.url), applied)

    async def _owner_lock(self, conn: psycopg.AsyncConnection[Any], owner: str) -> None:
        """Serialise, for the rest of the transaction, every transaction that counts or changes `owner`'s running
        jobs: on any replica."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (owner,))

    async def open(self, wait: bool = True) -> None:  # noqa: ARG002 - always waits: cold start is stdio's
        """Open the pool and migrate. A database that cannot be reached now does not stop the server: it is said
        in the log, calls that need it fail with a message until it answers, and it is migrated then."""
        await self._pool.open(wait=False)
        try:
            async with self._conn():
                pass
        except StoreUnavailable as exc:
            log.warning("%s", exc.message)

    async def close(self) -> None:
        await self._pool.close()

    async def schema_version(self) -> int:
        async with self._conn() as conn:
            cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # ----------------------------------------------------------------------------------------------- jobs

    @staticmethod
    async def _running(conn: psycopg.AsyncConnection[Any], owner: str, now: float) -> int:
        cur = await conn.execute(
            "SELECT count(*) FROM jobs WHERE owner = %s AND status IN ('queued', 'running') AND lease_expires > %s",
            (owner, now),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _check_room(
        self, conn: psycopg.AsyncConnection[Any], owner: str, now: float, max_active: int | None
    ) -> None:
        if max_active is None:
            return
        await self._owner_lock(conn, owner)
        if (running := await self._running(conn, owner, now)) >= max_active:
            raise TooManyJobs(running, max_active)

    async def running(self, owner: str) -> int:
        async with self._conn() as conn:
            return await self._running(conn, owner, self.clock())

    async def create(self, record: JobRecord, max_active: int | None = None) -> JobRecord:
        async with self._conn() as conn:
            try:
                async with conn.transaction():
                    await self._check_room(conn, record.owner, self.clock(), max_active)
                    await conn.execute(
                        f"INSERT INTO jobs ({COLUMNS}) VALUES (%s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (
                            record.id,
                            record.kind,
                            record.owner,
                            record.status,
                            record.lease_holder,
                            record.lease_expires,
                            record.cancel_requested,
                            real_or_zero(record.created_at),
                            real_or_zero(record.updated_at),
                            record.title,
                            real_or_zero(record.cost_usd),
                            record.key_source,
                            dump_data(record.data),
                        ),
                    )
            except psycopg.errors.UniqueViolation:
                raise Conflict(f"A job with the id {record.id} exists already.") from None
        record.version = 1
        return record

    async def get(self, job_id: str, owner: str) -> JobRecord | None:
        async with self._conn() as conn:
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE id = %s AND owner = %s",
                (job_id, owner),
            )
            row = await cur.fetchone()
        return record_from_row(row) if row else None

    async def list_jobs(self, owner: str, kind: str | None, limit: int, offset: int = 0) -> Page:
        where, args = ("owner = %s AND kind = %s", (owner, kind)) if kind else ("owner = %s", (owner,))
        async with self._conn() as conn:
            cur = await conn.execute(f"SELECT count(*) FROM jobs WHERE {where}", args)
            counted = await cur.fetchone()
            cur = await conn.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC "
                "LIMIT %s OFFSET %s",
                (*args, limit, offset),
            )
            rows = await cur.fetchall()
        now = self.clock()
        items = [summary_from_row(row, now) for row in rows]
        return Page(items=items, total=int(counted[0]) if counted else 0, offset=offset)

    async def _write(self, record: JobRecord, holder: str | None, release: bool) -> JobRecord:
        now = self.clock()
        lease = ", lease_holder = NULL, lease_expires = NULL" if release else ""
        guard = " AND lease_holder = %s" if holder is not None else ""
        async with self._conn() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET data = %s, status = %s, title = %s, cost_usd = %s, updated_at = %s, "
                f"version = version + 1{lease} WHERE id = %s AND owner = %s AND version = %s{guard}",
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
            )
            changed = cur.rowcount
        if changed != 1:
            raise Conflict(f"Job {record.id} was changed by someone else since it was read.")
        record.version += 1
        record.updated_at = now
        if release:
            record.lease_holder = record.lease_expires = None
        return record

    async def write(self, record: JobRecord, holder: str | None) -> JobRecord:
        return await self._write(record, holder, release=False)

    async def release(self, record: JobRecord, holder: str) -> JobRecord:
        return await self._write(record, holder, release=True)

    async def acquire(
        self, record: JobRecord, holder: str, now: float, ttl: float, max_active: int | None = None
    ) -> JobRecord:
        async with self._conn() as conn:
            async with conn.transaction():
                await self._check_room(conn, record.owner, now, max_active)
                cur = await conn.execute(
                    "UPDATE jobs SET lease_holder = %s, lease_expires = %s, status = 'running', "
                    "cancel_requested = FALSE, version = version + 1, updated_at = %s WHERE id = %s AND owner = %s "
                    "AND version = %s AND (lease_holder IS NULL OR lease_expires IS NULL OR lease_expires <= %s)",
                    (holder, now + ttl, now, record.id, record.owner, record.version, now),
                )
                changed = cur.rowcount
                cur = await conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = %s", (record.id,))
                row = await cur.fetchone()
        return acquired(record.id, changed, record_from_row(row) if row else None, holder, now)

    async def renew(self, job_id: str, holder: str, now: float, ttl: float) -> tuple[bool, bool]:
        async with self._conn() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET lease_expires = %s WHERE id = %s AND lease_holder = %s RETURNING cancel_requested",
                (now + ttl, job_id, holder),
            )
            renewed = await cur.fetchone()
            if renewed is None:
                cur = await conn.execute("SELECT cancel_requested FROM jobs WHERE id = %s", (job_id,))
                row = await cur.fetchone()
        if renewed is not None:
            return True, bool(renewed[0])
        return False, bool(row and row[0])

    async def request_cancel(self, job_id: str, owner: str) -> JobRecord | None:
        async with self._conn() as conn:
            cur = await conn.execute(
                f"UPDATE jobs SET cancel_requested = TRUE WHERE id = %s AND owner = %s RETURNING {COLUMNS}",
                (job_id, owner),
            )
            row = await cur.fetchone()
        return record_from_row(row) if row else None

    async def import_records(self, records: Sequence[JobRecord]) -> int:
        added = 0
        async with self._conn() as conn:
            async with conn.transaction():
                for r in records:
                    cur = await conn.execute(
                        f"INSERT INTO jobs ({COLUMNS}) VALUES "
                        "(%s, %s, %s, %s, 1, NULL, NULL, FALSE, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
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
                    )
                    added += cur.rowcount
        return added

    async def orphans(self, now: float, limit: int) -> list[JobRecord]:
        async with self._conn() as conn:
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE status IN ('queued', 'running') AND key_source = 'operator' AND "
                "NOT cancel_requested AND (lease_expires IS NULL OR lease_expires <= %s) ORDER BY lease_expires "
                "LIMIT %s",
                (now, limit),
            )
            rows = await cur.fetchall()
        return [record_from_row(row) for row in rows]

    # ---------------------------------------------------------------------------------------------- usage

    async def record_usage(
        self, owner: str, day: str, model: str, *, ok: bool, prompt_tokens: int, completion_tokens: int, cost: float
    ) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO usage AS u (owner, day, model, calls, failed_calls, prompt_tokens, completion_tokens, "
                "cost_usd) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (owner, day, model) DO UPDATE SET "
                "calls = u.calls + excluded.calls, failed_calls = u.failed_calls + excluded.failed_calls, "
                "prompt_tokens = u.prompt_tokens + excluded.prompt_tokens, "
                "completion_tokens = u.completion_tokens + excluded.completion_tokens, "
                "cost_usd = u.cost_usd + excluded.cost_usd",
                (owner, day, model, int(ok), int(not ok), prompt_tokens, completion_tokens, real_or_zero(cost)),
            )

    async def usage(self, owner: str, since_day: str | None = None) -> list[UsageRow]:
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT day, model, calls, failed_calls, prompt_tokens, completion_tokens, cost_usd FROM usage "
                "WHERE owner = %s AND day >= %s ORDER BY day, model",
                (owner, since_day or ""),
            )
            rows = await cur.fetchall()
        return [UsageRow(row[0], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5]), row[6]) for row in rows]


def _first_line(exc: BaseException) -> str:
    """An error's first line (libpq names the host and port, never the password)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
