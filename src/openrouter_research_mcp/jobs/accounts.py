"""Who may call a team server, and how much: access tokens (stored as hashes) and per-caller quotas, in SQLite or,
for several replicas, in PostgreSQL.

`Accounts` keeps one database (`accounts.db` in the data directory, or the tables `tokens`, `subjects`, `holds`,
`spend` and `call_seconds`, and the `signin_*` tables of `signins.py`, in the database at
`OPENROUTER_DATABASE_URL`) that every server and the `openrouter-research-mcp token …` commands share, so a token
added or revoked from a shell takes effect at the next request, on every replica. Only a token's SHA-256 hash is
stored; the token itself is printed once by `token add` and never again.

Quotas are held the way budgets are (see `openrouter/budget.py`): before each attempt of a paid call its worst case
is *held* against the caller's daily and monthly USD quotas, in one `BEGIN IMMEDIATE` transaction that reads what is
spent and held and refuses when the hold does not fit; after it, the hold is replaced by what the attempt really
cost, in one transaction too. SQLite serialises those transactions across threads and processes, and on PostgreSQL
each one first takes one transaction-scoped advisory lock (`ACCOUNTS_LOCK`), so concurrent calls (or two servers on
one data directory, or replicas on one database) can never together pass a quota by more than what in-flight attempts
cost beyond their worst cases. A hold left by a server killed mid-call stops counting after an hour (`HOLD_TTL_S`).
Calls per minute are counted per second in a sliding window, atomically as well: a call is let through only
while fewer than the limit are counted in the 60 seconds before it and the second it falls in, so no 60 seconds
anywhere ever hold more calls than the limit (a call counts for 60 to 61 s). A cost that is no real number (NaN,
negative, missing) counts as the whole hold. On PostgreSQL the time these transactions go by is the database's
(`clock_timestamp()`, read inside the locked transaction), so replicas whose clocks differ still count calls, holds
and days on one clock; on SQLite every process is on one machine, and its clock.

The statements are written once, with SQLite's `?` placeholders; on PostgreSQL (`_Postgres`) they run through
psycopg with `%s`, in the same worker thread. A PostgreSQL that cannot be reached is `StoreUnavailable`: for two
seconds after a failure no new connection is tried, so a database that is away costs callers no waiting.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import hashlib
import logging
import math
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .._util import private_file, usd
from ..config import Settings
from ..errors import QuotaExceededError
from .loopside import WOULD_WAIT, LoopSide
from .store import StoreUnavailable

__all__ = [
    "ACCOUNTS_FILE",
    "ACCOUNTS_LOCK",
    "Accounts",
    "Hold",
    "Limits",
    "QuotaGate",
    "TokenInfo",
    "hash_token",
    "new_token",
    "open_accounts",
]

log = logging.getLogger(__name__)

ACCOUNTS_FILE = "accounts.db"
# How a team server names its callers (their principal, the owner of their work): by token name or OAuth subject.
TOKEN_PRINCIPAL = "token:"
OAUTH_PRINCIPAL = "oauth:"
TOKEN_PREFIX = "orm_"  # so a leaked token is recognisable (and secret scanners can learn it)
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-")
T = TypeVar("T")
# A hold older than this is taken for one a server left when it was killed mid-call: it no longer counts. (An
# attempt still running after an hour, a stream that keeps sending that long, would go uncounted until it settles.)
HOLD_TTL_S = 3600.0
ACCOUNTS_LOCK = 0x6F726D32  # "orm2": the advisory lock every replica's account transactions take on PostgreSQL
RETRY_AFTER_S = 2.0  # after a failed connection to PostgreSQL, how long calls fail at once before one is tried

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    usd_per_day REAL,
    usd_per_month REAL,
    calls_per_minute INTEGER,
    jobs INTEGER
);
CREATE TABLE IF NOT EXISTS subjects (
    principal TEXT PRIMARY KEY,
    usd_per_day REAL,
    usd_per_month REAL,
    calls_per_minute INTEGER,
    jobs INTEGER
);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    amount REAL NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_owner ON holds (owner);
CREATE TABLE IF NOT EXISTS spend (
    owner TEXT NOT NULL,
    day TEXT NOT NULL,
    usd REAL NOT NULL,
    PRIMARY KEY (owner, day)
);
CREATE TABLE IF NOT EXISTS call_seconds (
    owner TEXT NOT NULL,
    second INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (owner, second)
);
"""


def new_token() -> str:
    """A new random access token: 32 bytes from the operating system's generator."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Limits:
    """A caller's quotas; None means no limit."""

    usd_per_day: float | None = None
    usd_per_month: float | None = None
    calls_per_minute: int | None = None
    jobs: int | None = None

    def over(self, other: Limits) -> Limits:
        """These limits where set, `other`'s (the defaults) where not."""
        return Limits(
            usd_per_day=self.usd_per_day if self.usd_per_day is not None else other.usd_per_day,
            usd_per_month=self.usd_per_month if self.usd_per_month is not None else other.usd_per_month,
            calls_per_minute=self.calls_per_minute if self.calls_per_minute is not None else other.calls_per_minute,
            jobs=self.jobs if self.jobs is not None else other.jobs,
        )

    @property
    def spends(self) -> bool:
        return self.usd_per_day is not None or self.usd_per_month is not None


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created: float
    limits: Limits


@dataclass
class Hold:
    """Money held against a caller's quota for one attempt, until its real cost is known."""

    id: int
    owner: str
    amount: float
    settled: bool = False


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def _next_day(now: float) -> str:
    return time.strftime("%Y-%m-%d 00:00 UTC", time.gmtime((now // 86400 + 1) * 86400))


def _next_month(now: float) -> str:
    t = time.gmtime(now)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return time.strftime("%Y-%m-%d 00:00 UTC", time.gmtime(calendar.timegm((year, month, 1, 0, 0, 0))))


def open_accounts(settings: Settings, clock: Callable[[], float] = time.time) -> Accounts:
    """The accounts a server (or the token and quota commands) uses: in PostgreSQL when OPENROUTER_DATABASE_URL
    is set, else in `accounts.db` in the data directory."""
    return Accounts(settings.data_dir / ACCOUNTS_FILE, clock=clock, url=settings.database)


class _Postgres:
    """A psycopg connection that runs the statements here as they are written for SQLite (`?` placeholders). Its
    tables are the job store's migrations' (`postgres.MIGRATIONS`), applied when it connects."""

    def __init__(self, url: str) -> None:
        import psycopg

        from .postgres import migrate_now

        migrate_now(url)
        self.conn = psycopg.connect(
            url, autocommit=True, connect_timeout=5, application_name="openrouter-research-mcp accounts"
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params)

    def close(self) -> None:
        self.conn.close()


Db = sqlite3.Connection | _Postgres

_FIND_TOKEN = "SELECT name, created, usd_per_day, usd_per_month, calls_per_minute, jobs FROM tokens WHERE hash = ?"


def _token_info(row: Any) -> TokenInfo | None:
    return None if row is None else TokenInfo(row[0], row[1], Limits(row[2], row[3], row[4], row[5]))


CALLS_WINDOW_S = 60  # calls per minute: a call counts in the second it falls in and the 60 seconds after


def _counted(db: Db, owner: str, second: int) -> list[tuple[int, int]]:
    """The calls `owner` made that count at `second`: (second, how many), oldest first."""
    rows = db.execute(
        "SELECT second, n FROM call_seconds WHERE owner = ? AND second >= ? ORDER BY second",
        (owner, second - CALLS_WINDOW_S),
    ).fetchall()
    return [(int(at), int(n)) for at, n in rows]


def _frees_at(rows: list[tuple[int, int]], calls: int) -> int:
    """When `calls` of the counted calls `rows` (oldest first) have stopped counting."""
    seen = 0
    for second, n in rows:
        seen += n
        if seen >= calls:
            return second + CALLS_WINDOW_S + 1
    raise ValueError(f"only {seen} calls are counted, not {calls}")


class Accounts:
    """Tokens and quotas in one SQLite file, or in PostgreSQL at `url` (see the module docstring). `clock` is wall
    time, for the quota windows (days and months in UTC, minutes): left as `time.time`, on PostgreSQL the quota
    transactions read the database's clock instead (one clock for every replica); a clock a test injects is used
    as it is."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time, url: str | None = None) -> None:
        self.path = path
        self.url = url
        self.clock = clock
        self.database_time = url is not None and clock is time.time
        self._db: Db | None = None
        self._failed_at: float | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accounts-db")
        self._lock = threading.Lock()
        self._loop_side = LoopSide(path)  # the event loop's read-only connection (loopside.py)

    # ---------------------------------------------------------------------------------------------- plumbing

    def _conn(self) -> Db:
        with self._lock:
            if self._db is None:
                self._db = self._connect()
            return self._db

    def _connect(self) -> Db:
        if self.url is not None:
            import psycopg

            if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER_S:
                raise self._unavailable("it did not answer a moment ago")
            try:
                db = _Postgres(self.url)
            except psycopg.Error as exc:
                self._failed_at = time.monotonic()
                raise self._unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else "") from exc
            self._failed_at = None
            return db
        private_file(self.path)  # token hashes, quotas and users' sealed OpenRouter keys: the owner's alone
        lite = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        lite.execute("PRAGMA busy_timeout = 30000")
        lite.execute("PRAGMA journal_mode = WAL")
        from .signins import SIGNIN_SCHEMA  # (signins.py builds on this module)

        lite.executescript(_SCHEMA + SIGNIN_SCHEMA)
        return lite

    def _unavailable(self, why: str) -> StoreUnavailable:
        from .postgres import describe_url

        where = describe_url(self.url or "")
        return StoreUnavailable(
            f"The accounts database ({where}) cannot be reached just now{f' ({why})' if why else ''}: tokens and "
            "quotas cannot be checked. Try again in a moment."
        )

    def _guarded(self, fn: Callable[[Db], T]) -> Callable[[Db], T]:
        """`fn`, with a PostgreSQL connection that breaks turned into `StoreUnavailable` (and dropped, so the next
        call connects again)."""
        if self.url is None:
            return fn

        def guarded(db: Db) -> T:
            import psycopg

            try:
                return fn(db)
            except psycopg.OperationalError as exc:
                if self._db is db:  # (under `_lock`, which `_txn` and `_read` hold)
                    self._db = None
                with contextlib.suppress(Exception):
                    db.close()
                self._failed_at = time.monotonic()
                raise self._unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else "") from exc

        return guarded

    def _txn(self, fn: Callable[[Db], T]) -> T:
        db = self._conn()

        def run(db: Db) -> T:
            db.execute("BEGIN IMMEDIATE" if isinstance(db, sqlite3.Connection) else "BEGIN")
            try:
                if not isinstance(db, sqlite3.Connection):
                    db.execute("SELECT pg_advisory_xact_lock(?)", (ACCOUNTS_LOCK,))
                out = fn(db)
            except BaseException:
                with contextlib.suppress(Exception):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return out

        with self._lock:
            return self._guarded(run)(db)

    def _read(self, fn: Callable[[Db], T]) -> T:
        """A read: no write lock taken (WAL readers never wait for writers)."""
        db = self._conn()
        with self._lock:
            return self._guarded(fn)(db)

    async def _run(self, fn: Callable[[Db], T], *, write: bool = True) -> T:
        step = self._txn if write else self._read
        return await asyncio.get_running_loop().run_in_executor(self._executor, step, fn)

    async def run(self, fn: Callable[[Db], T], *, write: bool = True) -> T:
        """`fn` on this database off the event loop: in one write transaction (under the accounts lock on
        PostgreSQL), or as a read (`write=False`). The sign-in tables (`signins.py`) are kept through it."""
        return await self._run(fn, write=write)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        self._loop_side.close()
        self._executor.shutdown(wait=False)

    # ---------------------------------------------------------------------------------------------- tokens

    def add_token(self, name: str, limits: Limits = Limits()) -> str:
        """Make a token for `name` and return it (the only time it is seen); refuses a name already in use."""
        if not name or len(name) > 64 or not set(name) <= NAME_CHARS:
            raise ValueError(f"{name!r} cannot name a token: use 1-64 letters, digits, dots, dashes, underscores or @.")
        token = new_token()

        def insert(db: Db) -> None:
            if db.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"A token named {name!r} exists already; revoke it first, or choose another name.")
            db.execute(
                "INSERT INTO tokens (name, hash, created, usd_per_day, usd_per_month, calls_per_minute, jobs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    hash_token(token),
                    self.clock(),
                    limits.usd_per_day,
                    limits.usd_per_month,
                    limits.calls_per_minute,
                    limits.jobs,
                ),
            )

        self._txn(insert)
        return token

    def revoke_token(self, name: str) -> bool:
        return self._txn(lambda db: db.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount > 0)

    def tokens(self) -> list[TokenInfo]:
        rows = self._read(
            lambda db: db.execute(
                "SELECT name, created, usd_per_day, usd_per_month, calls_per_minute, jobs FROM tokens ORDER BY name"
            ).fetchall()
        )
        return [TokenInfo(r[0], r[1], Limits(r[2], r[3], r[4], r[5])) for r in rows]

    def find_token(self, token: str) -> TokenInfo | None:
        """The token's name and limits when it is a live token (looked up by its hash), else None."""
        digest = hash_token(token)
        return _token_info(self._read(lambda db: db.execute(_FIND_TOKEN, (digest,)).fetchone()))

    async def find_token_async(self, token: str) -> TokenInfo | None:
        """`find_token` on every request (so a revocation takes effect at once). On SQLite it is first tried on
        the event loop, on a connection of its own that never waits (`loopside.py`); when it would have to, and on
        PostgreSQL, it runs on the database's thread."""
        if self.url is None:
            digest = hash_token(token)
            row = self._loop_side.run(lambda db: db.execute(_FIND_TOKEN, (digest,)).fetchone())
            if row is not WOULD_WAIT:
                return _token_info(row)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.find_token, token)

    # -------------------------------------------------------------------------- quotas of OAuth subjects

    def set_quota(self, principal: str, limits: Limits) -> None:
        """Set the quotas of a caller who is not a token of ours (an OAuth subject, `oauth:SUB`)."""
        if not principal or len(principal) > 300 or not principal.isprintable():
            raise ValueError(
                f"{principal!r} cannot name a caller: use the token's subject, 1-300 printable characters."
            )
        self._txn(
            lambda db: db.execute(
                "INSERT INTO subjects (principal, usd_per_day, usd_per_month, calls_per_minute, jobs) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (principal) DO UPDATE SET usd_per_day = excluded.usd_per_day, "
                "usd_per_month = excluded.usd_per_month, calls_per_minute = excluded.calls_per_minute, "
                "jobs = excluded.jobs",
                (principal, limits.usd_per_day, limits.usd_per_month, limits.calls_per_minute, limits.jobs),
            )
        )

    def clear_quota(self, principal: str) -> bool:
        return self._txn(lambda db: db.execute("DELETE FROM subjects WHERE principal = ?", (principal,)).rowcount > 0)

    def quotas(self) -> list[tuple[str, Limits]]:
        rows = self._read(
            lambda db: db.execute(
                "SELECT principal, usd_per_day, usd_per_month, calls_per_minute, jobs FROM subjects ORDER BY principal"
            ).fetchall()
        )
        return [(r[0], Limits(r[1], r[2], r[3], r[4])) for r in rows]

    def quota_of(self, principal: str) -> Limits | None:
        row = self._read(
            lambda db: db.execute(
                "SELECT usd_per_day, usd_per_month, calls_per_minute, jobs FROM subjects WHERE principal = ?",
                (principal,),
            ).fetchone()
        )
        return Limits(*row) if row else None

    async def limits_of(self, principal: str) -> Limits | None:
        """The quotas set for a caller by principal: a token's (`token:NAME`) or a subject's; None when none are."""
        if principal.startswith(TOKEN_PRINCIPAL):
            name = principal.removeprefix(TOKEN_PRINCIPAL)

            def read(db: Db) -> Limits | None:
                row = db.execute(
                    "SELECT usd_per_day, usd_per_month, calls_per_minute, jobs FROM tokens WHERE name = ?", (name,)
                ).fetchone()
                return Limits(*row) if row else None

            return await self._run(read, write=False)
        return await self.quota_of_async(principal)

    async def quota_of_async(self, principal: str) -> Limits | None:
        """`quota_of` off the event loop, on every request (so a change takes effect at once)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.quota_of, principal)

    # ---------------------------------------------------------------------------------------------- quotas

    def _now(self, db: Db) -> float:
        """Wall time for a quota transaction on `db`: the database's on PostgreSQL (see `database_time`)."""
        if self.database_time and isinstance(db, _Postgres):
            return float(db.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])
        return self.clock()

    def _spent(self, db: Db, owner: str, now: float) -> tuple[float, float, float]:
        """Today's and this month's settled spend, and what is held now."""
        day = _day(now)
        today = db.execute("SELECT usd FROM spend WHERE owner = ? AND day = ?", (owner, day)).fetchone()
        month = db.execute(
            "SELECT COALESCE(SUM(usd), 0) FROM spend WHERE owner = ? AND day >= ?", (owner, day[:8] + "01")
        ).fetchone()
        held = db.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM holds WHERE owner = ? AND created >= ?", (owner, now - HOLD_TTL_S)
        ).fetchone()
        return (today[0] if today else 0.0), month[0], held[0]

    async def hold(self, owner: str, amount: float | None, limits: Limits, label: str) -> Hold | None:
        """Hold `amount` against `owner`'s USD quotas, or raise `QuotaExceededError` naming the limit, what is used
        and when it resets. None when no USD quota applies."""
        if not limits.spends:
            return None
        if amount is None or not math.isfinite(amount) or amount < 0:
            raise QuotaExceededError(
                f"{label}: its price is decided at routing time (or unreadable), so it cannot be held against your "
                "spending quota. Name a specific model instead.",
                limit="unpriced",
            )

        def take(db: Db) -> Hold:
            now = self._now(db)
            self._refuse_past(db, owner, limits, amount, f"{label} could cost up to {usd(amount)}, more than", now)
            db.execute("DELETE FROM holds WHERE owner = ? AND created < ?", (owner, now - HOLD_TTL_S))
            row = db.execute(
                "INSERT INTO holds (owner, amount, created) VALUES (?, ?, ?) RETURNING id", (owner, amount, now)
            ).fetchone()
            return Hold(id=int(row[0]), owner=owner, amount=amount)

        return await self._checked(take)

    def _refuse_past(self, db: Db, owner: str, limits: Limits, amount: float, what: str, now: float) -> None:
        """Raise `QuotaExceededError` when `amount` more would pass one of `owner`'s USD quotas (`what` begins the
        message: "… more than"), naming the limit, what is used and held, and when it resets."""
        today, month, held = self._spent(db, owner, now)
        for used, limit, period, resets, name in (
            (today, limits.usd_per_day, "daily", _next_day(now), "usd_per_day"),
            (month, limits.usd_per_month, "monthly", _next_month(now), "usd_per_month"),
        ):
            if limit is not None and used + held + amount > limit + 1e-12:
                raise QuotaExceededError(
                    f"{what} is left of your {period} quota: {usd(used)} of {usd(limit)} used"
                    + (f" and {usd(held)} held by calls in progress" if held else "")
                    + f". It resets at {resets}; ask the operator for a larger quota, or send your own "
                    "OpenRouter key in the X-OpenRouter-Key header.",
                    limit=name,
                )

    async def check_left(self, owner: str, limits: Limits, label: str) -> None:
        """Refuse at once, before any work, a paid call by a caller whose USD quota is used up (nothing is held):
        the attachments of a call that cannot be paid for are never decoded."""
        if limits.spends:
            await self._checked(
                lambda db: self._refuse_past(db, owner, limits, 1e-9, f"{label}: nothing", self._now(db))
            )

    async def _checked(self, fn: Callable[[Db], T]) -> T:
        """A quota transaction; a database that cannot be reached refuses the call (nothing is spent unchecked)."""
        try:
            return await self._run(fn)
        except StoreUnavailable as exc:
            raise QuotaExceededError(exc.message, limit="unavailable") from None

    async def settle(self, hold: Hold | None, cost: float | None) -> None:
        """Replace a hold by what the attempt really cost (no real number: the whole hold counts)."""
        if hold is None or hold.settled:
            return
        hold.settled = True
        trusted = cost is not None and math.isfinite(cost) and cost >= 0
        spent = cost if trusted and cost is not None else hold.amount

        def replace(db: Db) -> None:
            db.execute("DELETE FROM holds WHERE id = ?", (hold.id,))
            db.execute(
                "INSERT INTO spend (owner, day, usd) VALUES (?, ?, ?) "
                "ON CONFLICT (owner, day) DO UPDATE SET usd = spend.usd + excluded.usd",
                (hold.owner, _day(self._now(db)), spent),
            )

        try:
            await self._run(replace)
        except StoreUnavailable as exc:  # the hold stays, and counts in full until HOLD_TTL_S: never less than spent
            log.warning("a call's cost could not be settled against its quota: %s", exc.message)

    async def count_call(self, owner: str, limits: Limits) -> None:
        """Count one call, or raise `QuotaExceededError` when the last minute's calls are used (see the module
        docstring: the window slides, a second at a time)."""
        if limits.calls_per_minute is None:
            return
        limit = limits.calls_per_minute

        def count(db: Db) -> None:
            now = self._now(db)
            second = math.floor(now)
            rows = _counted(db, owner, second)
            used = sum(n for _, n in rows)
            if limit == 0:
                raise QuotaExceededError(
                    "Your quota allows no tool calls (calls-per-minute 0). Ask the operator for a calls-per-minute "
                    "quota.",
                    limit="calls_per_minute",
                )
            if used >= limit:
                frees = _frees_at(rows, used - limit + 1)
                raise QuotaExceededError(
                    f"You have made {used} of your {limit} calls in the last minute; the next one may start in "
                    f"{max(1, math.ceil(frees - now))} s (at {time.strftime('%H:%M:%S UTC', time.gmtime(frees))}). "
                    "Wait, or ask the operator for a higher calls-per-minute quota.",
                    limit="calls_per_minute",
                )
            db.execute(
                "INSERT INTO call_seconds (owner, second, n) VALUES (?, ?, 1) "
                "ON CONFLICT (owner, second) DO UPDATE SET n = call_seconds.n + 1",
                (owner, second),
            )
            db.execute("DELETE FROM call_seconds WHERE owner = ? AND second < ?", (owner, second - CALLS_WINDOW_S))

        await self._checked(count)

    async def usage(self, owner: str) -> tuple[float, float, float]:
        """Today's and this month's spend against the quotas, and what is held now."""
        return await self._run(lambda db: self._spent(db, owner, self._now(db)), write=False)

    async def standing(self, owner: str, limits: Limits) -> dict[str, Any]:
        """`owner`'s USD and calls quotas as `openrouter://usage` shows them: for each limit set, the limit, what
        is used (and held by calls in progress) and when it resets; None for a limit that is not set."""

        def read(db: Db) -> dict[str, Any]:
            now = self._now(db)
            today, month, held = self._spent(db, owner, now)
            rows = _counted(db, owner, math.floor(now))
            counted = sum(n for _, n in rows)

            def spend(limit: float | None, used: float, resets: str) -> dict[str, Any] | None:
                if limit is None:
                    return None
                left = max(0.0, limit - used - held)
                return {"limit": limit, "used": round(used, 8), "held": round(held, 8), "left": round(left, 8)} | {
                    "resets_at": resets
                }

            calls = limits.calls_per_minute
            return {
                "usd_per_day": spend(limits.usd_per_day, today, _next_day(now)),
                "usd_per_month": spend(limits.usd_per_month, month, _next_month(now)),
                "calls_per_minute": None
                if calls is None
                else {
                    "limit": calls,
                    "used": counted,  # in the last minute
                    "left": max(0, calls - counted),
                    # when `left` next grows by one, as the refusal says: with none left, the moment the next
                    # call may start, even past a limit lowered since (None: no call is counted, or the limit
                    # is 0 and no call may ever start)
                    "resets_at": time.strftime(
                        "%Y-%m-%d %H:%M:%S UTC", time.gmtime(_frees_at(rows, max(1, counted - calls + 1)))
                    )
                    if rows and calls > 0
                    else None,
                },
            }

        return await self._run(read, write=False)


@dataclass(frozen=True)
class QuotaGate:
    """One caller's USD quotas as the client's `Gate`: every attempt held before it starts, settled after."""

    accounts: Accounts
    owner: str
    limits: Limits

    async def hold(self, amount: float | None, label: str) -> Hold | None:
        return await self.accounts.hold(self.owner, amount, self.limits, label)

    async def settle(self, hold: Hold | None, cost: float | None) -> None:
        await self.accounts.settle(hold, cost)
