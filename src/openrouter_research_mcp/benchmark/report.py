"""A benchmark as data, and the ways to look at it: markdown for reading, CSV and JSON for tools, an SVG chart
(cost against quality, bubble size latency) for the eye. All four come from the same per-model figures."""

from __future__ import annotations

import csv
import html
import io
import math
import re
import secrets
import time
from typing import Literal

from pydantic import BaseModel, Field

from .._util import usd
from ..jobs.store import Status, Timestamp
from ..openrouter.pricing import Usage

__all__ = [
    "BENCHMARK_ID",
    "LABEL_CHAR_PX",
    "MAX_MODELS",
    "MAX_PROMPTS",
    "MAX_RUNS",
    "MIN_MODELS",
    "MIN_PROMPTS",
    "MIN_RUNS",
    "BenchmarkInput",
    "BenchmarkParams",
    "BenchmarkReport",
    "BenchmarkResult",
    "CallRecord",
    "ModelStats",
    "Objective",
    "new_benchmark_id",
    "render_chart",
    "render_csv",
    "render_markdown",
]

BENCHMARK_ID = re.compile(r"^bench-\d{8}-\d{6}-[0-9a-f]{8}$")
Objective = Literal["quality", "cost", "speed", "balanced"]
CSV_COLUMNS = (
    "rank",
    "model",
    "success_rate",
    "latency_p50_s",
    "latency_p95_s",
    "ttft_p50_s",
    "tokens_per_s",
    "prompt_tokens_per_call",
    "completion_tokens_per_call",
    "cost_per_call_usd",
    "cost_usd",
    "quality",
)


def new_benchmark_id() -> str:
    return f"bench-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


# How many prompts, models and runs a benchmark takes. The upper bounds are the input model's; the lower ones are
# checked by `benchmark_models`, on what is left once blanks and repeats are dropped (a resume gives none).
MIN_PROMPTS, MAX_PROMPTS = 1, 20
MIN_MODELS, MAX_MODELS = 2, 8
MIN_RUNS, MAX_RUNS = 1, 5


class BenchmarkInput(BaseModel):
    """What `benchmark_models` takes: the one declaration of its parameters, defaults, bounds and descriptions."""

    prompts: list[str] = Field(
        default_factory=list, max_length=MAX_PROMPTS, description=f"{MIN_PROMPTS} to {MAX_PROMPTS} prompts to try"
    )
    models: list[str] = Field(
        default_factory=list, max_length=MAX_MODELS, description=f"{MIN_MODELS} to {MAX_MODELS} model ids"
    )
    runs: int = Field(default=1, ge=MIN_RUNS, le=MAX_RUNS, description="times each model answers each prompt")
    references: list[str] | None = Field(default=None, description="a reference answer per prompt, for the judge")
    rubric: str | None = Field(default=None, description="what a good answer does, for the judge")
    judge_model: str | None = Field(default=None, description="scores each answer 1-10")
    objective: Objective = Field(default="balanced", description="what to rank by; balanced: quality per dollar")
    max_latency_s: float = Field(default=30, gt=0, description="latency limit for balanced")
    max_tokens: int = Field(default=512, ge=1, le=32_000, description="cap on each answer")
    max_cost_usd: float = Field(default=1.0, gt=0, le=50, description="cap, checked before anything starts")
    background: bool = Field(default=False, description="return the id at once; poll get_benchmark")
    resume: str | None = Field(default=None, description="id of a stopped benchmark to finish")


class BenchmarkParams(BenchmarkInput):
    """What a benchmark was asked for, saved with it (prompts and models cleaned)."""


class CallRecord(BaseModel):
    """One model's answer to one prompt, once: how fast, how long, how dear, how good."""

    model: str
    prompt: int = Field(description="the prompt's index")
    run: int
    ok: bool
    error: str | None = None
    latency_s: float = 0.0
    ttft_s: float | None = Field(default=None, description="time to the first token of the answer")
    tokens_per_s: float | None = Field(
        default=None, description="output tokens per second, first piece to last; none when not measurable"
    )
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    score: float | None = Field(default=None, description="the judge's score, 1-10")
    reason: str | None = None
    answer: str = Field(default="", description="the start of the answer")


class ModelStats(BaseModel):
    """One model's figures over all its calls."""

    model: str
    rank: int = 0
    calls: int
    succeeded: int
    success_rate: float
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    ttft_p50_s: float | None = None
    tokens_per_s: float | None = None
    prompt_tokens_per_call: float = 0.0
    completion_tokens_per_call: float = 0.0
    cost_per_call_usd: float | None = None
    cost_usd: float = 0.0
    quality: float | None = Field(default=None, description="mean judge score, 1-10")
    quality_by_prompt: list[float | None] = Field(default_factory=list)


class BenchmarkReport(BaseModel):
    """A benchmark run, complete or in progress."""

    benchmark_id: str
    status: Status = "running"
    stopped_because: Literal["done", "budget", "cancelled", "interrupted", "failed"] | None = None
    progress: str = "starting"
    params: BenchmarkParams
    created_at: Timestamp = Field(default_factory=time.time)
    calls: list[CallRecord] = Field(default_factory=list)
    stats: list[ModelStats] = Field(default_factory=list, description="one per model, best first")
    ranking: list[str] = Field(default_factory=list, description="model ids, best first for the objective")
    tradeoffs: str = ""
    totals: Usage = Field(default_factory=lambda: Usage(cost_usd=0.0, cost_source="sum"))
    judge_usage: Usage = Field(
        default_factory=lambda: Usage(cost_usd=0.0, cost_source="sum"), description="the judge's part of totals"
    )
    skipped: dict[str, str] = Field(default_factory=dict, description="models not benchmarked, and why")
    wall_time_s: float = 0.0
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None


class BenchmarkResult(BaseModel):
    """What `benchmark_models` returns: the figures and the ranking (every call is in the JSON resource)."""

    benchmark_id: str
    status: Status
    stopped_because: str | None = Field(default=None, description="done, budget, cancelled, interrupted, failed")
    progress: str
    objective: Objective
    ranking: list[str] = Field(description="model ids, best first for the objective")
    stats: list[ModelStats]
    tradeoffs: str
    calls: int = Field(description="calls made; each is in benchmark://reports/{id}.json")
    totals: Usage
    max_cost_usd: float
    wall_time_s: float
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, r: BenchmarkReport) -> BenchmarkResult:
        return cls(
            benchmark_id=r.benchmark_id,
            status=r.status,
            stopped_because=r.stopped_because,
            progress=r.progress,
            objective=r.params.objective,
            ranking=r.ranking,
            stats=r.stats,
            tradeoffs=r.tradeoffs,
            calls=len(r.calls),
            totals=r.totals,
            max_cost_usd=r.params.max_cost_usd,
            wall_time_s=r.wall_time_s,
            warnings=r.warnings,
        )


def _fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def render_markdown(r: BenchmarkReport) -> str:
    """The report to read: the ranking table, the trade-offs, the quality per prompt, the models skipped, and the
    cost of the answers and of the judge, which add up to the total."""
    p = r.params
    judged = p.judge_model is not None
    lines = [
        f"# Benchmark {r.benchmark_id}",
        "",
        f"{len(p.models)} models × {len(p.prompts)} prompt(s) × {p.runs} run(s); objective **{p.objective}**"
        + (f"; judged by `{p.judge_model}`" if judged else "")
        + f". Status: {r.status}"
        + (f" ({r.stopped_because})" if r.stopped_because not in (None, "done", r.status) else "")
        + ".",
        "",
        "| rank | model | success | latency p50 / p95 | first token | tokens/s | cost per call | total cost |"
        + (" quality |" if judged else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if judged else ""),
    ]
    for s in r.stats:
        row = (
            f"| {s.rank} | `{s.model}` | {s.success_rate:.0%} | {_fmt(s.latency_p50_s)} / {_fmt(s.latency_p95_s)} s"
            f" | {_fmt(s.ttft_p50_s)} s | {_fmt(s.tokens_per_s, 1)} | {_usd_or_dash(s.cost_per_call_usd)} | "
            f"{usd(s.cost_usd)} |"
        )
        lines.append(row + (f" {_fmt(s.quality, 1)} |" if judged else ""))
    lines += ["", r.tradeoffs]
    if judged and len(p.prompts) > 1:
        lines += ["", "Quality by prompt:", ""]
        lines += [f"- `{s.model}`: " + ", ".join(_fmt(q, 1) for q in s.quality_by_prompt) for s in r.stats]
    if r.skipped:
        lines += ["", "Skipped before anything was sent:", ""]
        lines += [f"- `{model}`: {why}" for model, why in r.skipped.items()]
    failures = [c for c in r.calls if not c.ok]
    if failures:
        lines += ["", f"{len(failures)} call(s) failed, e.g. `{failures[0].model}`: {failures[0].error}"]
    answers = sum(s.cost_usd for s in r.stats)
    judge = f" + the judge {usd(r.judge_usage.cost_usd)}" if judged else ""
    lines += [
        "",
        f"Total: {r.totals.prompt_tokens:,} in / {r.totals.completion_tokens:,} out tokens; answers {usd(answers)}"
        f"{judge} = {usd(r.totals.cost_usd)} of {usd(p.max_cost_usd)}; {r.wall_time_s:.1f} s.",
    ]
    lines += [f"Note: {w}" for w in r.warnings]
    return "\n".join(lines)


def _usd_or_dash(value: float | None) -> str:
    return "—" if value is None else usd(value)


def render_csv(r: BenchmarkReport) -> str:
    """One row per model, best first: the same figures as the markdown table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in r.stats:
        writer.writerow(["" if (v := getattr(s, c)) is None else v for c in CSV_COLUMNS])
    return out.getvalue()


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value`, for an axis that ends on a round number."""
    if value <= 0:
        return 1e-6
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 5, 10) if step * power >= value * (1 - 1e-9)))


LABEL_CHAR_PX = 7.2  # the width of a character at the chart's 12 px font, a little generous


MAX_RADIUS = 28.0  # the bubble of the slowest model; the plot keeps this far from its edges


def render_chart(r: BenchmarkReport, width: int = 640, height: int = 420) -> str:
    """An SVG scatter: cost per call (x, in dollars) against quality (y, or success rate without a judge), each
    model a bubble whose area grows with its median latency. Both axes have tick labels; bubbles stay inside the
    plot; each model's label is whole, on whichever side of its bubble it fits, moved down where it would cover
    another's. A judged model without a score is left off, and a note says so. Self-contained, and readable in light
    and dark themes."""
    judged = r.params.judge_model is not None
    priced = [s for s in r.stats if s.cost_per_call_usd is not None]
    points = [s for s in priced if not judged or s.quality is not None]
    unplotted = [s.model for s in r.stats if s not in points]
    left, right, top, bottom = 84, 16, 24, 58 + (16 if unplotted else 0)
    w, h = width - left - right, height - top - bottom
    pad = MAX_RADIUS + 2
    costs = [s.cost_per_call_usd or 0.0 for s in points] or [0.0]
    top_cost = _nice_ceiling(max(costs) * 1.1)
    latencies = [s.latency_p50_s or 0.0 for s in points] or [0.0]
    slowest = max(max(latencies), 1e-9)

    def x_at(cost: float) -> float:
        return left + pad + (w - 2 * pad) * cost / top_cost

    def y_at(fraction: float) -> float:
        return top + h - pad - (h - 2 * pad) * fraction

    def y_of(s: ModelStats) -> float:
        return y_at((s.quality or 0.0) / 10 if judged else s.success_rate)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Cost against {"quality" if judged else "success rate"} per model" '
        'font-family="system-ui, sans-serif" font-size="12">',
        "<style>text{fill:currentColor}.axis{stroke:currentColor;stroke-opacity:.5}.grid{stroke:currentColor;"
        "stroke-opacity:.12}.dot{fill:#3b82f6;fill-opacity:.55;stroke:#1d4ed8}"
        "@media (prefers-color-scheme:dark){svg{color:#e5e7eb}}</style>",
        f'<line class="axis" x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + h}"/>',
        f'<text x="{left + w / 2}" y="{top + h + 40}" text-anchor="middle">cost per call (USD; bubble area: median '
        "latency)</text>",
        f'<text x="16" y="{top + h / 2}" transform="rotate(-90 16 {top + h / 2})" text-anchor="middle">'
        f"{'quality (1-10)' if judged else 'success rate'}</text>",
    ]
    for i in range(5):  # x ticks: 0 to the round top, in dollars
        x = x_at(top_cost * i / 4)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + h}"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + h + 18}" text-anchor="middle">{usd(top_cost * i / 4)}</text>')
    for i in range(6):  # y ticks: 0 to 10, or 0% to 100%
        y = y_at(i / 5)
        tick = f"{2 * i}" if judged else f"{20 * i}%"
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    placed: list[tuple[float, float, float]] = []  # each label's start, end and baseline

    def free(start: float, end: float, baseline: float) -> bool:
        return all(end <= a or start >= b or abs(baseline - y) >= 14 for a, b, y in placed)

    for s in points:
        x, y = x_at(s.cost_per_call_usd or 0.0), y_of(s)
        radius = 6 + (MAX_RADIUS - 6) * math.sqrt((s.latency_p50_s or 0.0) / slowest)
        label = html.escape(s.model)
        parts.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}"><title>{label}: '
            f"{usd(s.cost_per_call_usd)} per call, {_fmt(s.latency_p50_s)} s</title></circle>"
        )
        needed = len(s.model) * LABEL_CHAR_PX
        if x + radius + 3 + needed <= width - 4:  # right of the bubble
            start = x + radius + 3
        elif x - radius - 3 - needed >= 4:  # left of it
            start = x - radius - 3 - needed
        else:  # below it, kept inside the chart
            start, y = min(max(x - needed / 2, 4.0), width - 4 - needed), y + radius + 10
        baseline = y + 4
        for _ in range(12):  # moved down, then up, until it covers no other label
            if free(start, start + needed, baseline):
                break
            baseline += 14
        placed.append((start, start + needed, baseline))
        parts.append(f'<text x="{start:.1f}" y="{baseline:.1f}">{label}</text>')
    if unplotted:
        names = ", ".join(html.escape(m) for m in unplotted)
        note = f"Not shown (no {'score' if judged else 'cost'}): {names}"
        limit = int((width - 8) / LABEL_CHAR_PX)
        note = note if len(note) <= limit else note[: limit - 1] + "…"
        parts.append(f'<text x="4" y="{height - 6}">{note}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
