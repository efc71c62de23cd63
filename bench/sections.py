"""Bench sections beyond speed: what the server costs a host in context, how well citations are checked, and how
start-up copes with many saved runs. Used by `bench/run.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

from mcp import Client, StdioServerParameters
from tests.fakes.citations import seeded_citations
from tests.fakes.openrouter import FakeOpenRouter
from tests.support import model_facing_chars, saved_run

from openrouter_research_mcp.research.quotes import QUOTE_MATCH, check_quotes

TOOL_CHARS_BUDGET = 10_000


class Bench(Protocol):
    work: Path
    repeat: int
    fake: FakeOpenRouter

    def row(
        self,
        name: str,
        value: float,
        unit: str,
        floor: float | None = None,
        target: str = "",
        ok: bool | None = None,
        note: str = "",
    ) -> None: ...

    def env(self, cache: str) -> dict[str, str]: ...

    def params(self, cache: str, **env: str) -> StdioServerParameters: ...


async def tool_definitions(bench: Bench, client: Client) -> None:
    tools = await client.list_tools()
    chars = model_facing_chars(tools.tools)
    bench.row(
        "tool definitions, model-facing (name, title, description, input schema)",
        chars,
        "characters",
        None,
        f"under {TOOL_CHARS_BUDGET:,}",
        chars < TOOL_CHARS_BUDGET,
        f"{len(tools.tools)} tools, about {chars / 4:.0f} tokens on every turn",
    )


async def view_sizes(bench: Bench, client: Client) -> None:
    """Each MCP Apps view as a host reads it: one self-contained document."""
    tools = (await client.list_tools()).tools
    uris = sorted({t.meta["ui"]["resourceUri"] for t in tools if t.meta and "ui" in t.meta})
    for uri in uris:
        contents = (await client.read_resource(uri)).contents[0]
        size = len(getattr(contents, "text", "").encode())
        bench.row(
            f"view {uri.rsplit('/', 1)[-1]} (self-contained HTML)",
            size / 1024,
            "KB",
            None,
            "under 150 KB",
            size < 150 * 1024,
            "inline script and style, no network",
        )


# ------------------------------------------------------------------------------------------- benchmark_models

BENCH_LATENCY = {"openai/gpt-4o-mini": 0.3, "google/gemini-2.5-flash": 0.1, "deepseek/deepseek-r1": 0.2}


async def benchmark_overhead(bench: Bench) -> None:
    """benchmark_models' own cost in time: 3 models x 2 prompts x 2 runs against fixed per-model latencies. With
    every call allowed at once the floor is the slowest model's call; at the default limit of 4 it is the total
    call time shared by 4 lanes (no schedule can beat it)."""
    bench.fake.model_latency.update(BENCH_LATENCY)
    args = {
        "prompts": ["Name a prime.", "Capital of France?"],
        "models": list(BENCH_LATENCY),
        "runs": 2,
        "objective": "speed",
    }
    calls = len(args["prompts"]) * len(BENCH_LATENCY) * 2
    for lanes, cache in ((calls, "bench-wide"), (4, "bench-default")):
        walls, reported = [], []
        async with Client(bench.params(cache, OPENROUTER_BENCHMARK_CONCURRENCY=str(lanes))) as client:
            await client.call_tool("list_models", {"limit": 1})  # the catalog is fetched once, outside the timing
            for _ in range(max(2, bench.repeat)):
                t = time.perf_counter()
                result = await client.call_tool("benchmark_models", args)
                walls.append(time.perf_counter() - t)
                data = result.structured_content or {}
                assert data.get("status") == "done" and data.get("calls") == calls, data
                reported.append(data["wall_time_s"])
        slowest = max(BENCH_LATENCY.values())
        floor = slowest if lanes >= calls else max(slowest, sum(BENCH_LATENCY.values()) * 2 * 2 / lanes)
        wall = sorted(walls)[len(walls) // 2]
        bench.row(
            f"benchmark_models 3 models x 2 prompts x 2 runs, {lanes} at once",
            wall,
            "s",
            floor,
            "≤ 1.2 × floor" if lanes >= calls else "≤ 1.3 × floor",
            wall <= floor * (1.2 if lanes >= calls else 1.3),
            f"ratio {wall / floor:.3f}; the report's own wall time {sorted(reported)[len(reported) // 2]:.3f} s; "
            "floor: " + ("the slowest model's call" if lanes >= calls else f"all call time over {lanes} lanes"),
        )
    for model in BENCH_LATENCY:
        bench.fake.model_latency.pop(model, None)


# ------------------------------------------------------------------------------------------- citation checking


def verifier_accuracy(bench: Bench) -> None:
    marks, evidence, truth = seeded_citations()
    check_quotes(marks, evidence, set(evidence))
    verified = [m.status == "verified" for m in marks]
    true_positive = sum(v and t for v, t in zip(verified, truth, strict=True))
    precision = true_positive / max(sum(verified), 1)
    recall = true_positive / max(sum(truth), 1)
    survived = sum(v and not t for v, t in zip(verified, truth, strict=True))
    removed_good = sum(m.status == "removed" and t for m, t in zip(marks, truth, strict=True))
    bench.row(
        "citation check by quote: precision",
        precision * 100,
        "%",
        None,
        "no unsupported citation verified",
        survived == 0,
        f"{len(marks)} seeded citations of the corpus ({sum(truth)} true, {len(truth) - sum(truth)} not); "
        f"match threshold {QUOTE_MATCH:g}",
    )
    bench.row(
        "citation check by quote: recall",
        recall * 100,
        "%",
        None,
        "no supported citation removed",
        removed_good == 0,
        "the true ones it could not prove stay, marked [n?], for the verifier model",
    )


# ----------------------------------------------------------------------------------------------- start-up


INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    }
)


def time_to_initialize(env: dict[str, str]) -> float:
    """Seconds from spawning the server to its answer to `initialize` (its exit is not timed)."""
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "openrouter_research_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    ) as proc:
        assert proc.stdin and proc.stdout
        proc.stdin.write(INITIALIZE.encode() + b"\n")
        proc.stdin.flush()
        proc.stdout.readline()
        took = time.perf_counter() - started
        proc.stdin.close()
        proc.wait(timeout=30)
    return took


def startup_with_saved_runs(bench: Bench, runs: int = 2000, repeat: int = 5) -> None:
    data = bench.work / "startup-data"
    folder = data / "research"
    folder.mkdir(parents=True, exist_ok=True)
    env = {**bench.env("startup"), "OPENROUTER_DATA_DIR": str(data)}

    def start() -> float:
        took = [time_to_initialize(env) for _ in range(repeat)]
        return sorted(took)[len(took) // 2]

    empty = start()
    for i in range(runs):
        research_id = f"20250102-000000-{i:08x}"
        (folder / f"{research_id}.json").write_text(saved_run(research_id))
    full = start()
    bench.row(
        f"start-up with {runs:,} saved research runs",
        full,
        "s",
        empty,
        "no slower than with none (within 0.1 s)",
        full - empty < 0.1,
        f"{(full - empty) * 1000:+.0f} ms; saved runs are indexed after start-up, on a worker thread "
        f"({os.cpu_count()} cores)",
    )
