"""Reproducible speed, context and resilience figures, offline.

    .venv/bin/python bench/run.py [--repeat 5] [--json bench/results/latest.json] [--only exits|replicas]

Starts the test suite's fake OpenRouter on loopback, drives the installed server over stdio with the SDK's
`Client`, and prints a table (and writes JSON) of medians, each next to its floor measured in the same run.
Needs the test extras (the fake lives under tests/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes import FAKE_KEY  # noqa: E402 - after the path is set
from tests.fakes.catalog_data import catalog, with_extra_models  # noqa: E402
from tests.fakes.labelled_set import research_scenario  # noqa: E402
from tests.fakes.openrouter import FakeOpenRouter  # noqa: E402

from bench.exits import exit_after_fifo_swap, exit_latency  # noqa: E402
from bench.remote import cpu_per_ask_http, cpu_per_ask_stdio, http_load, upstream_post  # noqa: E402
from bench.replicas import replica_load  # noqa: E402
from bench.sections import (  # noqa: E402
    benchmark_overhead,
    citation_check,
    jobs_latency,
    startup_with_saved_runs,
    time_to_initialize,
    tool_definitions,
    view_sizes,
)

EIGHT = [
    "openai/gpt-4o-mini",
    "openai/gpt-4o",
    "anthropic/claude-3.5-sonnet",
    "google/gemini-2.5-flash",
    "deepseek/deepseek-r1",
    "meta-llama/llama-3.3-70b-instruct",
    "meta-llama/llama-3.3-70b-instruct:free",
    "perplexity/sonar",
]
QUESTION = "How do honeybee colonies live and communicate?"
PLAN = {
    "sub_questions": [
        {"question": q, "rationale": "r"}
        for q in (
            "How does the honeybee waggle dance encode distance?",
            "How large is a honeybee colony?",
            "How do honeybees make honey?",
        )
    ]
}
LABELLED_PAGES = ("en-heatpump", "en-vaccine", "de-wetter", "fr-medicament")
GAPS = {"gaps": ["one gap"], "follow_up_questions": [{"question": "Who decoded the honeybee dance?", "rationale": "r"}]}


def median(values: list[float]) -> float:
    return statistics.median(values)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class RawStdio:
    """A bare JSON-RPC client over the server's stdio: measures the server and the transport, not a client SDK's
    own work (the Python SDK's client validates every result against its schema, which costs more than the call)."""

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
        self.call(
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
        )
        self.notify("notifications/initialized")

    def notify(self, method: str) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}) + "\n")

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.next_id += 1
        self.proc.stdin.write(
            json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}) + "\n"
        )
        while True:
            message: dict[str, Any] = json.loads(self.proc.stdout.readline())
            if message.get("id") == self.next_id:
                return message

    def timed(self, method: str, params: dict[str, Any], runs: int, warmup: int = 5) -> list[float]:
        times = []
        for i in range(warmup + runs):
            t = time.perf_counter()
            answer = self.call(method, params)
            if i >= warmup:
                times.append(time.perf_counter() - t)
            assert "result" in answer and not answer["result"].get("isError"), answer
        return times

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Bench:
    def __init__(self, repeat: int, work: Path) -> None:
        self.repeat = repeat
        self.work = work
        self.fake = FakeOpenRouter()
        self.rows: list[dict[str, Any]] = []

    def params(self, cache: str, **env: str) -> StdioServerParameters:
        values = {
            "OPENROUTER_API_KEY": FAKE_KEY,
            "OPENROUTER_BASE_URL": self.fake.base_url,
            "OPENROUTER_CACHE_DIR": str(self.work / cache),
            "OPENROUTER_DATA_DIR": str(self.work / "data"),
            "OPENROUTER_LOG_LEVEL": "WARNING",
            "PATH": os.environ.get("PATH", ""),
            **env,
        }
        return StdioServerParameters(command=sys.executable, args=["-m", "openrouter_research_mcp"], env=values)

    def row(
        self,
        name: str,
        value: float,
        unit: str,
        floor: float | None = None,
        target: str = "",
        ok: bool | None = None,
        note: str = "",
    ) -> None:
        self.rows.append(
            {
                "name": name,
                "value": round(value, 4),
                "unit": unit,
                "floor": None if floor is None else round(floor, 4),
                "target": target,
                "ok": ok,
                "note": note,
            }
        )

    # --------------------------------------------------------------------------------------------- cold start

    def cold_start(self) -> None:
        floor, server = [], []
        env = {
            **os.environ,
            "OPENROUTER_API_KEY": FAKE_KEY,
            "OPENROUTER_BASE_URL": self.fake.base_url,
            "OPENROUTER_CACHE_DIR": str(self.work / "cold"),
            "OPENROUTER_DATA_DIR": str(self.work / "data"),
        }
        for _ in range(max(10, 2 * self.repeat)):  # interleaved, so machine noise hits both alike
            t = time.perf_counter()  # the floor: spawn, import the SDK, say so (its exit is not timed)
            with subprocess.Popen(
                [sys.executable, "-c", "import mcp.server.mcpserver; print('ready', flush=True)"],
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            ) as bare:
                assert bare.stdout
                bare.stdout.readline()
                floor.append(time.perf_counter() - t)
                bare.wait(timeout=30)
            server.append(time_to_initialize(env))
        # Runs are interleaved and paired. This VM's speed drifts by hundreds of ms between runs, so besides the
        # median of the paired differences we show the fastest run of each (timeit's rule: the minimum is the
        # figure least disturbed by other load), and judge the target on that.
        paired = median([s - f for s, f in zip(server, floor, strict=True)])
        fastest = min(server) - min(floor)
        self.row(
            "cold start: spawn to initialize response",
            median(server),
            "s",
            median(floor),
            "within 0.2 s of the import floor (fastest runs)",
            fastest <= 0.2,
            f"fastest {min(server):.3f} s vs {min(floor):.3f} s: {fastest * 1000:+.0f} ms; median of paired "
            f"differences {paired * 1000:+.0f} ms",
        )

    # ------------------------------------------------------------------------------------------ tool round trips

    def env(self, cache: str) -> dict[str, str]:
        return {
            **os.environ,
            "OPENROUTER_API_KEY": FAKE_KEY,
            "OPENROUTER_BASE_URL": self.fake.base_url,
            "OPENROUTER_CACHE_DIR": str(self.work / cache),
            "OPENROUTER_DATA_DIR": str(self.work / "data"),
            "OPENROUTER_LOG_LEVEL": "WARNING",
        }

    def ask_overhead(self) -> None:
        self.fake.latency = 0.0
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi."}], "stream": True}
        direct: list[float] = []
        with httpx.Client(base_url=self.fake.base_url, headers={"Authorization": f"Bearer {FAKE_KEY}"}) as http:
            for i in range(110):
                t = time.perf_counter()
                with http.stream("POST", "/chat/completions", json=body) as response:
                    for _ in response.iter_lines():
                        pass
                if i >= 10:
                    direct.append(time.perf_counter() - t)
        client = RawStdio(self.env("ask"))
        try:
            floor = client.timed("prompts/list", {}, 100)
            via = client.timed("tools/call", {"name": "ask", "arguments": {"prompt": "Say hi."}}, 100)
        finally:
            client.close()
        overhead = (median(via) - median(direct) - median(floor)) * 1000
        self.row(
            "ask round trip at 0 ms upstream latency",
            median(via) * 1000,
            "ms",
            median(direct) * 1000,
            "overhead under 3 ms",
            overhead < 3,
            f"overhead {overhead:.2f} ms beyond a direct streamed POST ({median(direct) * 1000:.2f} ms) and an "
            f"MCP round trip over stdio ({median(floor) * 1000:.2f} ms, prompts/list)",
        )

    async def fan_out(self) -> None:
        self.fake.latency = 1.0
        async with Client(self.params("fan")) as client:
            await client.call_tool("list_models", {"limit": 1})
            single = []
            for _ in range(max(2, self.repeat // 2)):
                t = time.perf_counter()
                await client.call_tool("ask", {"prompt": "Name a prime."})
                single.append(time.perf_counter() - t)
            for n in (2, 4, 8):
                walls = []
                for _ in range(max(2, self.repeat // 2)):
                    t = time.perf_counter()
                    result = await client.call_tool(
                        "compare_models", {"prompt": "Name a prime.", "models": EIGHT[:n], "max_tokens": 256}
                    )
                    walls.append(time.perf_counter() - t)
                    assert not result.is_error and result.structured_content["totals"]["succeeded"] == n
                ratio = median(walls) / median(single)
                self.row(
                    f"compare_models, {n} models at 1 s latency",
                    median(walls),
                    "s",
                    median(single),
                    "≤ 1.15 × slowest single call" if n == 8 else "",
                    ratio <= 1.15 if n == 8 else None,
                    f"ratio {ratio:.3f}",
                )
        self.fake.latency = 0.0

    async def research(self) -> None:
        self.fake.latency = 0.3
        self.fake.structured_answers.update({"research_plan": PLAN, "research_gaps": GAPS})
        walls, requests, tokens, pages, costs, checked = [], [], [], [], [], []
        params = self.params("research")
        async with Client(params) as client:
            await client.call_tool("list_models", {"limit": 1})
            for _ in range(max(2, self.repeat // 2)):
                t = time.perf_counter()
                result = await client.call_tool("deep_research", {"question": QUESTION, "breadth": 3, "depth": 2})
                walls.append(time.perf_counter() - t)
                data = result.structured_content
                assert data["status"] == "done", data
                requests.append(data["upstream_requests"])
                tokens.append(data["prompt_tokens"] + data["completion_tokens"])
                pages.append(data["pages_read"])
                costs.append(data["cost_usd"])
                checked.append(data["verification"])
            rss = server_peak_rss_mb()
        critical = 5 * 0.3  # plan, research round 1, reflect, research round 2, write
        ratio = median(walls) / critical
        last = checked[-1]
        self.row(
            "deep_research with reading, breadth 3, depth 2, 300 ms latency",
            median(walls),
            "s",
            critical,
            "≤ 1.3 × critical path",
            ratio <= 1.3,
            f"ratio {ratio:.3f}; per report: {median(pages):.0f} pages read, {median(requests):.0f} upstream requests,"
            f" {median(tokens):.0f} tokens, ${median(costs):.4f}; {last['quotes_found']} of {last['citations']} "
            "quotes found, " + f"{last['supported']} claims supported",
        )
        self.row("server peak RSS after deep research", rss, "MB", None, "under 150 MB", rss < 150)
        await self.research_checked()
        self.fake.latency = 0.0

    async def research_checked(self) -> None:
        """A research run whose writer cites the labelled pages as labelled, every claim judged by the (fake,
        correct) verifier: what checking adds in tokens, money and time, and the wall time against the critical
        path (plan, research, write, verify)."""
        saved = dict(self.fake.pages), dict(self.fake.structured_answers)
        cases = research_scenario(self.fake, LABELLED_PAGES, most=40)
        walls, per = [], []
        async with Client(self.params("research-checked")) as client:
            await client.call_tool("list_models", {"limit": 1})
            for _ in range(max(2, self.repeat // 2)):
                t = time.perf_counter()
                result = await client.call_tool(
                    "deep_research", {"question": "Heat pumps, vaccines, weather, medicines", "breadth": 4, "depth": 1}
                )
                walls.append(time.perf_counter() - t)
                data = result.structured_content
                assert data["status"] == "done", data
                judged = data["verification"]["checked_by_model"]
                spend = [u for u in data["usage"] if u["stage"] == "verify"]
                tokens = sum(u["prompt_tokens"] + u["completion_tokens"] for u in spend)
                cost = sum(u["cost_usd"] or 0 for u in spend)
                per.append((tokens * 10 / judged, cost * 10 / judged, data["timings"].get("verify_s", 0), judged))
        self.fake.pages, self.fake.structured_answers = saved
        self.fake.writer_extra, self.fake.verdicts = "", {}
        critical = 4 * 0.3  # plan, research (one round), write, verify (batches at once)
        ratio = median(walls) / critical
        tokens, cost, seconds, judged = (median([p[i] for p in per]) for i in range(4))
        self.row(
            "deep_research with every cited claim verified, 300 ms latency",
            median(walls),
            "s",
            critical,
            "≤ 1.3 × critical path",
            ratio <= 1.3,
            f"ratio {ratio:.3f}; {len(cases)} labelled citations written, {judged:.0f} claims judged",
        )
        self.row(
            "verifier's added cost per 10 citations",
            cost,
            "USD",
            None,
            "",
            None,
            f"{tokens:,.0f} tokens per 10 citations (fake prices of openai/gpt-4o-mini); verify stage {seconds:.2f} s",
        )

    async def list_models(self) -> None:
        realistic = with_extra_models(catalog(2026), 380)
        for entry in realistic["data"][10:]:  # real descriptions run to a paragraph or two
            entry["description"] = (entry["description"] + " ") * 14
        self.fake.catalog_body = realistic
        size = len(json.dumps(self.fake.catalog_body))
        downloads = self.fake.count("/models")
        params = self.params("list")
        async with Client(params) as client:
            t = time.perf_counter()
            page = await client.call_tool("list_models", {})
            cold = time.perf_counter() - t
            tools = await client.list_tools()
            await tool_definitions(self, client)
            await view_sizes(self, client)
        async with Client(params) as second:
            t = time.perf_counter()
            await second.call_tool("list_models", {})
            disk = time.perf_counter() - t
        raw = RawStdio(self.env("list"))
        try:
            floor = raw.timed("prompts/list", {}, 100)
            warm = raw.timed("tools/call", {"name": "list_models", "arguments": {"query": "model"}}, 100)
        finally:
            raw.close()
        chars = len(page.content[0].text) + len(json.dumps(page.structured_content))  # type: ignore[union-attr]
        self.row(
            "list_models cold (fetches the catalog)",
            cold * 1000,
            "ms",
            None,
            "",
            None,
            f"catalog of {len(self.fake.catalog_body['data'])} models, {size / 1e6:.2f} MB",
        )
        self.row(
            "list_models warm (memory), round trip over stdio",
            median(warm) * 1000,
            "ms",
            median(floor) * 1000,
            "under 5 ms",
            median(warm) < 0.005,
            f"{len(realistic['data'])} models searched; floor: prompts/list round trip",
        )
        self.row(
            "list_models in a second process (disk cache)",
            disk * 1000,
            "ms",
            None,
            "",
            None,
            f"{self.fake.count('/models') - downloads} download for the three list_models measurements",
        )
        self.row(
            "list_models default page",
            chars / 4,
            "tokens (est.)",
            None,
            "under 2,500 tokens",
            chars / 4 < 2500,
            f"{chars} characters, text and structured content together",
        )
        payload = len(tools.model_dump_json(by_alias=True, exclude_none=True))
        self.row(
            f"tools/list payload (all {len(tools.tools)} tools, with output schemas)",
            payload,
            "bytes",
            None,
            "",
            None,
            f"about {payload / 4:.0f} tokens every host pays once per session",
        )
        self.fake.catalog_body = catalog(2026)

    async def concurrent(self) -> None:
        self.fake.latency = 0.05
        async with Client(self.params("concurrent")) as client:
            await client.call_tool("list_models", {"limit": 1})

            async def one(i: int) -> tuple[bool, float]:
                t = time.perf_counter()
                result = await client.call_tool("ask", {"prompt": f"Question {i}?"})
                return not result.is_error, time.perf_counter() - t

            outcomes = await asyncio.gather(*(one(i) for i in range(20)))
        times = [t for _, t in outcomes]
        ok = all(good for good, _ in outcomes)
        self.row("20 concurrent ask calls, 50 ms latency: p50", pct(times, 0.5) * 1000, "ms", 50, "all succeed", ok)
        self.row(
            "20 concurrent ask calls, 50 ms latency: p95",
            pct(times, 0.95) * 1000,
            "ms",
            50,
            "",
            None,
            f"{sum(good for good, _ in outcomes)}/20 succeeded",
        )
        self.fake.latency = 0.0


def server_peak_rss_mb() -> float:
    """VmHWM of our server child process (Linux /proc)."""
    me = os.getpid()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) == me and "openrouter_research_mcp" in cmdline:
            return int(fields["VmHWM"].split()[0]) / 1024
    return float("nan")


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| measurement | median | floor | target | met | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        met = "" if r["ok"] is None else ("yes" if r["ok"] else "**no**")
        floor = "" if r["floor"] is None else f"{r['floor']:g} {r['unit']}"
        lines.append(f"| {r['name']} | {r['value']:g} {r['unit']} | {floor} | {r['target']} | {met} | {r['note']} |")
    return "\n".join(lines)


def run_sync_sections(bench: Bench) -> None:
    citation_check(bench)
    startup_with_saved_runs(bench)
    jobs_latency(bench)
    run_exits(bench)
    replica_load(bench)


def run_exits(bench: Bench) -> None:
    exit_latency(bench)
    exit_after_fifo_swap(bench)


async def run_async(bench: Bench) -> None:
    steps: list[Callable[[], Awaitable[None]]] = [bench.fan_out, bench.research, bench.list_models, bench.concurrent]
    for step in steps:
        await step()
    await benchmark_overhead(bench)
    await upstream_post(bench)
    await cpu_per_ask_http(bench)
    await http_load(bench)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per median (cold start, fan-out, research)")
    parser.add_argument("--json", type=Path, help="where to write the rows (default bench/results/<latest|only>.json)")
    parser.add_argument(
        "--only",
        choices=["exits", "replicas"],
        help="run one section: exits (how soon the server stops), replicas (1-3 replicas over PostgreSQL behind nginx)",
    )
    args = parser.parse_args()
    args.json = args.json or ROOT / "bench" / "results" / f"{args.only or 'latest'}.json"  # --only keeps latest.json
    with tempfile.TemporaryDirectory() as tmp, FakeOpenRouter() as fake:
        bench = Bench(args.repeat, Path(tmp))
        bench.fake = fake
        started = time.perf_counter()
        if args.only == "exits":
            run_exits(bench)
        elif args.only == "replicas":
            replica_load(bench)
        else:
            bench.cold_start()
            bench.ask_overhead()
            cpu_per_ask_stdio(bench)
            asyncio.run(run_async(bench))
            run_sync_sections(bench)
        took = time.perf_counter() - started
    table = render(bench.rows)
    print(table)
    print(
        f"\n{sum(1 for r in bench.rows if r['ok'])}/{sum(1 for r in bench.rows if r['ok'] is not None)} targets "
        f"met in {took:.0f} s on {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"rows": bench.rows, "seconds": took, "cores": os.cpu_count(), "python": sys.version.split()[0]}, indent=1
        )
    )


if __name__ == "__main__":
    main()
