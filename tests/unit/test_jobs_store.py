"""The job stores — embedded SQLite and PostgreSQL (a real server the suite starts) — under one set of rules:
versioned writes, leases, stored cancels, owners and the jobs limit hold across connections and across processes;
migrations are safe when two start at once. Then SQLite's own: a corrupt, unwritable or locked database never stops
the server."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from openrouter_research_mcp.jobs.loopside import CHECKPOINT_EVERY
from openrouter_research_mcp.jobs.postgres import SCHEMA as PG_SCHEMA
from openrouter_research_mcp.jobs.sqlite import DB_FILE, SqliteStore
from openrouter_research_mcp.jobs.store import (
    SCHEMA_VERSION,
    Conflict,
    JobRecord,
    JobStore,
    LeaseHeld,
    TooManyJobs,
    open_store,
)

from ..support import CountingExecutor, eventually


class Clock:
    """Wall time a test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(job_id: str = "20260101-000000-00000001", owner: str = "alice", **kw: object) -> JobRecord:
    fields: dict[str, object] = {"kind": "research", "status": "running", "data": {"step": 0}, **kw}
    return JobRecord(id=job_id, owner=owner, **fields)  # type: ignore[arg-type]


def _open(spec: str, clock: Callable[[], float] = time.time) -> JobStore:
    """The store `spec` names: a PostgreSQL URL, or a SQLite data directory."""
    is_url = spec.startswith("postgresql://")
    return open_store(spec if is_url else None, Path(spec), clock)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the stores of a test keep their jobs: a SQLite data directory, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def stores(database: str) -> AsyncIterator[tuple[JobStore, JobStore, Clock]]:
    """Two stores on one database, as two server processes on one data directory (or two replicas) have."""
    clock = Clock()
    a, b = _open(database, clock), _open(database, clock)
    await a.open()
    await b.open()
    yield a, b, clock
    await a.close()
    await b.close()


async def test_store_writes_are_compare_and_set(stores: tuple[JobStore, JobStore, Clock]) -> None:
    a, b, _clock = stores
    await a.create(record())
    mine, theirs = await a.get(record().id, "alice"), await b.get(record().id, "alice")
    assert mine is not None and theirs is not None and mine.version == theirs.version == 1
    mine.data = {"step": 1}
    await a.write(mine, None)
    theirs.data = {"step": 99}
    with pytest.raises(Conflict):  # the other process read version 1: its write is refused, not silently lost
        await b.write(theirs, None)
    again = await b.get(record().id, "alice")
    assert again is not None and again.data == {"step": 1} and again.version == 2


async def test_store_reads_are_scoped_to_their_owner(stores: tuple[JobStore, JobStore, Clock]) -> None:
    a, _b, _clock = stores
    await a.create(record())
    assert await a.get(record().id, "mallory") is None
    assert await a.request_cancel(record().id, "mallory") is None
    assert (await a.list_jobs("mallory", None, 10)).total == 0 and (await a.list_jobs("alice", None, 10)).total == 1


async def test_store_lease_is_held_until_it_expires(stores: tuple[JobStore, JobStore, Clock]) -> None:
    a, b, clock = stores
    await a.create(record(status="interrupted"))
    found = await a.get(record().id, "alice")
    assert found is not None
    taken = await a.acquire(found, "holder-a", clock.now, 15)
    assert taken.lease_holder == "holder-a" and taken.status == "running"
    stale = await b.get(record().id, "alice")
    assert stale is not None
    with pytest.raises(LeaseHeld) as held:
        await b.acquire(stale, "holder-b", clock.now + 5, 15)
    assert held.value.record is not None and held.value.record.lease_holder == "holder-a"
    assert (await b.list_jobs("alice", None, 10)).items[0].status == "running"  # live elsewhere: running
    clock.now += 16  # holder-a stopped renewing (its process died)
    assert (await b.list_jobs("alice", None, 10)).items[0].status == "interrupted"
    current = await b.get(record().id, "alice")
    assert current is not None and current.effective_status(clock.now) == "interrupted"
    again = await b.acquire(current, "holder-b", clock.now, 15)
    assert again.lease_holder == "holder-b"
    held_a, _cancel = await a.renew(record().id, "holder-a", clock.now, 15)
    assert not held_a  # the old holder learns it lost the job
    taken.data = {"step": 5}
    with pytest.raises(Conflict):  # and cannot overwrite what the new holder does
        await a.write(taken, "holder-a")


async def test_store_cancel_is_stored_for_the_holder(stores: tuple[JobStore, JobStore, Clock]) -> None:
    a, b, clock = stores
    await a.create(record(lease_holder="holder-a", lease_expires=clock.now + 15))
    assert await a.renew(record().id, "holder-a", clock.now, 15) == (True, False)
    await b.request_cancel(record().id, "alice")  # from the other process
    assert await a.renew(record().id, "holder-a", clock.now, 15) == (True, True)


async def test_store_import_is_idempotent(stores: tuple[JobStore, JobStore, Clock]) -> None:
    a, b, _clock = stores
    batch = [record(f"20260101-000000-{i:08x}", status="done") for i in range(50)]
    assert await a.import_records(batch) == 50
    assert await b.import_records(batch) == 0  # a second process importing the same files adds nothing
    assert (await a.list_jobs("alice", None, 100)).total == 50


def _race(spec: str, job_id: str, holder: str, results: multiprocessing.Queue[str]) -> None:
    async def take() -> str:
        store = _open(spec)
        await store.open()
        try:
            found = await store.get(job_id, "alice")
            assert found is not None
            await store.acquire(found, holder, found.updated_at + 1, 15)
            return "won"
        except (LeaseHeld, Conflict):
            return "refused"
        finally:
            await store.close()

    results.put(asyncio.run(take()))


async def test_store_one_of_many_processes_racing_for_a_job_takes_it(database: str) -> None:
    store = _open(database)
    await store.open()
    await store.create(record(status="interrupted"))
    await store.close()
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[str] = context.Queue()
    racers = [context.Process(target=_race, args=(database, record().id, f"p{i}", results)) for i in range(6)]
    for racer in racers:
        racer.start()
    outcomes = [await asyncio.to_thread(results.get, True, 60) for _ in racers]
    for racer in racers:
        racer.join(30)
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]


async def test_store_jobs_limit_counts_live_leases_only(stores: tuple[JobStore, JobStore, Clock]) -> None:
    a, b, clock = stores

    def live(job_id: str, owner: str = "alice") -> JobRecord:
        return record(job_id, owner, lease_holder="h", lease_expires=clock.now + 15)

    await a.create(live("20260101-000000-00000001"), max_active=2)
    await b.create(live("20260101-000000-00000002"), max_active=2)  # the other process counts both
    await a.create(record("20260101-000000-00000003", status="done"))  # finished jobs never count
    await a.create(live("20260101-000000-00000004", "bob"), max_active=1)  # nor another owner's
    assert await b.running("alice") == 2 and await b.running("bob") == 1
    with pytest.raises(TooManyJobs) as refused:
        await b.create(live("20260101-000000-00000005"), max_active=2)
    assert (refused.value.running, refused.value.limit) == (2, 2)
    assert await a.get("20260101-000000-00000005", "alice") is None  # the refused job was not written
    stopped = await a.get("20260101-000000-00000003", "alice")
    assert stopped is not None
    with pytest.raises(TooManyJobs):  # a resume is a start too
        await a.acquire(stopped, "h2", clock.now, 15, max_active=2)
    clock.now += 16  # both leases lapse: their holder died, and the jobs are interrupted, not running
    again = await a.get("20260101-000000-00000003", "alice")
    assert again is not None and (await a.acquire(again, "h2", clock.now, 15, max_active=2)).lease_holder == "h2"


def _start(spec: str, job_id: str, results: multiprocessing.Queue[str]) -> None:
    async def start() -> str:
        store = _open(spec)
        await store.open()
        try:
            await store.create(record(job_id, lease_holder=job_id, lease_expires=4e9), max_active=2)
            return "started"
        except TooManyJobs:
            return "refused"
        finally:
            await store.close()

    results.put(asyncio.run(start()))


async def test_store_jobs_limit_holds_when_processes_start_jobs_at_once(database: str) -> None:
    store = _open(database)
    await store.open()
    await store.close()
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[str] = context.Queue()
    starters = [
        context.Process(target=_start, args=(database, f"20260101-000000-0000000{i}", results)) for i in range(6)
    ]
    for starter in starters:
        starter.start()
    outcomes = [await asyncio.to_thread(results.get, True, 60) for _ in starters]
    for starter in starters:
        starter.join(30)
    assert sorted(outcomes) == ["refused"] * 4 + ["started"] * 2


async def test_store_migrations_are_versioned_and_safe_when_two_start_at_once(database: str) -> None:
    both = [_open(database), _open(database)]
    await asyncio.gather(*(s.open() for s in both))
    expected = PG_SCHEMA if database.startswith("postgresql://") else SCHEMA_VERSION
    assert [await s.schema_version() for s in both] == [expected, expected]
    for s in both:
        await s.close()


async def test_store_a_corrupt_database_is_set_aside_and_a_new_one_made(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_bytes(b"this is not a database, whatever its name says" * 100)
    store = SqliteStore(tmp_path / DB_FILE)
    await store.open()
    assert store.durable and "new" in store.description
    assert [p.name for p in tmp_path.glob(f"{DB_FILE}.unreadable-*")]  # kept, not deleted
    await store.create(record())
    assert await store.get(record().id, "alice") is not None
    await store.close()


async def test_store_a_path_that_is_a_file_serves_from_memory_and_says_so(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the data directory should be")
    store = SqliteStore(blocked / DB_FILE)
    await store.open()
    assert not store.durable and "cannot be written" in store.description
    await store.create(record())
    assert await store.get(record().id, "alice") is not None
    await store.close()


async def test_store_a_database_locked_by_another_program_serves_from_memory(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = SqliteStore(path, busy_timeout=0.2)
        await store.open()
        assert not store.durable and "locked" in store.description
        assert list(tmp_path.glob(f"{DB_FILE}.unreadable-*")) == []  # a locked file is left alone
        await store.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_store_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / DB_FILE).touch(mode=0o644)  # an earlier release's file, made with the usual umask
    (earlier / DB_FILE).chmod(0o644)
    for folder in (tmp_path / "new" / "data", earlier):
        store = SqliteStore(folder / DB_FILE)
        await store.open()
        await store.create(record())  # a write, so the write-ahead log exists too
        files = [folder / DB_FILE, folder / f"{DB_FILE}-wal"]
        assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}
        await store.close()
    assert oct((tmp_path / "new" / "data").stat().st_mode & 0o777) == "0o700"


async def test_store_opened_without_waiting_runs_every_call_after_the_opening(tmp_path: Path) -> None:
    """The server does not wait for the opening before answering `initialize`; a call made at once still finds the
    database open and migrated, even a corrupt one set aside first."""
    (tmp_path / DB_FILE).write_bytes(b"not a database" * 100)
    store = SqliteStore(tmp_path / DB_FILE)
    await store.open(wait=False)
    assert await store.schema_version() == SCHEMA_VERSION
    await store.create(record())
    assert await store.get(record().id, "alice") is not None
    assert store.durable and "new" in store.description
    await store.close()


async def test_store_a_usage_line_is_written_on_the_event_loop_and_seen_at_once(tmp_path: Path) -> None:
    """The per-call ledger line needs no handoff to the database's thread; another connection (a replica's
    `openrouter://usage`, the next process) sees it as soon as the call returns; every CHECKPOINT_EVERY lines
    the thread is asked to fold the write-ahead log back."""
    store = SqliteStore(tmp_path / DB_FILE)
    await store.open()
    store._executor = counting = CountingExecutor()
    for _ in range(3):
        await store.record_usage("alice", "2026-12-03", "m", ok=True, prompt_tokens=2, completion_tokens=1, cost=0.5)
    assert counting.handed == 0
    other = sqlite3.connect(tmp_path / DB_FILE)
    assert other.execute("SELECT calls, prompt_tokens, cost_usd FROM usage").fetchall() == [(3, 6, 1.5)]
    for _ in range(CHECKPOINT_EVERY - 3):
        await store.record_usage("bob", "2026-12-03", "m", ok=False, prompt_tokens=1, completion_tokens=0, cost=0)
    assert counting.handed == 1  # the checkpoint
    assert [row.failed_calls for row in await store.usage("bob")] == [CHECKPOINT_EVERY - 3]
    other.close()
    await store.close()


async def test_store_a_usage_line_that_would_wait_for_a_writer_is_written_once_by_the_thread(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / DB_FILE)
    await store.open()
    await store.record_usage("alice", "2026-12-03", "m", ok=True, prompt_tokens=1, completion_tokens=1, cost=0.25)
    store._executor = counting = CountingExecutor()
    writer = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    line = asyncio.ensure_future(
        store.record_usage("alice", "2026-12-03", "m", ok=True, prompt_tokens=1, completion_tokens=1, cost=0.25)
    )
    await eventually(lambda: counting.handed == 1, what="the line handed to the thread")
    assert not line.done()  # the thread waits for the writer (its busy timeout); the event loop does not
    writer.execute("COMMIT")
    writer.close()
    await line
    assert [(row.calls, row.cost_usd) for row in await store.usage("alice")] == [(2, 0.5)]
    await store.close()
