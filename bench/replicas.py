"""Bench section: several replicas over one PostgreSQL behind nginx, all real and on this machine. Used by
`bench/run.py`; alone: `.venv/bin/python -m bench.replicas [1 2 3]`.

For 1, 2 and 3 replicas: 500 callers at once (each with its own bearer token, its own connection, the 2026-07-28
generation) each make one `ask` through nginx, at 50 ms upstream latency (the fake OpenRouter in a process of its
own). Reported: p50/p95/p99, calls per second, failures, and the database's share: the time PostgreSQL spent
executing statements for these calls (`pg_stat_database.active_time`), per call. On 2 cores the replicas, nginx,
PostgreSQL, the fake and the 500 callers share the machine, so CPU-bound scaling stops at 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes import FAKE_KEY  # noqa: E402 - after the path is set
from tests.services import Postgres, nginx, postgres  # noqa: E402

from bench.remote import OwnFake, _free_port, concurrent_asks, pct  # noqa: E402
from openrouter_research_mcp.jobs.accounts import Accounts  # noqa: E402

CALLERS = 500


def _active_ms(pg: Postgres, database: str) -> float:
    import psycopg

    with psycopg.connect(pg.url()) as conn:
        row = conn.execute("SELECT active_time FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


@contextlib.contextmanager
def _replicas(count: int, url: str, fake_url: str, work: Path) -> Iterator[tuple[str, list[Any]]]:
    import subprocess

    front = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")},
        "OPENROUTER_API_KEY": FAKE_KEY,
        "OPENROUTER_BASE_URL": fake_url,
        "OPENROUTER_DATABASE_URL": url,
        "OPENROUTER_MCP_AUTH": "tokens",
        "OPENROUTER_MCP_TRANSPORT": "http",
        "OPENROUTER_MCP_STATE_KEYS": "b" * 43,
        "OPENROUTER_MCP_PUBLIC_URL": f"http://127.0.0.1:{front}/mcp",
        "OPENROUTER_LOG_LEVEL": "WARNING",
    }
    procs, ports = [], []
    try:
        for i in range(count):
            port = _free_port()
            replica_env = {
                **env,
                "OPENROUTER_MCP_PORT": str(port),
                "OPENROUTER_DATA_DIR": str(work / f"data-{i}"),
                "OPENROUTER_CACHE_DIR": str(work / f"cache-{i}"),
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "openrouter_research_mcp"], env=replica_env, stderr=subprocess.DEVNULL
                )
            )
            ports.append(port)
        deadline = time.monotonic() + 60
        for port in ports:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "a replica did not start"
                time.sleep(0.05)
        with nginx([f"127.0.0.1:{p}" for p in ports], port=front) as base:
            yield f"{base}/mcp", procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def replica_load(bench: Any, counts: tuple[int, ...] = (1, 2, 3)) -> None:
    fake = OwnFake(latency=0.05)
    try:
        with postgres() as pg, tempfile.TemporaryDirectory() as tmp:
            for count in counts:
                url = pg.database()
                name = url.rsplit("/", 1)[1]
                accounts = Accounts(Path(tmp) / "unused.db", url=url)
                tokens = [accounts.add_token(f"user{i}") for i in range(CALLERS)]
                accounts.close()
                with _replicas(count, url, fake.base_url, Path(tmp) / f"r{count}") as (front, _procs):
                    times, failures, wall, busy = asyncio.run(
                        concurrent_asks(front, tokens, functools.partial(_active_ms, pg, name))
                    )
                    db_ms = busy / CALLERS
                p50, p95, p99 = pct(times, 0.5), pct(times, 0.95), pct(times, 0.99)
                bench.row(
                    f"{CALLERS} concurrent callers through nginx, {count} replica{'s' if count > 1 else ''}, p50",
                    round(p50, 3),
                    "s",
                    0.05,
                    "no failure",
                    failures == 0,
                    f"p95 {p95:.3f} s, p99 {p99:.3f} s, {failures} failed, {CALLERS / wall:.0f} calls/s; PostgreSQL "
                    f"busy {db_ms:.2f} ms per call ({db_ms / (wall * 1000 / CALLERS):.0%} of the wall time per call); "
                    "2 cores shared by the replicas, nginx, PostgreSQL, the fake and the callers",
                )
    except LookupError as exc:  # PostgreSQL or nginx not installed
        bench.row("replicas through nginx", 0, "s", None, "no failure", None, f"not measured: {exc}")
    finally:
        fake.close()


if __name__ == "__main__":
    from tests.fakes.openrouter import FakeOpenRouter

    from bench.remote import _Alone

    with tempfile.TemporaryDirectory() as tmp, FakeOpenRouter() as fake:
        counts = tuple(int(a) for a in sys.argv[1:]) or (1, 2, 3)
        replica_load(_Alone(fake, Path(tmp)), counts)
