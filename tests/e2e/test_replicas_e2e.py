"""Several real replicas over one real PostgreSQL (started by the suite), behind a real nginx: every tool through
the balancer in both protocol generations; a research run started on one replica, polled on another and cancelled
on a third; a replica SIGKILLed mid-run whose run another finishes without paying twice; PostgreSQL restarted
mid-run; two replicas racing one caller's quota; the `migrate` command. Each replica has a data directory of its
own: all they share is the database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..fakes.openrouter import FakeOpenRouter
from ..services import Postgres, nginx, skip_without_nginx
from ..support import TOOLS, result_text, wait_until
from .test_http_e2e import HttpServer, cli, env_for, free_port, http_server
from .test_jobs_e2e import PLAN, researched

LEASE_S = "2"  # a dead replica's jobs are orphans this soon (the default is 15 s)
STATE_KEY = "k" * 43  # one request-state key for every replica
MODELS = ["openai/gpt-4o-mini", "openai/gpt-4o"]
BEES = {"question": "How do bees live?", "depth": 1, "background": True}


class Cluster:
    """`count` replicas on one database, and (with `balanced`) nginx in front of them."""

    def __init__(self, env: dict[str, str], replicas: list[HttpServer], url: str | None) -> None:
        self.env, self.replicas, self._url = env, replicas, url

    @property
    def url(self) -> str:
        assert self._url is not None
        return self._url

    def token(self, name: str, *quota: str) -> str:
        made = cli(self.env, "token", "add", name, *quota)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()


@contextlib.contextmanager
def cluster(
    fake: FakeOpenRouter, tmp_path: Path, database: str, count: int, *, balanced: bool = False, **extra: str
) -> Iterator[Cluster]:
    front = free_port() if balanced else None
    public = f"http://127.0.0.1:{front}/mcp" if front else None
    env = env_for(
        fake,
        tmp_path,
        OPENROUTER_MCP_AUTH="tokens",
        OPENROUTER_DATABASE_URL=database,
        OPENROUTER_MCP_STATE_KEYS=STATE_KEY,
        OPENROUTER_JOB_LEASE_S=LEASE_S,
        **({"OPENROUTER_MCP_PUBLIC_URL": public} if public else {}),
        **extra,
    )
    with contextlib.ExitStack() as stack:
        replicas = [
            stack.enter_context(
                http_server(
                    env,
                    tmp_path,
                    OPENROUTER_DATA_DIR=str(tmp_path / f"data-{i}"),
                    OPENROUTER_CACHE_DIR=str(tmp_path / f"cache-{i}"),
                )
            )
            for i in range(count)
        ]
        url = None
        if front is not None:
            base = stack.enter_context(nginx([f"127.0.0.1:{r.port}" for r in replicas], port=front))
            url = f"{base}/mcp"
        yield Cluster(env, replicas, url)


@pytest.fixture
def database(pg_url: str) -> str:
    skip_without_nginx()
    return pg_url


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result_text(result)
    data: dict[str, Any] = result.structured_content
    return data


def calls_served(replica: HttpServer) -> int:
    """Tool calls this replica answered, from its call log."""
    return sum(1 for line in replica.stderr.splitlines() if " openrouter_research_mcp.calls: " in line)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_replicas_every_tool_works_through_the_balancer(
    mode: str, fake_openrouter: FakeOpenRouter, tmp_path: Path, database: str
) -> None:
    with cluster(fake_openrouter, tmp_path, database, 2, balanced=True) as c:
        token = c.token("alice")
        async with _client(c.url, token, mode) as client:
            assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            asked = structured(await client.call_tool("ask", {"prompt": "What causes tides?"}))
            structured(await client.call_tool("compare_models", {"prompt": "Name a prime.", "models": MODELS}))
            structured(await client.call_tool("list_models", {"limit": 1}))
            run = structured(await client.call_tool("deep_research", {"question": "Is fusion near?", "depth": 1}))
            got = [structured(await client.call_tool("get_research", {"research_id": run["research_id"]}))]
            got += [structured(await client.call_tool("get_research", {"research_id": run["research_id"]}))]
            bench = structured(
                await client.call_tool("benchmark_models", {"prompts": ["Is 17 prime?"], "models": MODELS})
            )
            structured(await client.call_tool("get_benchmark", {"benchmark_id": bench["benchmark_id"]}))
            fake_openrouter.release.clear()
            live = structured(await client.call_tool("deep_research", BEES))
            cancelled = structured(await client.call_tool("cancel_research", {"research_id": live["research_id"]}))
            live_bench = structured(
                await client.call_tool(
                    "benchmark_models", {"prompts": ["Is 7 prime?"], "models": MODELS, "background": True}
                )
            )
            stopped = structured(
                await client.call_tool("cancel_benchmark", {"benchmark_id": live_bench["benchmark_id"]})
            )
            fake_openrouter.release.set()
            usage = await client.read_resource("openrouter://usage")
            reports = await client.read_resource("research://reports")
            prompts = (await client.list_prompts()).prompts
            assert prompts
    assert asked["usage"]["cost_usd"] > 0 and run["status"] == "done"
    assert all(g["status"] == "done" and g["report"] == run["report"] for g in got)  # the same run from any replica
    assert cancelled["status"] == "cancelled" and stopped["status"] in ("cancelled", "done")
    assert json.loads(usage.contents[0].text)["today"]["calls"] >= 3
    assert run["research_id"] in reports.contents[0].text
    assert all(calls_served(r) > 0 for r in c.replicas), "the balancer sent every call to one replica"


async def _answer_questions(_context: Any, _params: Any) -> Any:
    from mcp.types import ElicitResult

    return ElicitResult(action="accept", content={"audience": "city planners", "focus": "costs", "timeframe": ""})


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_replicas_a_question_asked_mid_call_is_answered_on_any_replica(
    mode: str, fake_openrouter: FakeOpenRouter, tmp_path: Path, database: str
) -> None:
    """deep_research asks its clarifying questions before it plans: over 2026-07-28 the answer comes back in a
    retried request that carries the sealed request state, and round-robin sends it to the other replica, which
    opens it with the shared key. A classic session served statelessly cannot be asked, and says so."""
    fake_openrouter.structured_answers["research_plan"] = {"sub_questions": [{"question": "Q?", "rationale": "r"}]}
    with cluster(fake_openrouter, tmp_path, database, 2, balanced=True) as c:
        token = c.token("alice")
        for _ in range(4):  # whichever replica each request lands on
            async with _client(c.url, token, mode, elicitation_callback=_answer_questions) as client:
                asked = await client.call_tool(
                    "deep_research", {"question": "How do honeybees live?", "depth": 1, "clarify": True}
                )
            assert not asked.is_error, result_text(asked)
            report = asked.structured_content["report"]
            if mode == "auto":
                assert "Asked first: audience: city planners; focus: costs." in report
            else:  # a stateless classic session cannot be asked mid-call: the report says what it assumed instead
                assert "Assumed (no one could be asked)" in report


@contextlib.asynccontextmanager
async def _client(url: str, token: str, mode: str, **options: Any) -> Any:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, **options) as client:
            yield client


async def test_replicas_a_run_started_on_one_is_polled_on_another_and_cancelled_on_a_third(
    fake_openrouter: FakeOpenRouter, tmp_path: Path, database: str
) -> None:
    fake = fake_openrouter
    fake.structured_answers["research_plan"] = PLAN
    with cluster(fake, tmp_path, database, 3) as c:
        token = c.token("alice")
        a, b, third = c.replicas
        fake.release.clear()
        async with a.client(token) as on_a, b.client(token) as on_b, third.client(token) as on_c:
            started = structured(await on_a.call_tool("deep_research", BEES))
            job = started["research_id"]
            polled = structured(await on_b.call_tool("get_research", {"research_id": job}))
            assert polled["status"] == "running"
            cancelled = structured(await on_c.call_tool("cancel_research", {"research_id": job}))
            fake.release.set()
            seen_on_a = structured(await on_a.call_tool("get_research", {"research_id": job}))
    assert cancelled["status"] == "cancelled" and cancelled["report"]  # A stopped it: the partial report came back
    assert seen_on_a["status"] == "cancelled"


async def test_replicas_a_killed_replicas_run_is_taken_over_and_finished_without_paying_twice(
    fake_openrouter: FakeOpenRouter, tmp_path: Path, database: str
) -> None:
    fake = fake_openrouter
    _plan_without_gaps(fake)
    with cluster(fake, tmp_path, database, 2, OPENROUTER_RESEARCH_CONCURRENCY="1") as c:
        token = c.token("alice")
        a, b = c.replicas
        job = await _held_after_one_researcher(fake, a, token)  # A dies between two paid steps
        async with b.client(token) as on_b:
            await _eventually(on_b, job, lambda d: bool(d["sources"]), "B seeing A's saved progress")
            paid_before, billed_before = set(researched(fake)), list(fake.billed)
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(timeout=10)
            fake.release.set()
            done = await _eventually(on_b, job, lambda d: d["status"] == "done", "B taking over and finishing")
    everything = _each_researched_once(fake)
    assert done["research_id"] == job and len(paid_before) == 1
    assert not set(everything[len(paid_before) :]) & paid_before  # nothing A was paid for is asked again
    assert fake.billed[: len(billed_before)] == billed_before
    assert "took over research " + job in b.stderr


async def test_replicas_a_replica_stopped_with_sigterm_hands_its_run_over_at_once(
    fake_openrouter: FakeOpenRouter, tmp_path: Path, database: str
) -> None:
    fake = fake_openrouter
    _plan_without_gaps(fake)
    with cluster(fake, tmp_path, database, 2, OPENROUTER_RESEARCH_CONCURRENCY="1") as c:
        token = c.token("alice")
        a, b = c.replicas
        job = await _held_after_one_researcher(fake, a, token)
        a.proc.send_signal(signal.SIGTERM)  # a rolling restart: A saves the run and lets go of it
        a.proc.wait(timeout=60)
        fake.release.set()
        async with b.client(token) as on_b:
            done = await _eventually(on_b, job, lambda d: d["status"] == "done", "B taking the run over")
    _each_researched_once(fake)
    assert done["report"] and "took over research " + job in b.stderr


def _plan_without_gaps(fake: FakeOpenRouter) -> None:
    fake.structured_answers["research_plan"] = PLAN
    fake.structured_answers["research_gaps"] = {"gaps": [], "follow_up_questions": []}


async def _held_after_one_researcher(fake: FakeOpenRouter, replica: HttpServer, token: str) -> str:
    """Start a background run on `replica`, let its planning and one researcher through, hold the rest; its id."""
    fake.release.clear()
    async with replica.client(token) as client:
        job = str(structured(await client.call_tool("deep_research", BEES))["research_id"])
    fake.pass_only(2)
    wait_until(lambda: len(researched(fake)) >= 1, timeout=30, what="a first researcher answered")
    return job


def _each_researched_once(fake: FakeOpenRouter) -> list[str]:
    """Every sub-question researched, each once (so paid once), whichever replica asked; the order they were."""
    everything = researched(fake)
    assert sorted(everything) == sorted(set(everything)) and len(everything) == len(PLAN["sub_questions"])
    return everything


async def _eventually(client: Any, job: str, test: Any, what: str, timeout: float = 90) -> dict[str, Any]:
    async def poll() -> dict[str, Any] | None:
        data = structured(await client.call_tool("get_research", {"research_id": job}))
        return data if test(data) else None

    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await poll()) is None:
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return found


async def test_replicas_postgres_restarted_mid_run_loses_nothing(
    fake_openrouter: FakeOpenRouter, tmp_path: Path, database: str, pg_server: Postgres
) -> None:
    fake = fake_openrouter
    _plan_without_gaps(fake)
    with cluster(fake, tmp_path, database, 1, OPENROUTER_RESEARCH_CONCURRENCY="1") as c:
        token = c.token("alice")
        (a,) = c.replicas
        job = await _held_after_one_researcher(fake, a, token)
        async with a.client(token) as on_a:
            pg_server.stop()
            asked = await on_a.call_tool("list_models", {"limit": 1})  # needs no database: still served
            pg_server.start()
            fake.release.set()
            done = await _eventually(on_a, job, lambda d: d["status"] == "done", "the run finishing")
    assert not asked.is_error, result_text(asked)
    _each_researched_once(fake)
    assert done["report"]


async def test_replicas_racing_one_callers_quota_never_pass_it(
    fake_openrouter: FakeOpenRouter, tmp_path: Path, database: str
) -> None:
    """Each call really costs $0.0001 (under its worst case, which is held): the quota pays for 20 at most,
    however the 50 calls on two replicas interleave, so some are always refused, and none is billed past it."""
    fake_openrouter.usage_patch = {"cost": 0.0001}  # (the fake's own price would let 50 in a row fit in $0.002)
    quota = 0.002
    with cluster(fake_openrouter, tmp_path, database, 2) as c:
        token = c.token("carol", "--usd-per-day", str(quota))
        async with c.replicas[0].client(token) as one, c.replicas[1].client(token) as two:
            calls = [
                client.call_tool("ask", {"prompt": f"Question {i}?", "model": "openai/gpt-4o-mini", "max_tokens": 200})
                for i in range(25)
                for client in (one, two)
            ]
            results = await asyncio.gather(*calls)
    answered = [r for r in results if not r.is_error]
    refused = [result_text(r) for r in results if r.is_error]
    billed = sum(cost for _id, cost in fake_openrouter.billed)
    assert 0 < len(answered) <= 20 and len(refused) >= 30 and billed <= quota + 1e-12, billed
    assert all("more than is left of your daily quota" in text for text in refused), refused[0]


def test_replicas_migrate_applies_once_and_says_what_it_did(
    fake_openrouter: FakeOpenRouter, tmp_path: Path, pg_url: str
) -> None:
    env = env_for(fake_openrouter, tmp_path, OPENROUTER_DATABASE_URL=pg_url.replace("mcp@", "mcp:hunter2@"))
    first, second = cli(env, "migrate"), cli(env, "migrate")
    assert first.returncode == 0 and "applied migrations 1, 2" in first.stdout, first.stderr
    assert second.returncode == 0 and "already up to date" in second.stdout
    assert "hunter2" not in first.stdout + first.stderr + second.stdout + second.stderr
    unset = cli(env_for(fake_openrouter, tmp_path), "migrate")
    assert unset.returncode == 2 and "OPENROUTER_DATABASE_URL is not set" in unset.stderr
