"""PostgreSQL's own: a database that goes away and comes back (each test with a server of its own, really stopped
and started), a server that starts before its database, and a password that appears nowhere."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from openrouter_research_mcp.jobs.postgres import PostgresStore, describe_url
from openrouter_research_mcp.jobs.store import JobRecord, StoreUnavailable

from ..services import Postgres, postgres

T = TypeVar("T")


@pytest.fixture
def own_server() -> Iterator[Postgres]:
    try:
        with postgres() as server:
            yield server
    except LookupError as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")


def _with_password(url: str) -> str:
    return url.replace("postgresql://mcp@", "postgresql://mcp:hunter2-secret@")  # trust auth: any password works


async def _once_back(step: Callable[[], Awaitable[T]]) -> T:
    """`step`'s result once the database answers again: the pool reconnects on its own schedule (backing off while
    the database was away), so this waits on that state, never on a fixed time."""
    for _ in range(300):
        try:
            return await step()
        except StoreUnavailable:
            await asyncio.sleep(0.1)
    raise AssertionError("the database never came back")


def _job(job_id: str = "20260101-000000-00000001") -> JobRecord:
    return JobRecord(id=job_id, kind="research", owner="alice", status="done", data={"report": "kept"})


async def test_postgres_a_database_that_goes_away_fails_calls_clearly_and_comes_back(own_server: Postgres) -> None:
    store = PostgresStore(_with_password(own_server.url()), timeout=1)
    await store.open()
    try:
        await store.create(_job())
        own_server.stop()
        with pytest.raises(StoreUnavailable) as gone:
            await store.get(_job().id, "alice")
        message = gone.value.message
        assert "cannot be reached just now" in message and "ask, compare_models, list_models" in message
        assert "hunter2" not in message and "hunter2" not in store.description
        own_server.start()
        back = await _once_back(lambda: store.get(_job().id, "alice"))  # the pool reconnects: nothing was lost
        assert back is not None and back.data == {"report": "kept"}
    finally:
        await store.close()


async def test_postgres_a_server_started_before_its_database_serves_once_it_is_up(own_server: Postgres) -> None:
    own_server.stop()
    store = PostgresStore(own_server.url(), timeout=1)
    await store.open()  # no database yet: said in the log, not fatal
    try:
        with pytest.raises(StoreUnavailable):
            await store.list_jobs("alice", None, 10)
        own_server.start()
        await _once_back(lambda: store.create(_job()))  # migrated on the first connection that works
        assert (await store.list_jobs("alice", None, 10)).total == 1
        assert await store.schema_version() >= 1
    finally:
        await store.close()


def test_postgres_a_database_is_named_without_its_credentials() -> None:
    assert describe_url("postgresql://mcp:s3cret@db.internal:6543/research") == "db.internal:6543/research"
    assert describe_url("postgresql://db/research") == "db:5432/research"


async def test_postgres_accounts_that_go_away_refuse_quotas_and_keep_recent_tokens(own_server: Postgres) -> None:
    """With the accounts in PostgreSQL and PostgreSQL stopped: a quota cannot be checked, so a paid call is refused
    with that reason (never let through unchecked); a token verified a moment ago is still taken, a token not seen
    is refused; once the database is back, everything is as it was."""
    from openrouter_research_mcp.errors import QuotaExceededError
    from openrouter_research_mcp.jobs.accounts import Accounts, Limits
    from openrouter_research_mcp.remote.auth import OUTAGE_GRACE_S, TokenTable

    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    accounts = Accounts(own_server.root / "unused.db", url=_with_password(own_server.url()))
    table = TokenTable(accounts, clock=clock)
    alice, bob = accounts.add_token("alice", Limits(usd_per_day=1.0)), accounts.add_token("bob")
    try:
        assert (await table.verify_token(alice)) is not None
        own_server.stop()
        with pytest.raises(QuotaExceededError) as refused:
            await accounts.hold("token:alice", 0.01, Limits(usd_per_day=1.0), "A call")
        assert refused.value.limit == "unavailable" and "cannot be reached just now" in refused.value.message
        assert "hunter2" not in refused.value.message
        taken = await table.verify_token(alice)  # seen a moment ago: still taken, with its quotas
        assert taken is not None and taken.subject == "token:alice" and (taken.claims or {})["usd_per_day"] == 1.0
        assert await table.verify_token(bob) is None  # never seen by this server: refused
        clock.now += OUTAGE_GRACE_S + 1
        assert await table.verify_token(alice) is None  # too long ago
        own_server.start()
        for _ in range(100):  # fails at once for RETRY_AFTER_S after a failure, then connects again
            try:
                assert (await table.verify_token(bob)) is not None
                break
            except AssertionError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the accounts never came back")
        assert await accounts.hold("token:alice", 0.01, Limits(usd_per_day=1.0), "A call") is not None
    finally:
        accounts.close()
