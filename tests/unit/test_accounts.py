"""Tokens and quotas (`jobs/accounts.py`) with an injected clock, on SQLite and on a real PostgreSQL: hashes only,
holds that never let concurrent attempts pass a quota, refusals that name the limit, the amount used and the reset,
and no number from upstream that switches a quota off."""

from __future__ import annotations

import asyncio
import calendar
import math
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openrouter_research_mcp._util import usd
from openrouter_research_mcp.errors import QuotaExceededError
from openrouter_research_mcp.jobs.accounts import Accounts, Limits, hash_token

from ..fakes.openrouter import FakeOpenRouter
from ..support import CountingExecutor, tool_state

NOON = calendar.timegm((2026, 12, 31, 12, 0, 30))  # 12:00:30 UTC on the last day of a month


class Books:
    """Makes `Accounts` on one database (each a server or a replica of its own), and reads what it stores."""

    def __init__(self, path: Path, url: str | None) -> None:
        self.path, self.url = path, url

    def __call__(self, clock: Callable[[], float] = time.time) -> Accounts:
        return Accounts(self.path, clock=clock, url=self.url)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.url is None:
            return sqlite3.connect(self.path).execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.url) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]

    def stored(self) -> bytes:
        """Everything the database holds, as bytes a token could hide in."""
        if self.url is None:
            return self.path.read_bytes() + Path(f"{self.path}-wal").read_bytes()
        return repr(self.query("SELECT * FROM tokens")).encode()


@pytest.fixture(params=["sqlite", "postgres"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Books:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    return Books(tmp_path / "accounts.db", url)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_accounts_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """accounts.db holds token hashes and users' sealed keys: 0600 with its write-ahead log, in a 0700 folder; an
    earlier release's 0644 file is tightened."""
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "accounts.db").touch()
    (earlier / "accounts.db").chmod(0o644)
    for folder in (tmp_path / "new" / "data", earlier):
        accounts = Accounts(folder / "accounts.db")
        accounts.add_token("alice")  # a write, so the write-ahead log exists too
        files = [folder / "accounts.db", folder / "accounts.db-wal"]
        assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}
        accounts.close()
    assert oct((tmp_path / "new" / "data").stat().st_mode & 0o777) == "0o700"


def test_tokens_are_stored_as_hashes_and_revoked_at_once(make: Books) -> None:
    accounts = make()
    token = accounts.add_token("alice", Limits(usd_per_day=1.5))
    assert token.startswith("orm_") and len(token) > 40
    raw = make.stored()
    assert token.encode() not in raw and hash_token(token).encode() in raw
    found = accounts.find_token(token)
    assert found is not None and found.name == "alice" and found.limits.usd_per_day == 1.5
    assert accounts.find_token(token + "x") is None
    with pytest.raises(ValueError, match="exists already"):
        accounts.add_token("alice")
    with pytest.raises(ValueError, match="cannot name a token"):
        accounts.add_token("bad name; drop table")
    other = make()  # another process: the CLI
    assert other.revoke_token("alice") and accounts.find_token(token) is None
    accounts.close()
    other.close()


async def test_a_token_is_looked_up_on_the_event_loop_and_its_revocation_seen_at_once(tmp_path: Path) -> None:
    """On SQLite the per-request look-up needs no handoff to the database's thread, and still sees another
    process's revocation on the next request."""
    accounts = Accounts(tmp_path / "accounts.db")
    token = accounts.add_token("alice", Limits(calls_per_minute=3))
    accounts._executor = counting = CountingExecutor()
    found = await accounts.find_token_async(token)
    assert found is not None and found.name == "alice" and found.limits.calls_per_minute == 3
    assert await accounts.find_token_async(token + "x") is None
    other = Accounts(tmp_path / "accounts.db")  # the CLI, in another process
    assert other.revoke_token("alice")
    assert await accounts.find_token_async(token) is None
    assert counting.handed == 0
    accounts.close()
    other.close()


async def test_a_token_look_up_the_event_loop_cannot_answer_goes_to_the_database_thread(tmp_path: Path) -> None:
    """Whatever stops the event loop's read (here its connection broken; in life a lock it would wait for, with
    busy timeout 0) hands the look-up to the database's thread, which answers."""
    accounts = Accounts(tmp_path / "accounts.db")
    token = accounts.add_token("alice", Limits(jobs=2))
    accounts._executor = counting = CountingExecutor()
    assert await accounts.find_token_async(token) is not None and counting.handed == 0
    assert accounts._loop_side._db is not None
    accounts._loop_side._db.close()  # any sqlite3.Error from now on
    found = await accounts.find_token_async(token)
    assert found is not None and found.limits.jobs == 2 and counting.handed == 1
    assert await accounts.find_token_async(token) is not None and counting.handed == 1  # opened again
    accounts.close()


async def test_quota_holds_concurrent_attempts_and_names_the_limit(make: Books) -> None:
    clock = Clock(NOON)
    accounts = make(clock)
    limits = Limits(usd_per_day=0.01)

    async def attempt() -> float:
        hold = await accounts.hold("token:a", 0.003, limits, "A call to `m`")
        await asyncio.sleep(0)
        await accounts.settle(hold, 0.002)
        return 0.002

    outcomes = await asyncio.gather(*(attempt() for _ in range(20)), return_exceptions=True)
    spent = sum(o for o in outcomes if isinstance(o, float))
    refusals = [o for o in outcomes if isinstance(o, QuotaExceededError)]
    assert spent <= 0.01 and refusals
    today, month, held = await accounts.usage("token:a")
    assert today == pytest.approx(spent) and held == 0
    while spent + 0.003 <= 0.01:  # spend on, one attempt at a time, until the next would not fit
        await accounts.settle(await accounts.hold("token:a", 0.003, limits, "x"), 0.002)
        spent += 0.002
    with pytest.raises(QuotaExceededError) as refused:
        await accounts.hold("token:a", 0.003, limits, "A call to `m`")
    assert refused.value.message == (
        f"A call to `m` could cost up to $0.003, more than is left of your daily quota: {usd(spent)} of $0.01 used. "
        "It resets at 2027-01-01 00:00 UTC; ask the operator for a larger quota, or send your own OpenRouter key in "
        "the X-OpenRouter-Key header."
    )
    assert await accounts.hold("token:b", 0.003, limits, "x") is not None  # another caller's quota is their own
    clock.now += 86400  # the next day: the daily quota starts again
    assert await accounts.hold("token:a", 0.003, limits, "x") is not None
    accounts.close()


async def test_quota_counts_a_cost_that_is_no_real_number_as_the_whole_hold(make: Books) -> None:
    accounts = make(Clock(NOON))
    limits = Limits(usd_per_month=0.01)
    for bad in (float("nan"), -1.0, None, float("inf")):
        hold = await accounts.hold("o", 0.002, limits, "x")
        await accounts.settle(hold, bad)
    today, month, _ = await accounts.usage("o")
    assert month == pytest.approx(0.008)
    with pytest.raises(QuotaExceededError, match="monthly quota: \\$0.008 of \\$0.01 used. It resets at 2027-01-01"):
        await accounts.hold("o", 0.003, limits, "x")
    with pytest.raises(QuotaExceededError, match="decided at routing time"):
        await accounts.hold("o", None, limits, "x")
    accounts.close()


async def test_calls_per_minute_window_slides_and_says_when_the_next_call_may_start(make: Books) -> None:
    """A fixed minute would let 2 calls at 12:00:59 and 2 more at 12:01:00 through; the sliding window does not,
    and the refusal says when the oldest counted call stops counting."""
    clock = Clock(NOON)  # 12:00:30
    accounts = make(clock)
    limits = Limits(calls_per_minute=2)
    await accounts.count_call("o", limits)
    clock.now = NOON + 29.5  # 12:00:59.5
    await accounts.count_call("o", limits)
    clock.now = NOON + 40  # 12:01:10: another minute on the wall clock, but not another 60 seconds
    with pytest.raises(QuotaExceededError) as refused:
        await accounts.count_call("o", limits)
    assert refused.value.limit == "calls_per_minute"
    assert refused.value.message == (
        "You have made 2 of your 2 calls in the last minute; the next one may start in 21 s (at 12:01:31 UTC). "
        "Wait, or ask the operator for a higher calls-per-minute quota."
    )
    shown = (await accounts.standing("o", limits))["calls_per_minute"]
    assert shown == {"limit": 2, "used": 2, "left": 0, "resets_at": "2026-12-31 12:01:31 UTC"}
    clock.now = NOON + 60.9  # 12:01:30.9: the first call still counts (it counts for 60 to 61 s)
    with pytest.raises(QuotaExceededError, match="next one may start in 1 s"):
        await accounts.count_call("o", limits)
    clock.now = NOON + 61  # 12:01:31
    await accounts.count_call("o", limits)
    with pytest.raises(QuotaExceededError, match="next one may start in 29 s \\(at 12:02:00 UTC\\)"):
        await accounts.count_call("o", limits)
    clock.now = NOON + 200
    assert (await accounts.standing("o", limits))["calls_per_minute"] == {
        "limit": 2,
        "used": 0,
        "left": 2,
        "resets_at": None,
    }
    await accounts.count_call("o", limits)
    assert make.query("SELECT second, n FROM call_seconds WHERE owner = 'o'") == [(math.floor(NOON + 200), 1)]
    accounts.close()


async def test_no_sixty_seconds_ever_hold_more_calls_than_the_limit(make: Books) -> None:
    """Calls at random moments, in bursts and lulls, by two servers on one database: of those let through, no 60
    seconds anywhere hold more than the limit, and none is refused while fewer were counted in the 61 s before it."""
    rng = random.Random(19)
    clock = Clock(NOON)
    one, two = make(clock), make(clock)
    limits = Limits(calls_per_minute=5)
    passed: list[float] = []
    for _ in range(400):
        clock.now += rng.choice((0.0, 0.05, 0.3, 1.7, 7.0, 20.0))
        try:
            await rng.choice((one, two)).count_call("o", limits)
        except QuotaExceededError:
            assert sum(1 for at in passed if at >= math.floor(clock.now) - 60) >= 5, "refused below the limit"
        else:
            passed.append(clock.now)
    assert len(passed) > 100  # enough of both let through to mean something
    assert max(sum(1 for other in passed if at <= other < at + 60) for at in passed) == 5
    one.close()
    two.close()


async def test_a_lowered_calls_limit_says_when_the_next_call_may_start(make: Books) -> None:
    """Five calls counted, then the operator lowers the limit to 2: `resets_at` is when the next call may start
    (when 4 of the 5 have stopped counting), as the refusal says, not when the oldest one stops."""
    clock = Clock(NOON)  # 12:00:30
    accounts = make(clock)
    for step in range(5):
        clock.now = NOON + 10 * step  # 12:00:30, :40, :50, 12:01:00, :10
        await accounts.count_call("o", Limits(calls_per_minute=5))
    lowered = Limits(calls_per_minute=2)
    shown = (await accounts.standing("o", lowered))["calls_per_minute"]
    assert shown == {"limit": 2, "used": 5, "left": 0, "resets_at": "2026-12-31 12:02:01 UTC"}
    with pytest.raises(QuotaExceededError, match="next one may start in 51 s \\(at 12:02:01 UTC\\)"):
        await accounts.count_call("o", lowered)
    clock.now = NOON + 91  # 12:02:01: the fourth call has stopped counting
    await accounts.count_call("o", lowered)
    accounts.close()


async def test_replicas_whose_clocks_differ_count_calls_on_the_databases_clock(pg_url: str, tmp_path: Path) -> None:
    """Two replicas on one PostgreSQL, one of them an hour fast: on their own clocks each would count its calls
    in a window of its own and let twice the limit through; on the database's clock the limit holds across both."""
    one = Accounts(tmp_path / "unused.db", url=pg_url)
    two = Accounts(tmp_path / "unused.db", url=pg_url)
    assert one.database_time and two.database_time
    two.clock = lambda: time.time() + 3600  # the fast replica's wall clock (never read for quotas on PostgreSQL)
    limits = Limits(calls_per_minute=3)
    for book in (one, two, one):
        await book.count_call("o", limits)
    with pytest.raises(QuotaExceededError, match="made 3 of your 3 calls in the last minute"):
        await two.count_call("o", limits)  # (on its own clock, only its one call would count: let through)
    one.close()
    two.close()


async def test_calls_per_minute_zero_refuses_every_call(make: Books) -> None:
    """Also after calls were counted under a higher limit: `openrouter://usage` says none is left, and no reset."""
    accounts = make(Clock(NOON))
    await accounts.count_call("o", Limits(calls_per_minute=5))
    with pytest.raises(QuotaExceededError) as refused:
        await accounts.count_call("o", Limits(calls_per_minute=0))
    assert refused.value.message == (
        "Your quota allows no tool calls (calls-per-minute 0). Ask the operator for a calls-per-minute quota."
    )
    shown = (await accounts.standing("o", Limits(calls_per_minute=0)))["calls_per_minute"]
    assert shown == {"limit": 0, "used": 1, "left": 0, "resets_at": None}
    accounts.close()


def test_two_processes_share_one_quota(make: Books) -> None:
    """Holds made through two `Accounts` on one database (two servers, two replicas) add up: SQLite serialises
    them, and on PostgreSQL they take one advisory lock."""
    limits = Limits(usd_per_day=0.005)

    async def both() -> list[Any]:
        one, two = make(Clock(NOON)), make(Clock(NOON))
        tries = [book.hold("o", 0.002, limits, "x") for book in (one, two, one, two)]
        out = await asyncio.gather(*tries, return_exceptions=True)
        one.close()
        two.close()
        return out

    outcomes = asyncio.run(both())
    assert sum(1 for o in outcomes if not isinstance(o, BaseException)) == 2
    [rows] = make.query("SELECT COUNT(*), SUM(amount) FROM holds")
    assert rows == (2, pytest.approx(0.004))


async def test_a_hold_left_by_a_killed_server_stops_counting_after_an_hour(make: Books) -> None:
    clock = Clock(NOON)
    dead = make(clock)
    limits = Limits(usd_per_day=0.005)
    await dead.hold("o", 0.004, limits, "x")  # never settled: the server was killed mid-call
    dead.close()
    alive = make(clock)
    with pytest.raises(QuotaExceededError, match="\\$0.004 held by calls in progress"):
        await alive.hold("o", 0.002, limits, "x")
    clock.now += 3601
    assert await alive.hold("o", 0.002, limits, "x") is not None
    alive.close()


async def test_a_used_up_quota_refuses_before_anything_is_read(make: Books) -> None:
    clock = Clock(NOON)
    accounts = make(clock)
    limits = Limits(usd_per_day=0.002)
    await accounts.check_left("o", limits, "This call")  # room left: nothing said, nothing held
    await accounts.settle(await accounts.hold("o", 0.002, limits, "x"), 0.002)
    with pytest.raises(QuotaExceededError) as refused:
        await accounts.check_left("o", limits, "This call")
    assert refused.value.message.startswith(
        "This call: nothing is left of your daily quota: $0.002 of $0.002 used. It resets at 2027-01-01 00:00 UTC"
    )
    assert (await accounts.usage("o"))[2] == 0  # the check held nothing
    accounts.close()


async def test_a_used_up_quota_refuses_attachments_before_they_are_decoded(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    from openrouter_research_mcp.tools.ask import AskInput, ask

    broken = "data:image/png;base64," + "A" * 400  # decoding it would fail: the quota must answer first
    async with tool_state(fake_openrouter, tmp_path) as state:
        poor = state.shared.for_caller(state.shared.caller("token:z", limits=Limits(usd_per_day=0.0)))
        with pytest.raises(QuotaExceededError, match="nothing is left of your daily quota"):
            await ask(poor, AskInput(prompt="What is this?", attachments=[broken]))
    assert fake_openrouter.chat_requests() == []
