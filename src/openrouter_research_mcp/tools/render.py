"""Readable text renderings of tool results, for hosts that show the text rather than the structured content.

They stay compact on purpose: the host model pays for every token we return.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .._markdown import escape_inline, safe_markdown
from .._util import strict_json, usd
from ..benchmark.report import BenchmarkReport
from ..errors import OpenRouterError, StreamError
from ..jobs.store import UsageRow
from ..openrouter.catalog import CatalogSnapshot
from ..openrouter.completion import Attempt
from ..openrouter.models import ModelInfo
from ..openrouter.pricing import SessionUsage, Usage
from ..research.manager import RunSummary
from .results import AskResult, CompareResult, ModelsPage, ResearchResult

__all__ = [
    "error_text",
    "render_account",
    "render_ask",
    "render_benchmark_index",
    "render_compare",
    "render_model_detail",
    "render_models",
    "render_models_index",
    "render_research",
    "render_research_index",
    "render_usage",
    "usd",
]

REPORT_WORDS = 2000  # the text rendering stays about this long so it fits a host's context
ANSWER_CHARS = 40_000  # an answer's text rendering beyond this is cut (the structured result keeps it whole)


def _usage(u: Usage) -> str:
    reasoning = f" (+{u.reasoning_tokens:,} reasoning)" if u.reasoning_tokens else ""
    return f"{u.prompt_tokens:,} in / {u.completion_tokens:,} out{reasoning} tokens · {usd(u.cost_usd)}"


def _attempts(attempts: Sequence[Attempt]) -> str:
    parts = []
    for a in attempts:
        if a.ok:
            parts.append(f"{a.model} ok" + (f" (answered by {a.answered_by})" if a.answered_by else ""))
        else:
            parts.append(f"{a.model} failed ({a.status or 'no status'})")
    return " → ".join(parts)


def bounded(text: str, limit: int, where: str) -> str:
    """`text` cut to about `limit` characters (at a line break where one is near), saying where the rest is."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", limit - 2000, limit)
    return f"{text[: cut if cut > 0 else limit]}\n\n[… {len(text) - limit:,} more characters; {where}]"


def render_ask(r: AskResult) -> str:
    if r.refusal:
        shown = f"The model declined to answer: {safe_markdown(r.refusal)}"
    else:
        shown = safe_markdown(r.answer) or "(no text)"
    lines = [bounded(shown, ANSWER_CHARS, "the full answer is in the structured result"), "", "---"]
    via = f" (requested {r.model_requested})" if r.model != r.model_requested else ""
    lines.append(f"{r.model}{via} · {_usage(r.usage)} · {r.latency_s:.1f} s")
    if r.attempts:
        lines.append(f"Attempts: {_attempts(r.attempts)}")
    for w in r.warnings:
        lines.append(f"Note: {w}")
    if r.sources:
        lines += ["", "Sources:"] + [f"[{s.n}] {escape_inline(s.title or s.url)} — <{s.url}>" for s in r.sources]
        if r.more_sources:
            lines.append(f"(+{r.more_sources} more)")
    return "\n".join(lines)


def render_compare(r: CompareResult) -> str:
    out: list[str] = []
    for e in r.entries:
        out.append(f"## {e.model}" + (f" (answered by {e.answered_by})" if e.answered_by else ""))
        if e.ok:
            answer = bounded(
                safe_markdown(e.answer or "") or "(no text)",
                ANSWER_CHARS // len(r.entries),
                "the full answer is in the structured result",
            )
            out += [answer, f"_{_usage(e.usage)} · {e.latency_s:.1f} s_", ""]
        else:
            out += [f"**Failed:** {e.error}", ""]
    if r.judge:
        j = r.judge
        out.append(f"## Verdict ({j.model})")
        if j.ok:
            out.append(f"Agreement: {j.agreement}. {safe_markdown(j.summary or '')}".strip())
            out += [f"- {safe_markdown(d)}" for d in j.disagreements]
            if j.best_model:
                out.append(f"Best answer: {j.best_model}")
            if j.recommended_answer:
                out += ["", "Recommended answer:", safe_markdown(j.recommended_answer)]
            out.append(f"_{_usage(j.usage)}_")
        else:
            out.append(f"Not available: {j.error}")
        out.append("")
    out += [f"Note: {w}" for w in r.warnings]
    t = r.totals
    out.append(
        f"Total: {t.succeeded} answered, {t.failed} failed · {t.prompt_tokens:,} in / "
        f"{t.completion_tokens:,} out tokens · {usd(t.cost_usd)} of {usd(r.max_cost_usd)} budget · "
        f"{t.wall_time_s:.1f} s wall"
    )
    return "\n".join(out)


def _price(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def render_models(p: ModelsPage) -> str:
    if not p.models:
        return f"No models match ({p.total} total). Loosen the filters."
    shown = f"{p.offset + 1}-{p.offset + len(p.models)} of {p.total}"
    lines = [f"Models {shown} (USD per million tokens in/out; context in tokens):"]
    for m in p.models:
        caps = ",".join(m.capabilities)
        lines.append(
            f"{m.id} | {m.name} | {m.context:,} | ${_price(m.prompt_usd_per_mtok)}/"
            f"${_price(m.completion_usd_per_mtok)} | {m.modalities}" + (f" | {caps}" if caps else "")
        )
    if p.next_offset is not None:
        lines.append(f"More: offset={p.next_offset}")
    if p.catalog_note:
        lines.append(f"Note: {p.catalog_note}")
    return "\n".join(lines)


PARTIAL_CHARS = 1500  # how much of a broken stream's text an error shows


def error_text(exc: OpenRouterError) -> str:
    """The message a user sees for an anticipated failure: the models tried when there were several, and the
    partial answer of a stream that broke off."""
    text = exc.message
    if len(exc.attempts) > 1:
        text += f" Tried: {_attempts(exc.attempts)}."
    if isinstance(exc, StreamError) and exc.partial_text.strip():
        partial = exc.partial_text[:PARTIAL_CHARS] + ("…" if len(exc.partial_text) > PARTIAL_CHARS else "")
        text += f"\n\nPartial answer before the break:\n{partial}"
    return text


def render_research(r: ResearchResult) -> str:
    """The report (bounded to about REPORT_WORDS words), then the run's status and spend."""
    footer = (
        f"---\nresearch_id: {r.research_id} · status: {r.status}"
        + (f" (stopped: {r.stopped_because})" if r.stopped_because and r.stopped_because != r.status else "")
        + f" · {len(r.sources)} sources · {r.upstream_requests} requests · {usd(r.cost_usd)} of "
        f"{usd(r.max_cost_usd)} budget · {r.timings.get('total_s', r.timings.get('elapsed_s', 0)):.1f} s"
    )
    if r.plan is not None:
        scaled = f"; scaled for {' and '.join(r.plan.scaled_because)}" if r.plan.scaled_because else ""
        footer += (
            f"\nplan: {r.plan.breadth} sub-questions, {r.plan.depth} round(s), {r.plan.searches} searches "
            f"and {r.plan.fetches} pages per researcher{scaled} · {r.searches} searches, {r.pages_read} "
            "pages read"
        )
    if r.removed_citations:
        footer += f"\n{r.removed_citations} citation(s) or link(s) not backed by a found source were removed."
    for warning in r.warnings:
        footer += f"\nNote: {warning}"
    if r.report is None:
        return f"Research {r.status}: {r.progress}\n{footer}\nPoll get_research with this research_id for the report."
    main, marker, sources = r.report.partition("\n## Sources\n")
    words = main.split(" ")
    room = max(REPORT_WORDS - len(sources.split(" ")), 300)
    if len(words) > room:  # keep the source list whole: the numbers in the text point into it
        main = " ".join(words[:room]) + (
            f"\n\n[… report truncated; read research://reports/{r.research_id} for the full text]"
        )
    body = main + marker + sources
    return f"{body}\n{footer}"


# ------------------------------------------------------------------------------------------------- resources


def _json(value: Any) -> str:
    return strict_json(value, indent=1, ensure_ascii=False)


def render_models_index(snap: CatalogSnapshot) -> str:
    """`openrouter://models`: every model's id, context and prices, as compact JSON columns."""
    rows = [
        [m.id, m.context_length, m.pricing.per_million("prompt"), m.pricing.per_million("completion")]
        for m in sorted(snap.models.values(), key=lambda m: m.id)
    ]
    return strict_json(
        {
            "columns": ["id", "context", "prompt_usd_per_mtok", "completion_usd_per_mtok"],
            "models": rows,
            "catalog_age_s": int(snap.age()),
        },
        separators=(",", ":"),
    )


def render_model_detail(info: ModelInfo) -> str:
    """`openrouter://models/{id}`: the catalog's own JSON for one model, with the capabilities we read from it."""
    return _json({**info.raw, "capabilities": info.capabilities} if info.raw else info.model_dump(mode="json"))


def render_usage(
    usage: SessionUsage, ledger: Sequence[UsageRow] = (), day: str = "", quota: dict[str, Any] | None = None
) -> str:
    """`openrouter://usage`: this session's totals and per-model usage, from the usage ledger today's and this
    month's spend, and the caller's quotas as they stand (`CallState.quota`)."""

    def summed(rows: Sequence[UsageRow]) -> dict[str, Any]:
        return {
            "calls": sum(r.calls for r in rows),
            "failed_calls": sum(r.failed_calls for r in rows),
            "prompt_tokens": sum(r.prompt_tokens for r in rows),
            "completion_tokens": sum(r.completion_tokens for r in rows),
            "cost_usd": round(sum(r.cost_usd for r in rows), 8),
        }

    return _json(
        {
            "totals": usage.totals().model_dump(),
            "by_model": {k: v.model_dump() for k, v in usage.by_model().items()},
            "today": summed([r for r in ledger if r.day == day]),
            "this_month": summed(list(ledger)),
            **({"quota": quota} if quota is not None else {}),
        }
    )


def render_account(info: dict[str, Any]) -> str:
    """`openrouter://account`: what `/key` and `/credits` say (never the key)."""
    return _json(info)


def render_benchmark_index(reports: Sequence[BenchmarkReport]) -> str:
    """`benchmark://reports`: one line per benchmark."""
    return _json(
        [
            {
                "benchmark_id": r.benchmark_id,
                "status": r.status,
                "models": r.params.models,
                "prompts": len(r.params.prompts),
                "objective": r.params.objective,
                "ranking": r.ranking,
                "cost_usd": r.totals.cost_usd,
                "created_at": r.created_at,
            }
            for r in reports
        ]
    )


def render_research_index(runs: Sequence[RunSummary]) -> str:
    """`research://reports`: one line per saved run."""
    return _json([dataclasses.asdict(r) for r in runs])
