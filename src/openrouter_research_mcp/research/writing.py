"""The report: an outline for long reports, the writer, and the check of every citation against its source.

The writer cites `[n "quote"]`. Code removes links to pages the run never saw and reads the marks (`marks.py`),
then answers two questions per citation (`citations.py`): is the quote on page n (provenance, in code), and does
page n support the claim (support: the verifier model, in batches; code only where the claim is the page's own
words). When the writer cannot run (time, budget, an outage), the report is assembled in code from the researchers'
findings, whose own citations are checked the same way.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import OpenRouterError
from ..openrouter.models import ModelInfo
from ..openrouter.pricing import estimate_prompt_tokens, worst_case_cost
from .citations import (
    REMOVED_UNKNOWN,
    REMOVED_UNSUPPORTED,
    CitationCheck,
    Mark,
    Verification,
    check_provenance,
    mark_text,
)
from .marks import extract, restore
from .planning import (
    OUTLINE_MAX_TOKENS,
    VERIFY_BATCH,
    VERIFY_CONCURRENCY,
    VERIFY_ITEM_CHARS,
    VERIFY_MAX_TOKENS,
    WRITE_MAX_TOKENS,
    research_calls,
    verify_cost,
    writer_chars,
)
from .prompts import VERIFY_SCHEMA, outline_messages, verify_item, verify_messages, write_messages
from .provenance import Page
from .run import ResearchRun, Stop, SubQuestion
from .support import batch_size_for, check_verdicts, support_in_code, verify_claims
from .verify import source_list, verify_citations

if TYPE_CHECKING:
    from .engine import ActiveRun

__all__ = ["finish_hold", "keep_partial_report", "write_report"]

log = logging.getLogger(__name__)


def finish_hold(run: ResearchRun, models: Mapping[str, ModelInfo | None]) -> float | None:
    """What finishing may cost at worst (outline, writer, verifier): set aside before anything else is spent, so a
    report can always be written and checked."""
    p, plan = run.params, run.plan
    if plan is None:
        return None
    chars = writer_chars(p, research_calls(plan.breadth, plan.depth))
    calls: list[tuple[str, int, int]] = [(p.writer_model, chars, WRITE_MAX_TOKENS[plan.report_length])]
    if plan.report_length == "long":
        calls.append((p.writer_model, chars, OUTLINE_MAX_TOKENS))
    total = 0.0
    for model, prompt_chars, tokens in calls:
        info = models.get(model)
        cost = worst_case_cost(info.pricing, prompt_chars, tokens) if info else None
        if cost is None:
            return None
        total += cost
    checking = verify_cost(models.get(p.planner_model), plan.verify_citations)
    return None if checking == float("inf") else total + checking


def _assembled(question: str, done: Sequence[SubQuestion], open_questions: Sequence[str]) -> str:
    """A plain report built in code from the findings (with their citations and quotes), for when no writer runs."""
    lines = [f"# {question}", "", "_Assembled from the research findings without a writer model._", ""]
    if not done:
        lines.append("No findings were gathered before the run stopped.")
    for sq in done:
        lines += [f"## {sq.question}", "", sq.finding.strip(), ""]
    if open_questions:
        lines += ["## Open questions", "", *(f"- {q}" for q in open_questions)]
    return "\n".join(lines)


def _pages(active: ActiveRun) -> dict[int, Page]:
    """Every source's evidence (what the researchers saw of it), ready to be searched for quotes."""
    return {e.n: Page.of(active.ledger.evidence_for(e.n) or e.snippet) for e in active.ledger.entries}


def _checked(active: ActiveRun, text: str) -> tuple[str, list[Mark], dict[int, Page], int]:
    """The report with links to unseen pages removed and citations as placeholders, its citations with their
    provenance checked, the pages, and how many links were removed."""
    placeholders, cited = extract(text)
    placeholders, removed_links = verify_citations(placeholders, active.ledger)
    marks = [Mark.of(c) for c in cited]
    pages = _pages(active)
    check_provenance(marks, pages)
    support_in_code(marks, pages)
    return placeholders, marks, pages, removed_links


def _judge(active: ActiveRun) -> Any:
    model = active.run.params.planner_model

    async def judge(batch: Sequence[Mark]) -> dict[str, Any]:
        items = []
        for mark in batch:
            notes = []
            if mark.quote and not mark.quote_found:
                notes.append(f"The writer's quote was not found on this page ({mark.reason}).")
            if mark.missing_numbers:
                figures = ", ".join(mark.missing_numbers)
                notes.append(f"The passage does not contain these figures of the claim: {figures}.")
            items.append(verify_item(mark.index, mark.claim, mark.quote, mark.passage, notes))
        return await active.structured(
            "verify",
            model,
            verify_messages(items),
            VERIFY_MAX_TOKENS,
            "citation_check",
            VERIFY_SCHEMA,
            check_verdicts([m.index for m in batch]),
        )

    return judge


async def _verify_with_model(active: ActiveRun, marks: list[Mark]) -> None:
    """Every cited claim not already decided goes to the verifier, in batches that fit its context."""
    plan, model = active.plan, active.run.params.planner_model
    info = active.models.get(model)
    item_tokens = estimate_prompt_tokens(VERIFY_ITEM_CHARS)
    size = batch_size_for(info.context_length if info else 0, VERIFY_MAX_TOKENS, item_tokens, VERIFY_BATCH)
    waiting = sum(m.support == "not_checked" and m.provenance not in ("unknown_source", "unreadable") for m in marks)
    if not waiting:
        return
    await active.say(f"checking {min(waiting, plan.verify_citations)} cited claim(s) with {model}")
    notes = await verify_claims(
        marks, _judge(active), limit=plan.verify_citations, batch_size=size, concurrency=VERIFY_CONCURRENCY
    )
    for note in notes:
        if note not in active.run.warnings:
            active.run.warnings.append(note)


def _method(active: ActiveRun) -> str:
    run, p = active.run, active.run.params
    calls = sum(1 for r in run.rounds for sq in r.sub_questions if sq.status in ("done", "failed"))
    seconds = time.monotonic() - active.started + run.timings.get("earlier_s", 0.0)
    lines = [
        "## Method",
        "",
        f"{run.searches} web searches and {run.pages_read} pages read by {calls} researcher calls "
        f"(`{p.searcher_model}`) over {len(run.rounds)} round(s); planned by `{p.planner_model}`, written by "
        f"`{p.writer_model}`; ${run.cost_usd:.4f} and {seconds:.0f} s.",
    ]
    if p.clarifications:
        lines.append("Asked first: " + "; ".join(f"{k}: {v}" for k, v in p.clarifications.items() if v) + ".")
    if p.assumptions:
        lines.append("Assumed (no one could be asked): " + "; ".join(p.assumptions) + ".")
    return "\n".join(lines)


def render_marks(text: str, marks: Sequence[Mark]) -> str:
    """The reader's text: each citation as its mark (see `citations.py`); a claim left with no citation at all by a
    removed one says so."""
    by_index = {m.index: m for m in marks}
    removed_as: dict[int, str] = {}

    def show(index: int) -> str:
        mark = by_index[index]
        shown = mark_text(mark)
        if shown:
            return shown
        removed_as[index] = REMOVED_UNKNOWN if mark.provenance == "unknown_source" else REMOVED_UNSUPPORTED
        return f"\x01{index}\x01"

    out = restore(text, show)

    def removed(match: re.Match[str]) -> str:
        beside = out[: match.start()].endswith(("]", "\x01")) or _next_is_mark(out[match.end() :])
        if beside:
            return ""
        note = removed_as[int(match.group(1))]
        return ("" if out[: match.start()].endswith((" ", "\n")) else " ") + note

    out = re.sub("\x01(\\d+)\x01", removed, out)
    return re.sub(r"[ \t]+([.,;:])", r"\1", out)


def _next_is_mark(rest: str) -> bool:
    return re.match(r"\s*\[\d", rest) is not None


def _publish(active: ActiveRun, checked: str, marks: list[Mark], removed_links: int) -> None:
    run = active.run
    body = render_marks(checked, marks)
    run.citations = [CitationCheck.of(m) for m in marks]
    run.verification = Verification.of(marks, len(active.ledger), run.params.planner_model)
    run.removed_citations = removed_links + run.verification.removed
    run.sources = list(active.ledger.entries)
    run.evidence = dict(active.ledger.evidence)
    if run.verification.uncited:
        warning = run.verification.line()
        if warning not in run.warnings:
            run.warnings.append(warning)
    legend = run.verification.legend(marks)
    closing = (f"_{legend}_\n\n" if legend else "") + f"_{run.verification.line()}_"  # the line says what was proven
    run.report = f"{body.rstrip()}\n\n{_method(active)}\n\n{source_list(active.ledger)}\n\n{closing}\n"


async def keep_partial_report(active: ActiveRun) -> None:
    """A report assembled in code from the findings so far (no model call), for runs that end abruptly."""
    run = active.run
    text = _assembled(run.params.question, active.done(), run.open_questions)
    checked, marks, _pages, removed = await asyncio.to_thread(_checked, active, text)
    _publish(active, checked, marks, removed)


async def write_report(active: ActiveRun) -> None:
    """Write the report (after an outline, for a long one), check every citation, and publish it in the run."""
    run, p, plan = active.run, active.run.params, active.plan
    await active.say("writing the report")
    done = active.done()
    partial = run.stopped_because not in (None, "done")
    t = time.monotonic()
    text = ""
    try:
        if done:
            outline = ""
            if plan.report_length == "long":
                messages = outline_messages(p.question, done)
                reservation = active.reserve(
                    "outline", p.writer_model, sum(len(m["content"]) for m in messages), OUTLINE_MAX_TOKENS
                )
                outline = (await active.call("outline", p.writer_model, messages, OUTLINE_MAX_TOKENS, reservation)).text
            messages = write_messages(
                p.question,
                done,
                active.ledger.entries,
                active.ledger.evidence_for,
                partial=partial,
                length=plan.report_length,
                outline=outline,
                clarifications=p.clarifications,
            )
            tokens = WRITE_MAX_TOKENS[plan.report_length]
            reservation = active.reserve("write", p.writer_model, sum(len(m["content"]) for m in messages), tokens)
            text = (await active.call("write", p.writer_model, messages, tokens, reservation)).text
    except (Stop, OpenRouterError) as exc:
        log.warning("writer unavailable (%s); assembling the report from the findings", exc)
    run.timings["write_s"] = round(time.monotonic() - t, 3)
    if not text.strip():
        text = _assembled(p.question, done, run.open_questions)
    checked, marks, _pages, removed = await asyncio.to_thread(_checked, active, text)  # CPU work, off the loop
    if plan.verify_citations:
        t = time.monotonic()
        await _verify_with_model(active, marks)
        run.timings["verify_s"] = round(time.monotonic() - t, 3)
    _publish(active, checked, marks, removed)
