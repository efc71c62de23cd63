"""The real server as a subprocess: it handshakes over stdio, writes nothing but JSON-RPC to stdout, logs to stderr
without the key, and exits cleanly when stdin closes."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter
from .raw import Lines


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env.update(
        {"OPENROUTER_CACHE_DIR": str(tmp_path / "cache"), "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1", **extra}
    )
    return env


def rpc(id_: int, method: str, params: dict[str, object] | None = None) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}})


def read_message(lines: Lines, seconds: float = 30) -> dict[str, Any]:
    """The next stdout line as JSON, failing the test if none arrives in time or it is not JSON."""
    try:
        line = lines.next(seconds)
    except queue.Empty:
        raise AssertionError("the server sent nothing") from None
    assert line, "the server closed stdout"
    message: dict[str, Any] = json.loads(line)
    return message


def test_stdio_stdout_is_only_json_rpc_and_stdin_close_exits(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "openrouter_research_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=tmp_path,
        env=server_env(tmp_path, OPENROUTER_API_KEY=FAKE_KEY, OPENROUTER_LOG_LEVEL="DEBUG"),
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        lines = Lines(proc.stdout)
        try:
            proc.stdin.write(
                rpc(
                    1,
                    "initialize",
                    {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "raw-test", "version": "0"},
                    },
                )
                + "\n"
            )
            init = read_message(lines)
            proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
            proc.stdin.write(rpc(2, "tools/list") + "\n")
            tools = read_message(lines)
            proc.stdin.write(rpc(3, "ping") + "\n")
            ping = read_message(lines)
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0
            rest = "".join(iter(lambda: lines.next(30) or "", ""))
            stderr = proc.stderr.read()
        finally:
            if proc.poll() is None:  # a hung server must not hang the test run
                proc.kill()
    assert init["result"]["serverInfo"]["name"] == "openrouter-research-mcp"
    assert init["result"]["protocolVersion"] == "2025-11-25"
    assert tools["id"] == 2 and "tools" in tools["result"] and ping == {"jsonrpc": "2.0", "id": 3, "result": {}}
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in rest.splitlines() if line.strip())
    assert "ready" in stderr  # logging goes to stderr
    assert FAKE_KEY not in stderr and FAKE_KEY not in rest


def test_stdio_bad_configuration_stops_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openrouter_research_mcp"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(tmp_path, OPENROUTER_TIMEOUT="soon"),
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "openrouter-research-mcp: configuration error: OPENROUTER_TIMEOUT: Input should be a valid number, "
        "unable to parse string as a number (got 'soon')"
    ]


MODERN = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "script", "version": "1"},
}


def test_stdio_requests_sent_just_before_stdin_closes_are_answered(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    """A script that writes its requests and closes stdin (`... | openrouter-research-mcp`) gets every answer, in
    both protocol generations; the 2026 one used to be cut off with "Connection closed"."""
    fake_openrouter.latency = 0.5
    modern = [
        rpc(1, "prompts/get", {"_meta": MODERN, "name": "pick_model", "arguments": {"task": "t"}}),
        rpc(2, "tools/call", {"_meta": MODERN, "name": "ask", "arguments": {"prompt": "Hi"}}),
    ]
    legacy = [
        rpc(
            1,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "s", "version": "1"}},
        ),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        rpc(2, "tools/call", {"name": "ask", "arguments": {"prompt": "Hi"}}),
    ]
    for lines in (modern, legacy):
        done = subprocess.run(
            [sys.executable, "-m", "openrouter_research_mcp"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            env=server_env(tmp_path, OPENROUTER_API_KEY=FAKE_KEY, OPENROUTER_BASE_URL=fake_openrouter.base_url),
            cwd=tmp_path,
        )
        answers = {m["id"]: m for m in map(json.loads, done.stdout.splitlines())}
        assert done.returncode == 0 and set(answers) >= {1, 2}, done.stdout + done.stderr[-2000:]
        assert "error" not in answers[2] and answers[2]["result"]["structuredContent"]["answer"].startswith("[openai")
