"""Bench sections beyond speed: what the server costs a host in context, how well citations are checked, and how
start-up copes with many saved runs. Used by `bench/run.py`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

from mcp import Client, StdioServerParameters
from tests.fakes.labelled_set import FALSE_KINDS, Outcome, citations, evaluate, mark_cases, pages
from tests.fakes.openrouter import FakeOpenRouter
from tests.support import model_facing_chars, saved_benchmark, saved_run

from openrouter_research_mcp.jobs.manager import JobHandle, JobManager
from openrouter_research_mcp.jobs.sqlite import DB_FILE, SqliteStore
from openrouter_research_mcp.jobs.store import JobRecord, Status
from openrouter_research_mcp.research.citations import Mark, Verification, render_marks
from openrouter_research_mcp.research.marks import extract

TOOL_CHARS_BUDGET = 10_000


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


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


SHOWN = {"supported": "[n]", "doubtful": "[n?]", "quote_found": "[n†]", "removed": "removed"}


def _shown(outcomes: list[Outcome], attr: str) -> str:
    counts = {key: sum(getattr(o, attr) == key for o in outcomes) for key in SHOWN}
    return ", ".join(f"{SHOWN[k]} {v}" for k, v in counts.items() if v)


def raw_marks_left() -> tuple[int, int]:
    """Render every parser case of the labelled set as a report would, and count writer's marks left raw."""
    raw, cases = 0, mark_cases()
    for case in cases:
        text, cited = extract(case.text)
        marks = [Mark(index=c.index, n=c.n, quote=c.quote, claim=c.claim, provenance="found") for c in cited]
        shown = re.sub(r"`[^`]*`", "", render_marks(text, marks))  # code shows a mark literally, as code
        raw += len(re.findall(r"[\[【［]\s*\d+\s*[:,]?\s*[\"“„«»‹›「『‘‚']", shown))
    return raw, len(cases)


def citation_check(bench: Bench) -> None:
    """On the hand-labelled multilingual set: per kind, what code alone decides and what the reader is shown with a
    verifier that answers correctly."""
    code = evaluate(verifier=False)
    full = evaluate(verifier=True)
    langs = sorted({c.lang for c in citations()})
    for kind in sorted({o.citation.kind for o in full}):
        mine = [o for o in full if o.citation.kind == kind]
        alone = [o for o in code if o.citation.kind == kind]
        found = sum(o.quote_found for o in mine)
        bench.row(
            f"citations, {kind}",
            len(mine),
            "citations",
            None,
            "",
            None,
            f"quote found in code {found}/{len(mine)}; code alone shows {_shown(alone, 'shown')}; with the "
            f"verifier {_shown(mine, 'shown')}",
        )
    false_shown = [o for o in full if o.citation.false_claim and o.shown == "supported"]
    altered = [o for o in full if o.citation.kind == "altered_quote" and o.quote_found]
    exact = [o for o in full if o.citation.kind == "supported_exact"]
    exact_found = sum(o.quote_found for o in exact) / max(len(exact), 1)
    false_by_code = [o for o in code if o.citation.false_claim and o.shown == "supported"]
    raw, cases = raw_marks_left()
    total = len(full)
    note = f"{total} labelled citations of {len(pages())} pages in {len(langs)} languages ({', '.join(langs)})"
    bench.row(
        "false claims shown as supported, with a correct verifier",
        len(false_shown),
        "citations",
        None,
        "0",
        not false_shown,
        note,
    )
    bench.row(
        "false claims shown as supported, code alone",
        len(false_by_code),
        "citations",
        None,
        "0",
        not false_by_code,
        "code supports only a claim that restates its own quote, a whole sentence of the cited page",
    )
    bench.row(
        "altered quotes counted as quote found",
        len(altered),
        "citations",
        None,
        "0",
        not altered,
        f"{sum(o.citation.kind == 'altered_quote' for o in full)} altered quotes",
    )
    bench.row(
        "supported exact quotes found",
        exact_found * 100,
        "%",
        None,
        "≥ 95 %",
        exact_found >= 0.95,
        f"{sum(o.quote_found for o in exact)} of {len(exact)}",
    )
    bench.row("writer's marks left raw in the text", raw, "marks", None, "0", raw == 0, f"{cases} parser cases")
    v = Verification.of([o.mark for o in full])
    bench.row(
        "citation accuracy of the labelled set, with a correct verifier",
        (v.citation_accuracy or 0) * 100,
        "%",
        None,
        "",
        None,
        f"{v.supported} of {v.citations} citations supported (FACT's figure)",
    )
    wrong = [o for o in full if o.citation.false_claim and o.citation.kind in FALSE_KINDS]
    kept = sum(o.quote_found for o in wrong)
    bench.row(
        "real quotes with false claims: quote found",
        kept,
        "citations",
        None,
        "",
        None,
        f"of {len(wrong)}: provenance is right, the claim is wrong; only the verifier can tell",
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


def startup_with_saved_runs(bench: Bench, runs: int = 2000, benchmarks: int = 500, repeat: int = 5) -> None:
    """Start-up with a previous release's data directory (one JSON file per run and benchmark), against an empty
    one: the files are imported into the database after start-up, on a worker thread. Each start gets a fresh copy,
    so every one of them has the whole import before it."""
    base = bench.work / "startup-data"
    env = {**bench.env("startup")}

    def start(seed: Path | None) -> float:
        took = []
        for i in range(repeat):
            data = bench.work / f"startup-{'full' if seed else 'empty'}-{i}"
            if seed is not None:
                shutil.copytree(seed, data)
            took.append(time_to_initialize({**env, "OPENROUTER_DATA_DIR": str(data)}))
        return sorted(took)[len(took) // 2]

    empty = start(None)
    (base / "research").mkdir(parents=True, exist_ok=True)
    (base / "benchmarks").mkdir(parents=True, exist_ok=True)
    for i in range(runs):
        research_id = f"20250102-000000-{i:08x}"
        (base / "research" / f"{research_id}.json").write_text(saved_run(research_id))
    for i in range(benchmarks):
        benchmark_id = f"bench-20250102-000000-{i:08x}"
        (base / "benchmarks" / f"{benchmark_id}.json").write_text(saved_benchmark(benchmark_id))
    full = start(base)
    bench.row(
        f"start-up with {runs:,} saved research runs and {benchmarks} benchmarks to import",
        full,
        "s",
        empty,
        "no slower than with none (within 0.1 s)",
        full - empty < 0.1,
        f"{(full - empty) * 1000:+.0f} ms; the previous release's files are imported after start-up, on a worker "
        f"thread ({os.cpu_count()} cores)",
    )


# ----------------------------------------------------------------------------------------------------- jobs


def jobs_latency(bench: Bench, jobs: int = 1000, repeat: int = 200) -> None:
    """The job store on SQLite with `jobs` jobs in it: starting a job (its record created with its lease), reading
    one's status, and listing a page of 100 and all of them (one owner's)."""

    async def measure() -> dict[str, list[float]]:
        store = SqliteStore(bench.work / "jobs-bench" / DB_FILE)
        await store.open()
        manager = JobManager(store)
        try:
            await store.import_records(
                [
                    JobRecord(id=f"20250102-000000-{i:08x}", kind="research", owner="local", status="done", data={})
                    for i in range(jobs)
                ]
            )
            times: dict[str, list[float]] = {"start": [], "status": [], "page": [], "all": []}

            async def body(_handle: JobHandle) -> None:
                return None

            def finish(record: JobRecord, _status: Status, _error: str | None) -> dict[str, object]:
                return record.data

            for i in range(repeat):
                record = JobRecord(
                    id=f"20250103-000000-{i:08x}", kind="research", owner="local", status="running", data={"n": i}
                )
                t = time.perf_counter()
                await manager.start(record, body, finish, background=True)
                times["start"].append(time.perf_counter() - t)
                t = time.perf_counter()
                await manager.find("research", "local", f"20250102-000000-{i:08x}")
                times["status"].append(time.perf_counter() - t)
                t = time.perf_counter()
                await manager.list("research", "local", 100)
                times["page"].append(time.perf_counter() - t)
                if i % 10 == 0:
                    t = time.perf_counter()
                    await manager.list("research", "local", jobs + repeat)
                    times["all"].append(time.perf_counter() - t)
            await manager.aclose()
            return times
        finally:
            await store.close()

    times = asyncio.run(measure())
    notes = {
        "start": "a job's record written with its lease (the job itself does nothing)",
        "status": "a job read by id (what get_research and get_benchmark do first)",
        "page": "the newest 100 of one owner's jobs (what research://reports lists)",
        "all": f"every one of the {jobs + repeat:,} jobs of one owner",
    }
    for name, values in times.items():
        ordered = sorted(values)
        bench.row(
            f"job store (SQLite, {jobs:,} jobs): {name}",
            ordered[len(ordered) // 2] * 1000,
            "ms",
            None,
            "",
            None,
            f"{notes[name]}; p95 {ordered[int(len(ordered) * 0.95) - 1] * 1000:.2f} ms",
        )
