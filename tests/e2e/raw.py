"""The installed server driven line by line over its real stdin and stdout, for what an SDK client cannot send:
malformed JSON-RPC, signals, and exact timings."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ..fakes import FAKE_KEY

HANDSHAKE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}}


class Lines:
    """A pipe's lines, read by a daemon thread into a queue, so waiting for the next one has a timeout. (Waiting
    with `select` on the pipe misses lines already read into the file object's buffer, when two arrive at once.)"""

    def __init__(self, stream: Any) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream: Any) -> None:
        try:
            for line in stream:
                self.queue.put(line)
        except (OSError, ValueError):  # closed under the reader
            pass
        self.queue.put(None)

    def next(self, seconds: float) -> Any:
        """The next line, or None when the pipe closed; raises queue.Empty when none came within `seconds`."""
        return self.queue.get(timeout=seconds)


class RawServer:
    """`python -m openrouter_research_mcp` as a subprocess with pipes; stderr is collected in a file."""

    def __init__(self, tmp_path: Path, stderr_name: str = "server-stderr.log", **env: str) -> None:
        self.tmp_path = tmp_path
        base = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
        base.update(
            {
                "OPENROUTER_API_KEY": FAKE_KEY,
                "OPENROUTER_CACHE_DIR": str(tmp_path / "cache"),
                "OPENROUTER_DATA_DIR": str(tmp_path / "data"),
                "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1",
                "OPENROUTER_LOG_LEVEL": "INFO",
                **env,
            }
        )
        self.env = base
        self.stderr_path = tmp_path / stderr_name
        self.proc: subprocess.Popen[bytes] | None = None
        self.ids = 100

    def __enter__(self) -> RawServer:
        self.stderr_file = self.stderr_path.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "openrouter_research_mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            cwd=self.tmp_path,
            env=self.env,
        )
        self.lines = Lines(self.proc.stdout)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
        self.stderr_file.close()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def send(self, data: bytes | str | dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        raw = json.dumps(data).encode() if isinstance(data, dict) else data.encode() if isinstance(data, str) else data
        self.proc.stdin.write(raw if raw.endswith(b"\n") else raw + b"\n")
        self.proc.stdin.flush()

    def read(self, seconds: float = 20) -> dict[str, Any]:
        """The next message on stdout (every line must be one JSON-RPC message)."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            line = self.lines.next(seconds)
        except queue.Empty:
            nothing = f"the server sent nothing within {seconds} s; stderr:\n{self.stderr[-3000:]}"
            raise AssertionError(nothing) from None
        assert line, f"the server closed stdout; stderr:\n{self.stderr[-3000:]}"
        message: dict[str, Any] = json.loads(line)
        assert message.get("jsonrpc") == "2.0", line
        return message

    def request(self, method: str, params: dict[str, Any] | None = None, seconds: float = 30) -> dict[str, Any]:
        """Send a request and return its response (notifications that arrive first are skipped)."""
        self.ids += 1
        self.send({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params or {}})
        while True:
            message = self.read(seconds)
            if message.get("id") == self.ids:
                return message

    def initialize(self) -> dict[str, Any]:
        response = self.request("initialize", HANDSHAKE)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return response

    def call(self, tool: str, arguments: dict[str, Any], seconds: float = 60) -> dict[str, Any]:
        result: dict[str, Any] = self.request("tools/call", {"name": tool, "arguments": arguments}, seconds)["result"]
        return result

    def start_call(self, tool: str, arguments: dict[str, Any]) -> int:
        """Send a tools/call without waiting for its answer; returns its request id."""
        self.ids += 1
        self.send(
            {"jsonrpc": "2.0", "id": self.ids, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        )
        return self.ids

    def cancel(self, request_id: int) -> None:
        self.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}})

    def signal(self, signum: signal.Signals) -> float:
        """Send `signum` and wait for the exit; returns the seconds it took."""
        assert self.proc is not None
        sent = time.monotonic()
        self.proc.send_signal(signum)
        self.proc.wait(timeout=10)
        return time.monotonic() - sent

    def close_stdin(self) -> int:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=30)
