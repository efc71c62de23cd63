"""The real server over Streamable HTTP on loopback, against the fake OpenRouter: both protocol generations through
the SDK's `streamable_http_client`, bearer tokens (added, refused, revoked), one caller's work invisible to another,
quotas held under concurrency, DNS-rebinding and oversized requests refused, and a drain on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter
from ..support import eventually, result_text, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(fake: FakeOpenRouter, tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    base.update(
        {
            "OPENROUTER_API_KEY": FAKE_KEY,
            "OPENROUTER_BASE_URL": fake.base_url,
            "OPENROUTER_CACHE_DIR": str(tmp_path / "cache"),
            "OPENROUTER_DATA_DIR": str(tmp_path / "data"),
            "OPENROUTER_LOG_LEVEL": "INFO",
            **extra,
        }
    )
    return base


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openrouter_research_mcp", *args], env=env, capture_output=True, text=True, timeout=60
    )


class HttpServer:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @asynccontextmanager
    async def client(self, token: str | None = None, mode: str = "auto", **headers: str) -> AsyncIterator[Client]:
        """An SDK client over Streamable HTTP with `token` as its bearer token (and its HTTP client closed after)."""
        sent = dict(headers)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        async with create_mcp_http_client(headers=sent) as http:
            transport = streamable_http_client(self.url, http_client=http)
            async with Client(transport, mode=mode) as client:
                yield client

    @property
    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def http_server(env: dict[str, str], tmp_path: Path, **extra: str) -> Iterator[HttpServer]:
    port = free_port()
    log = tmp_path / f"http-{port}.log"
    full = {**env, "OPENROUTER_MCP_TRANSPORT": "http", "OPENROUTER_MCP_PORT": str(port), **extra}
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "openrouter_research_mcp"], env=full, stderr=err)
    server = HttpServer(proc, port, log)
    try:

        def alive() -> bool:
            assert proc.poll() is None, server.stderr
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(alive, timeout=60, what="the HTTP server answering /healthz")
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def team(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> Iterator[tuple[HttpServer, dict[str, str], dict[str, str]]]:
    env = env_for(fake_openrouter, tmp_path, OPENROUTER_MCP_AUTH="tokens")
    tokens = {}
    for name in ("alice", "bob"):
        made = cli(env, "token", "add", name)
        assert made.returncode == 0, made.stderr
        tokens[name] = made.stdout.strip()
        assert made.stdout.count("\n") == 1 and tokens[name] not in made.stderr  # the token alone, on stdout
    with http_server(env, tmp_path) as server:
        yield server, tokens, env


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_http_both_generations_ask_with_a_token(
    mode: str, team: tuple[HttpServer, dict[str, str], dict[str, str]], fake_openrouter: FakeOpenRouter
) -> None:
    server, tokens, _ = team
    async with server.client(tokens["alice"], mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        tools = {t.name for t in (await client.list_tools()).tools}
        asked = await client.call_tool("ask", {"prompt": "What causes tides?"})
        usage = await client.read_resource("openrouter://usage")
    assert {"ask", "compare_models", "deep_research", "benchmark_models"} <= tools
    assert not asked.is_error, result_text(asked)
    assert asked.structured_content is not None and asked.structured_content["usage"]["cost_usd"] > 0
    assert "token:alice" not in result_text(asked)
    assert fake_openrouter.chat_requests()[-1].headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert not fake_openrouter.chat_requests()[-1].body.get("stream")  # no progress asked: no stream to parse
    shown = usage.contents[0].text  # type: ignore[union-attr]
    assert json.loads(shown)["today"]["calls"] == 1 and tokens["alice"] not in shown  # alice's one call, no token


async def test_http_refuses_missing_wrong_and_revoked_tokens(
    team: tuple[HttpServer, dict[str, str], dict[str, str]],
) -> None:
    server, tokens, env = team
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx.AsyncClient() as http:
        missing = await http.post(server.url, json=body, headers=headers)
        wrong = await http.post(server.url, json=body, headers={**headers, "Authorization": "Bearer orm_nope"})
        huge = await http.post(server.url, json=body, headers={**headers, "Authorization": "Bearer " + "x" * 5000})
    for refused in (missing, wrong, huge):
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    async with server.client(tokens["bob"]) as client:
        assert not (await client.call_tool("list_models", {"limit": 1})).is_error
        revoked = cli(env, "token", "revoke", "bob")
        assert revoked.returncode == 0, revoked.stderr
        with pytest.raises(Exception):  # noqa: B017 - the transport's own error for a 401
            await client.call_tool("list_models", {"limit": 1})
    listed = cli(env, "token", "list")
    assert "alice" in listed.stdout and "bob" not in listed.stdout and tokens["alice"] not in listed.stdout
    assert tokens["bob"] not in server.stderr and tokens["alice"] not in server.stderr


async def test_http_one_callers_jobs_are_invisible_to_another(
    team: tuple[HttpServer, dict[str, str], dict[str, str]],
) -> None:
    server, tokens, _ = team
    args = {"prompts": ["Is 17 prime?"], "models": ["openai/gpt-4o-mini", "openai/gpt-4o"]}
    async with server.client(tokens["alice"]) as alice, server.client(tokens["bob"]) as bob:
        done = await alice.call_tool("benchmark_models", args)
        assert not done.is_error, result_text(done)
        job = (done.structured_content or {})["benchmark_id"]
        theirs = await bob.call_tool("get_benchmark", {"benchmark_id": job})
        nobody = await bob.call_tool("get_benchmark", {"benchmark_id": "20260101-000000-00000000"})
        cancel = await bob.call_tool("cancel_benchmark", {"benchmark_id": job})
        listing = await bob.read_resource("benchmark://reports")
        mine = await alice.read_resource("benchmark://reports")
    assert theirs.is_error and nobody.is_error and cancel.is_error
    assert result_text(theirs).replace(job, "ID") == result_text(nobody).replace("20260101-000000-00000000", "ID")
    assert job not in json.dumps(listing.model_dump()) and job in json.dumps(mine.model_dump())


async def test_http_daily_quota_holds_under_fifty_concurrent_calls(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    """Each call really costs $0.0001 (under its worst case, about $0.00012, which is held): the quota pays for 20
    at most, however the 50 interleave, so some are always refused, and the fake never bills past the quota."""
    env = env_for(fake_openrouter, tmp_path, OPENROUTER_MCP_AUTH="tokens")
    fake_openrouter.usage_patch = {"cost": 0.0001}  # (the fake's own price would let 50 in a row fit in $0.002)
    quota = 0.002
    made = cli(env, "token", "add", "carol", "--usd-per-day", str(quota))
    token = made.stdout.strip()
    with http_server(env, tmp_path) as server:
        async with server.client(token) as client:
            calls = [
                client.call_tool("ask", {"prompt": f"Question {i}?", "model": "openai/gpt-4o-mini", "max_tokens": 200})
                for i in range(50)
            ]
            results = await asyncio.gather(*calls)
    answered = [r for r in results if not r.is_error]
    refused = [result_text(r) for r in results if r.is_error]
    billed = sum(cost for _id, cost in fake_openrouter.billed)
    assert 0 < len(answered) <= 20 and len(refused) >= 30
    assert billed <= quota + 1e-12, billed
    assert all("more than is left of your daily quota" in text and "It resets at" in text for text in refused)
    assert all("of $0.002 used" in text for text in refused), refused[0]


async def test_http_calls_per_minute_are_counted(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    env = env_for(fake_openrouter, tmp_path, OPENROUTER_MCP_AUTH="tokens", OPENROUTER_QUOTA_CALLS_PER_MINUTE="2")
    token = cli(env, "token", "add", "dave").stdout.strip()
    with http_server(env, tmp_path) as server:
        async with server.client(token) as client:  # the window slides: 3 calls within 60 s, whenever they start
            results = [await client.call_tool("list_models", {"limit": 1}) for _ in range(3)]
    assert [r.is_error for r in results] == [False, False, True]
    assert "of your 2 calls in the last minute" in result_text(results[2]) and "Wait, or ask" in result_text(results[2])


async def test_http_one_caller_cannot_hold_every_classic_session(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    """A client that opens a classic session at every reconnect and never closes one: past
    OPENROUTER_MCP_SESSIONS_PER_CALLER its oldest idle session is closed, and nobody else's."""
    env = env_for(fake_openrouter, tmp_path, OPENROUTER_MCP_AUTH="tokens", OPENROUTER_MCP_SESSIONS_PER_CALLER="2")
    alice, bob = (cli(env, "token", "add", name).stdout.strip() for name in ("alice", "bob"))
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with http_server(env, tmp_path) as server:
        async with httpx.AsyncClient() as http:

            async def opened(token: str) -> str:
                answer = await http.post(server.url, json=init, headers={**accept, "Authorization": f"Bearer {token}"})
                assert answer.status_code == 200, answer.text
                return answer.headers["mcp-session-id"]

            async def ping(token: str, session: str) -> int:
                headers = {**accept, "Authorization": f"Bearer {token}", "mcp-session-id": session}
                body = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
                answer = await http.post(
                    server.url, json=body, headers={**headers, "mcp-protocol-version": "2025-11-25"}
                )
                return answer.status_code

            bobs = await opened(bob)
            alices = [await opened(alice) for _ in range(5)]
            assert [await ping(alice, s) for s in alices] == [404, 404, 404, 200, 200]
            assert await ping(bob, bobs) == 200
        async with server.client(alice, mode="legacy") as client:  # a new session still opens, and works
            assert not (await client.call_tool("list_models", {"limit": 1})).is_error


async def test_http_jobs_quota_counts_running_jobs_and_usage_shows_every_limit(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    env = env_for(fake_openrouter, tmp_path, OPENROUTER_MCP_AUTH="tokens", OPENROUTER_QUOTA_CALLS_PER_MINUTE="100")
    token = cli(env, "token", "add", "erin", "--jobs", "1", "--usd-per-day", "1").stdout.strip()
    args = {"prompts": ["Is 17 prime?"], "models": ["openai/gpt-4o-mini", "openai/gpt-4o"], "background": True}
    with http_server(env, tmp_path) as server:
        async with server.client(token) as client:
            fake_openrouter.release.clear()  # the first benchmark's calls wait: it stays running
            first = await client.call_tool("benchmark_models", args)
            assert not first.is_error, result_text(first)
            job = (first.structured_content or {})["benchmark_id"]
            second = await client.call_tool("benchmark_models", args)
            shown = json.loads((await client.read_resource("openrouter://usage")).contents[0].text)  # type: ignore[union-attr]
            fake_openrouter.release.set()

            async def ended() -> bool:
                got = await client.call_tool("get_benchmark", {"benchmark_id": job})
                return (got.structured_content or {}).get("status") == "done"

            await eventually(ended, timeout=60, interval=0.1, what="the first benchmark ending")
            third = await client.call_tool("benchmark_models", args)
    assert second.is_error and "You have 1 research and benchmark jobs running" in result_text(second)
    assert "as many as your quota allows at once (1)" in result_text(second) and "--jobs N" in result_text(second)
    assert not third.is_error, result_text(third)  # an ended job no longer counts
    quota = shown["quota"]
    assert quota["key"] == "operator" and quota["jobs"] == {"limit": 1, "running": 1}
    assert quota["usd_per_day"]["limit"] == 1 and quota["usd_per_day"]["resets_at"].endswith("00:00 UTC")
    assert 0 <= quota["usd_per_day"]["left"] <= 1 and quota["usd_per_month"] is None
    used = quota["calls_per_minute"]["used"]  # the two tool calls before it (a read is no call)
    assert quota["calls_per_minute"]["limit"] == 100 and used == 2 and quota["calls_per_minute"]["left"] == 98


async def test_http_metrics_and_json_call_logs(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    env = env_for(
        fake_openrouter,
        tmp_path,
        OPENROUTER_MCP_AUTH="tokens",
        OPENROUTER_LOG_FORMAT="json",
        OPENROUTER_MCP_PUBLIC_URL="https://research.example.com/mcp",
    )
    token = cli(env, "token", "add", "frank", "--usd-per-day", "0.0000001").stdout.strip()
    rich = cli(env, "token", "add", "grace").stdout.strip()
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with http_server(env, tmp_path) as server:
        async with httpx.AsyncClient() as http:
            await http.post(server.url, json=body, headers=headers)  # no token
            await http.post(server.url, json=body, headers={**headers, "Authorization": "Bearer orm_not-a-token"})
        async with server.client(rich) as client:
            asked = await client.call_tool("ask", {"prompt": "What causes tides?", "model": "openai/gpt-4o-mini"})
        async with server.client(token) as client:
            poor = await client.call_tool("ask", {"prompt": "What causes tides?", "model": "openai/gpt-4o-mini"})
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://127.0.0.1:{server.port}/metrics")
            proxied = await http.get(f"http://127.0.0.1:{server.port}/metrics", headers={"X-Forwarded-For": "1.2.3.4"})
            rebound = await http.get(f"http://127.0.0.1:{server.port}/metrics", headers={"Host": "evil.example"})
            # A proxy on this machine that adds no forwarding header, relaying the public name: refused all the same.
            public = await http.get(f"http://127.0.0.1:{server.port}/metrics", headers={"Host": "research.example.com"})
            real_ip = await http.get(f"http://127.0.0.1:{server.port}/metrics", headers={"X-Real-IP": "1.2.3.4"})
        log = server.stderr
    assert not asked.is_error and poor.is_error and "daily quota" in result_text(poor)
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert proxied.status_code == 404  # only scraped from this machine, never through the proxy
    assert rebound.status_code == 421  # nor by a web page's script on a name rebound to 127.0.0.1
    assert public.status_code == 421 and real_ip.status_code == 404
    shown = scraped.text
    for line in (
        'openrouter_mcp_tool_calls_total{outcome="ok",tool="ask"} 1.0',
        'openrouter_mcp_tool_calls_total{outcome="refused",tool="ask"} 1.0',
        'openrouter_mcp_quota_refusals_total{limit="usd_per_day"} 1.0',
        'openrouter_mcp_auth_failures_total{reason="missing"} 1.0',
        'openrouter_mcp_auth_failures_total{reason="unknown_token"} 1.0',
        'openrouter_mcp_upstream_responses_total{status="200"}',
        'openrouter_mcp_tool_call_duration_seconds_count{tool="ask"} 2.0',
        'openrouter_mcp_cost_usd_total{model="openai/gpt-4o-mini"}',
        'openrouter_mcp_tokens_total{kind="completion",model="openai/gpt-4o-mini"}',
    ):
        assert line in shown, (line, shown)
    assert "frank" not in shown and "grace" not in shown and token not in shown
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is one JSON object
    calls = [line for line in lines if line["logger"] == "openrouter_research_mcp.calls"]
    assert [(c["caller"], c["tool"], c["outcome"]) for c in calls] == [
        ("token:grace", "ask", "ok"),
        ("token:frank", "ask", "refused"),
    ]
    assert calls[0]["cost_usd"] > 0 and calls[0]["duration_ms"] > 0 and calls[1]["refused_by"] == "usd_per_day"
    assert len({c["request_id"] for c in calls}) == 2 and all(c["key"] == "operator" for c in calls)
    assert token not in log and rich not in log and FAKE_KEY not in log


async def test_http_own_key_is_used_and_never_shown(
    team: tuple[HttpServer, dict[str, str], dict[str, str]], fake_openrouter: FakeOpenRouter
) -> None:
    server, tokens, _ = team
    own = "sk-or-v1-" + "b0b" * 20
    async with server.client(tokens["bob"], **{"X-OpenRouter-Key": own}) as client:
        result = await client.call_tool("ask", {"prompt": "Hi?"})
    assert fake_openrouter.chat_requests()[-1].headers["authorization"] == f"Bearer {own}"
    assert result.is_error and own not in result_text(result)  # the fake knows only the operator's key
    assert own not in server.stderr
    latin = "sk-or-v1-caf\u00e9".encode("latin-1")  # a byte no key of OpenRouter's has (httpx sends bytes as they are)
    async with server.client(tokens["bob"], **{"X-OpenRouter-Key": latin}) as client:  # type: ignore[arg-type]
        odd = await client.call_tool("list_models", {"limit": 1})  # no key of OpenRouter's: the operator's is used
    assert not odd.is_error, result_text(odd)


async def test_http_dns_rebinding_and_oversized_bodies_are_refused(
    team: tuple[HttpServer, dict[str, str], dict[str, str]],
) -> None:
    server, tokens, _ = team
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {tokens['alice']}",
    }
    async with httpx.AsyncClient() as http:
        rebound = await http.post(server.url, json=body, headers={**headers, "Host": "evil.example:80"})
        origin = await http.post(server.url, json=body, headers={**headers, "Origin": "http://evil.example"})
        big = await http.post(
            server.url,
            content=b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * (5 << 20) + b'"}}',
            headers=headers,
        )
    assert rebound.status_code == 421 and origin.status_code == 403 and big.status_code == 413
    async with server.client(tokens["alice"]) as client:  # and others are still served
        assert not (await client.call_tool("list_models", {"limit": 1})).is_error


async def test_http_clients_that_stall_never_hold_up_others(
    team: tuple[HttpServer, dict[str, str], dict[str, str]],
) -> None:
    """A hundred connections stall (headers half sent, bodies half sent); everyone else is served meanwhile. That
    the stalled ones are then cut off is `tests/unit/test_bounds.py`, on a clock the test steps."""
    server, tokens, _ = team
    stalled: list[socket.socket] = []
    try:
        for i in range(100):
            sock = socket.create_connection(("127.0.0.1", server.port))
            if i % 2:
                sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers, never finished
            else:
                sock.sendall(
                    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 1000\r\n"
                    b"Content-Type: application/json\r\nAuthorization: Bearer %s\r\n\r\n{"
                    % (server.port, tokens["alice"].encode())
                )  # a body, never finished
            stalled.append(sock)
        async with server.client(tokens["bob"]) as client:
            served = await asyncio.gather(*(client.call_tool("list_models", {"limit": 1}) for _ in range(10)))
    finally:
        for sock in stalled:
            sock.close()
    assert not any(r.is_error for r in served)


def test_http_refuses_to_serve_beyond_loopback_without_auth(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    env = env_for(fake_openrouter, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "openrouter_research_mcp", "serve", "--transport", "http", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        done.returncode == 2 and "needs authentication" in done.stderr and "OPENROUTER_MCP_AUTH=tokens" in done.stderr
    )


async def test_http_sigterm_answers_the_call_in_flight(
    team: tuple[HttpServer, dict[str, str], dict[str, str]], fake_openrouter: FakeOpenRouter
) -> None:
    server, tokens, _ = team
    async with server.client(tokens["alice"]) as client:
        await client.list_tools()  # as hosts do first (the SDK checks each result against the tool's schema)
        fake_openrouter.release.clear()
        call = asyncio.ensure_future(client.call_tool("ask", {"prompt": "Slow one?"}))
        await eventually(lambda: len(fake_openrouter.chat_requests()) >= 1, what="the call upstream")
        server.proc.send_signal(signal.SIGTERM)
        await eventually(lambda: "in flight first" in server.stderr, what="the drain starting")
        async with httpx.AsyncClient() as http:
            late = await http.post(server.url, json={}, headers={"Authorization": f"Bearer {tokens['alice']}"})
        fake_openrouter.release.set()
        result = await call
    assert late.status_code == 503
    assert not result.is_error, result_text(result)
    assert server.proc.wait(timeout=30) == 0
