"""Bench sections for the server's own CPU per call and for a team server under load. Used by `bench/run.py`;
each alone: `.venv/bin/python -m bench.remote [upstream] [stdio] [http] [load]`.

CPU is the server process's own (all its threads' run time from /proc/PID/task/*/schedstat) over 500 sequential `ask`
calls, after 20 to warm up, from a bare JSON-RPC client (so the client's work is not counted, and the server's is
all counted: parsing, tools, the upstream call, the wire). Over HTTP each call carries a bearer token, verified
against the accounts database as on a real team server. The load test starts 200 callers at once, each with its
own token and its own connection, at 50 ms upstream latency, and reports the latency percentiles of their calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes import FAKE_KEY  # noqa: E402 - after the path is set
from tests.fakes.openrouter import FakeOpenRouter  # noqa: E402

from bench.sections import Bench  # noqa: E402
from openrouter_research_mcp.jobs.accounts import ACCOUNTS_FILE, Accounts  # noqa: E402

CALLS = 500
BLOCKS = 5
WARMUP = 20
CALLERS = 200
ASK = {"name": "ask", "arguments": {"prompt": "Say hi."}}


def cpu_seconds(pid: int) -> float:
    """CPU time of process `pid` so far, all its threads: the sum of their `sum_exec_runtime` in
    /proc/PID/task/*/schedstat, in nanoseconds (utime + stime in /proc/PID/stat count 10 ms ticks, which over a
    block of 100 calls round each figure to 0.1 ms). The server's threads live as long as it does."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended just now
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def reference_ms() -> float:
    """A fixed pure-Python workload's CPU time in this process: how fast this machine runs now (on a shared VM it
    drifts by half within a minute, so a CPU figure is read beside the reference measured in the same run)."""
    started, total = time.process_time(), 0
    for i in range(1_000_000):
        total += i * i
    return (time.process_time() - started) * 1000


def ticks_seconds(pid: int) -> float:
    """utime + stime of process `pid` from /proc/PID/stat (the kernel's tick-sampled figure)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def per_call_ms(pid: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Server CPU per call: the median of BLOCKS blocks of CALLS / BLOCKS sequential calls (a block that a noisy
    neighbour slowed does not move the median), and utime + stime per call over all CALLS, for comparison."""
    blocks, ticks = [], ticks_seconds(pid)
    for _ in range(BLOCKS):
        before = cpu_seconds(pid)
        for _ in range(CALLS // BLOCKS):
            await call()
        blocks.append((cpu_seconds(pid) - before) / (CALLS // BLOCKS) * 1000)
    return statistics.median(blocks), (ticks_seconds(pid) - ticks) / CALLS * 1000


def cpu_note(ticks: float) -> str:
    return (
        f"median of {BLOCKS} blocks of {CALLS // BLOCKS} sequential calls, the server's CPU time from schedstat; "
        f"utime+stime over all {CALLS}: {ticks:.2f} ms; machine reference {reference_ms():.0f} ms"
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stdio:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "openrouter_research_mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            bufsize=1,
        )
        self.next_id = 0
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "0"}}
        self.call("initialize", hello)
        assert self.proc.stdin
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.next_id += 1
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}))
        self.proc.stdin.write("\n")
        while True:
            message: dict[str, Any] = json.loads(self.proc.stdout.readline())
            if message.get("id") == self.next_id:
                assert "result" in message and not message["result"].get("isError"), message
                return message

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Http:
    """A team server on loopback with `tokens` bearer tokens, and a bare JSON-RPC client for it."""

    def __init__(self, env: dict[str, str], tokens: int) -> None:
        self.port = _free_port()
        self.env = {**env, "OPENROUTER_MCP_AUTH": "tokens", "OPENROUTER_MCP_TRANSPORT": "http"}
        self.env["OPENROUTER_DATA_DIR"] = f"{env['OPENROUTER_DATA_DIR']}-http-{self.port}"  # its own tokens, jobs
        self.tokens = [self._token("user0")] + self._more_tokens(tokens - 1)
        self.env["OPENROUTER_MCP_PORT"] = str(self.port)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "openrouter_research_mcp"], env=self.env, stderr=subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and self.proc.poll() is None, "the HTTP server did not start"
            time.sleep(0.05)

    def _token(self, name: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "openrouter_research_mcp", "token", "add", name],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def _more_tokens(self, count: int) -> list[str]:
        """Tokens made through the accounts database at once (the first, through the command, checks the way)."""
        accounts = Accounts(Path(self.env["OPENROUTER_DATA_DIR"]) / ACCOUNTS_FILE)
        try:
            return [accounts.add_token(f"user{i}") for i in range(1, count + 1)]
        finally:
            accounts.close()

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


class Session:
    """One caller over Streamable HTTP: the 2026-07-28 generation (stateless, each request carries its protocol
    version and client in `_meta`, answers are JSON) or a classic session (initialize, then calls with its session
    id, answers as server-sent events)."""

    def __init__(self, url: str, token: str, http: httpx.AsyncClient, generation: str = "2026-07-28") -> None:
        self.url, self.http, self.next_id, self.generation = url, http, 0, generation
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": generation,
        }
        self.meta = {
            "io.modelcontextprotocol/protocolVersion": generation,
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }

    async def open(self) -> None:
        if self.generation == "2026-07-28":
            await self.call("server/discover", {})
            return
        hello = {"protocolVersion": self.generation, "capabilities": {}, "clientInfo": {"name": "b", "version": "0"}}
        response = await self._post("initialize", hello)
        self.headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
        await self.http.post(
            self.url, headers=self.headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )

    async def _post(self, method: str, params: dict[str, Any]) -> httpx.Response:
        self.next_id += 1
        headers = self.headers
        if self.generation == "2026-07-28":
            params = {**params, "_meta": self.meta}
            headers = {**headers, "Mcp-Method": method, **({"Mcp-Name": params["name"]} if "name" in params else {})}
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        response = await self.http.post(self.url, headers=headers, json=body)
        assert response.status_code == 200, (response.status_code, response.text[:300])
        return response

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        response = await self._post(method, params)
        text = response.text
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            datas = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
            answers = [json.loads(d) for d in datas if d]
            message = next(a for a in answers if a.get("id") == self.next_id)
        else:
            message = json.loads(text)
        assert "result" in message and not message["result"].get("isError"), message
        return dict(message)


def cpu_per_ask_stdio(bench: Bench) -> None:
    bench.fake.latency = 0.0
    client = Stdio(bench.env("cpu-stdio"))
    try:
        for _ in range(WARMUP):
            client.call("tools/call", ASK)

        async def one() -> None:
            client.call("tools/call", ASK)

        per_call, ticks = asyncio.run(per_call_ms(client.proc.pid, one))
    finally:
        client.close()
    bench.row(
        "server CPU per ask over stdio",
        round(per_call, 2),
        "ms",
        None,
        "≤ 1.5 ms",
        per_call <= 1.5,
        cpu_note(ticks),
    )


async def _cpu_per_ask_http(bench: Bench, generation: str) -> tuple[float, float]:
    server = Http(bench.env("cpu-http"), tokens=1)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            session = Session(server.url, server.tokens[0], http, generation)
            await session.open()
            for _ in range(WARMUP):
                await session.call("tools/call", ASK)
            return await per_call_ms(server.proc.pid, lambda: session.call("tools/call", ASK))
    finally:
        server.close()


async def cpu_per_ask_http(bench: Bench) -> None:
    bench.fake.latency = 0.0
    for generation, how in (("2026-07-28", "stateless, JSON answers"), ("2025-11-25", "a session, SSE answers")):
        per_call, ticks = await _cpu_per_ask_http(bench, generation)
        bench.row(
            f"server CPU per ask over HTTP, {generation}",
            round(per_call, 2),
            "ms",
            None,
            "≤ 2.0 ms",
            per_call <= 2.0,
            f"{how}; each call's bearer token verified; {cpu_note(ticks)}",
        )


class OwnFake:
    """The fake OpenRouter in a process of its own: under 200 callers, one in the bench's process would share its
    GIL with the callers and measure the bench, not the server."""

    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.openrouter", "--latency", str(latency)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)


async def concurrent_asks(
    url: str, tokens: list[str], gauge: Callable[[], float] = lambda: 0.0
) -> tuple[list[float], int, float, float]:
    """Each token's caller opens a 2026-07-28 session on its own connection, then all make one `ask` at once
    (after 64 untimed ones: the catalog loads and the upstream pool opens, as on a server that has been up a
    while). Returns each call's latency, how many failed, the wall time, and how much `gauge` (the server's CPU,
    the database's busy time) moved while they ran."""
    clients = [httpx.AsyncClient(timeout=120) for _ in tokens]  # one per caller: httpx's pool scans every
    try:  # connection it holds on each request, so one client for all would measure the bench
        sessions = [Session(url, token, http) for token, http in zip(tokens, clients, strict=True)]
        await asyncio.gather(*(s.open() for s in sessions))
        await asyncio.gather(*(s.call("tools/call", ASK) for s in sessions[:64]))
        failures = 0

        async def one(session: Session) -> float:
            nonlocal failures
            started = time.perf_counter()
            try:
                await session.call("tools/call", ASK)
            except Exception:  # a failure is counted, and the row says so
                failures += 1
            return time.perf_counter() - started

        before, wall = gauge(), time.perf_counter()
        times = await asyncio.gather(*(one(s) for s in sessions))
        return list(times), failures, time.perf_counter() - wall, gauge() - before
    finally:
        for http in clients:
            await http.aclose()


async def http_load(bench: Bench) -> None:
    fake = OwnFake(latency=0.05)
    server = Http({**bench.env("load"), "OPENROUTER_BASE_URL": fake.base_url}, tokens=CALLERS)
    try:
        times, failures, wall, cpu = await concurrent_asks(
            server.url, server.tokens, lambda: cpu_seconds(server.proc.pid)
        )
    finally:
        server.close()
        fake.close()
    p50, p95, p99 = pct(times, 0.5), pct(times, 0.95), pct(times, 0.99)
    bench.row(
        f"{CALLERS} concurrent callers over HTTP at 50 ms upstream latency, p50",
        round(p50, 3),
        "s",
        0.05,
        "p50 ≤ 0.4 s, no failure",
        p50 <= 0.4 and failures == 0,
        f"p95 {p95:.3f} s, p99 {p99:.3f} s, {failures} failed; {CALLERS / wall:.0f} calls/s in all, "
        f"{CALLERS / cpu if cpu else 0:.0f} calls per CPU-second of the server (one core's worth); each caller "
        "its own token and connection, the fake OpenRouter in a process of its own",
    )


async def _post_cpu_ms(transport: httpx.AsyncBaseTransport, url: str, calls: int = 2000) -> float:
    """CPU of this process per chat POST through `transport`, sent as the client sends it (a built request, straight
    to the transport) and read whole: the fake answers from a process of its own."""
    endpoint, body = httpx.URL(url), json.dumps({"model": "openai/gpt-4o-mini", "messages": []}).encode()
    headers = {"Authorization": f"Bearer {FAKE_KEY}", "Content-Type": "application/json"}

    async def once() -> None:
        request = httpx.Request("POST", endpoint, headers=headers, content=body)
        request.extensions["timeout"] = httpx.Timeout(30).as_dict()
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()

    try:
        for _ in range(WARMUP * 5):
            await once()
        started = time.process_time()
        for _ in range(calls):
            await once()
        return (time.process_time() - started) / calls * 1000
    finally:
        await transport.aclose()


async def upstream_post(bench: Bench) -> None:
    """The upstream transport against httpx's own (httpcore), on the same fake, in one run."""
    from openrouter_research_mcp.openrouter.pool import Upstream

    fake = OwnFake(latency=0.0)
    try:
        url = fake.base_url.rstrip("/") + "/chat/completions"
        ours, httpcore = [], []
        for _ in range(3):  # alternately: a noisy neighbour slows both
            ours.append(await _post_cpu_ms(Upstream(), url))
            httpcore.append(await _post_cpu_ms(httpx.AsyncHTTPTransport(), url))
    finally:
        fake.close()
    bench.row(
        "CPU per upstream chat POST (openrouter/pool.py)",
        round(statistics.median(ours), 3),
        "ms",
        None,
        "",
        None,
        f"httpx's own transport (httpcore) {statistics.median(httpcore):.3f} ms in the same run; the bench's CPU "
        "per POST read whole, median of 3 alternating runs of 2000",
    )


class _Alone:
    """The bench's row printer and environment, for running these sections by themselves."""

    def __init__(self, fake: FakeOpenRouter, work: Path) -> None:
        self.fake, self.work, self.repeat = fake, work, 1
        self.rows: list[dict[str, Any]] = []

    def row(self, name: str, value: float, unit: str, floor: float | None = None, target: str = "",
            ok: bool | None = None, note: str = "") -> None:  # fmt: skip
        under = f", floor {floor} {unit}" if floor is not None else ""
        verdict = "" if ok is None else f" (target {target}: {'met' if ok else 'NOT met'})"
        print(f"{name}: {value} {unit}{under}{verdict} {note}")

    def env(self, cache: str) -> dict[str, str]:
        return {
            **os.environ,
            "OPENROUTER_API_KEY": FAKE_KEY,
            "OPENROUTER_BASE_URL": self.fake.base_url,
            "OPENROUTER_CACHE_DIR": str(self.work / cache),
            "OPENROUTER_DATA_DIR": str(self.work / "data"),
            "OPENROUTER_LOG_LEVEL": "WARNING",
        }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, FakeOpenRouter() as fake:
        alone = _Alone(fake, Path(tmp))
        which = sys.argv[1:] or ["upstream", "stdio", "http", "load"]
        if "upstream" in which:
            asyncio.run(upstream_post(alone))  # type: ignore[arg-type]
        if "stdio" in which:
            cpu_per_ask_stdio(alone)  # type: ignore[arg-type]
        if "http" in which:
            asyncio.run(cpu_per_ask_http(alone))  # type: ignore[arg-type]
        if "load" in which:
            asyncio.run(http_load(alone))  # type: ignore[arg-type]
