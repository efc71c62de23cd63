"""Helpers every kind of test uses: reading a tool or resource result's text, and waiting for a condition."""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import io
import json
import os
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from mcp.types import TextResourceContents

from openrouter_research_mcp.benchmark.report import BenchmarkParams, BenchmarkReport
from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.openrouter.completion import Source
from openrouter_research_mcp.research.run import ResearchParams, ResearchRun, SpendLine
from openrouter_research_mcp.tools.state import CallState, open_state

from .fakes import FAKE_KEY
from .fakes.openrouter import FakeOpenRouter

__all__ = [
    "PROMPTLY",
    "cli_env",
    "pdf_bytes",
    "tool_state",
    "eventually",
    "model_facing_chars",
    "resource_text",
    "result_text",
    "saved_benchmark",
    "saved_run",
    "wait_until",
]

# Seconds that tell "promptly" from "waited out a timeout, a grace or a hang" (30 s and more) on any machine, loaded
# or not. Tests assert behaviour with it; how prompt the server really is is measured in bench/.
PROMPTLY = 10.0

# The tools every client should find: the tests' own expectation (not read from the server, so they can fail).
TOOLS = frozenset(
    {
        "ask",
        "compare_models",
        "list_models",
        "deep_research",
        "get_research",
        "cancel_research",
        "benchmark_models",
        "get_benchmark",
        "cancel_benchmark",
    }
)

T = TypeVar("T")


@asynccontextmanager
async def tool_state(
    fake: FakeOpenRouter, tmp_path: Path, cache: str = "cache", **overrides: Any
) -> AsyncIterator[CallState]:
    """What one tool call sees (the shared parts and the local caller) for a server talking to `fake`, its data
    under `tmp_path / "data"`; `overrides` are settings, `sleep` the client's retry pauses."""
    sleep = overrides.pop("sleep", asyncio.sleep)
    settings = load_settings(
        **{
            "api_key": FAKE_KEY,
            "base_url": fake.base_url,
            "cache_dir": str(tmp_path / cache),
            "data_dir": str(tmp_path / "data"),
            "max_retries": 0,
            **overrides,
        }
    )
    async with open_state(settings, sleep=sleep) as shared:
        yield shared.for_caller(shared.caller())


def cli_env(fake: FakeOpenRouter, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI or server subprocess: none of the caller's own OPENROUTER_ settings, the fake as
    OpenRouter, its cache and data in `tmp_path`, and `extra` (a variable given as "" is left unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env.update(
        {
            "OPENROUTER_BASE_URL": fake.base_url,
            "OPENROUTER_CACHE_DIR": str(tmp_path / "cache"),
            "OPENROUTER_DATA_DIR": str(tmp_path / "data"),
            **extra,
        }
    )
    return {k: v for k, v in env.items() if v}


def exchange_names(a: Path, b: Path) -> None:
    """Swap two names atomically (Linux renameat2 with RENAME_EXCHANGE), as an attacker racing the server would."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, str(a).encode(), at_fdcwd, str(b).encode(), rename_exchange) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` × `height` pixels, with (almost) no pixels behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def pdf_bytes(pages: int = 2) -> bytes:
    """A real PDF of `pages` blank pages (written by pypdf)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def result_text(result: Any) -> str:
    """The text content of a tool result (`CallToolResult`), joined."""
    return "\n".join(c.text for c in result.content if c.type == "text")


def saved_run(research_id: str, status: str = "done", cost: float = 0.0125) -> str:
    """A research run file's text as the previous release saved one (one JSON file per run, its own status
    vocabulary: `running`, `done`, `budget`, `time`, `cancelled`, `interrupted`, `failed`), with a report, two
    sources and a cost, for tests and benches of start-up and import."""
    params = ResearchParams(
        question=f"Question {research_id}?",
        max_cost_usd=0.5,
        planner_model="a/b",
        searcher_model="a/b",
        writer_model="a/b",
    )
    run = ResearchRun(
        research_id=research_id,
        params=params,
        report=f"# Report {research_id}\n\nA finding [1]. Another [2].",
        sources=[Source(n=1, url=f"https://a.test/{research_id}", title="A"), Source(n=2, url="https://b.test/")],
        spend=[SpendLine(stage="write", model="a/b", cost_usd=cost, calls=1)],
    )
    data = json.loads(run.model_dump_json())
    data["status"] = status
    data["stopped_because"] = None if status == "running" else status
    return json.dumps(data)


def saved_benchmark(benchmark_id: str, status: str = "done") -> str:
    """A benchmark file's text as the previous release saved one (`budget` was a status of its own then)."""
    params = BenchmarkParams(prompts=["Hi?"], models=["a/b", "c/d"])
    report = BenchmarkReport(benchmark_id=benchmark_id, params=params, status="done", tradeoffs="a/b is cheaper.")
    report.totals.cost_usd = 0.002
    data = json.loads(report.model_dump_json())
    data["status"] = status
    data.pop("stopped_because", None)
    return json.dumps(data)


def resource_text(result: Any) -> str:
    """The text of a one-item `resources/read` result."""
    [content] = result.contents
    assert isinstance(content, TextResourceContents)
    return content.text


async def eventually(
    probe: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.02, what: str = "the condition"
) -> Any:
    """Call `probe` (sync or async) until it returns something truthy, and return that; fail after `timeout` s."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < end, f"{what} was not reached within {timeout} s"
        await asyncio.sleep(interval)


def wait_until(
    probe: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.01, what: str = "the condition"
) -> T:
    """`eventually` for synchronous tests."""
    end = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < end, f"{what} was not reached within {timeout} s"
        time.sleep(interval)
    return value


def model_facing_chars(tools: Iterable[Any]) -> int:
    """What every host pays on every turn: each tool's name, title, description and input schema, as compact JSON."""
    return sum(
        len(
            json.dumps(
                {"name": t.name, "title": t.title, "description": t.description, "inputSchema": t.input_schema},
                separators=(",", ":"),
                ensure_ascii=False,
            )
        )
        for t in tools
    )


class CountingExecutor(ThreadPoolExecutor):
    """A database's one thread, counting the work handed to it (what the event loop did not do itself)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.handed = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.handed += 1
        return super().submit(fn, *args, **kwargs)
