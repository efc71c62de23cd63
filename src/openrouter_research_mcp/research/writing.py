"""The report: an outline for long reports, the writer, and the check of every citation against its source.

The writer cites `[n "quote"]`. Code removes citations of sources the run never found and links to pages it never
saw, then checks each quote against source n's evidence (`quotes.py`). With `verify_with_model`, one structured
call to the planner model judges the claims whose quotes were not found: unsupported citations are removed, partly
supported ones stay marked. When the writer cannot run (time, budget, an outage), the report is assembled in code
from the researchers' findings, whose own quotes are checked the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz

from ..errors import OpenRouterError, StructuredOutputError
from ..openrouter.models import ModelInfo
from ..openrouter.pricing import worst_case_cost
from ..openrouter.structured import parse_object
from .planning import (
    OUTLINE_MAX_TOKENS,
    VERIFY_ITEM_CHARS,
    VERIFY_ITEMS,
    VERIFY_MAX_TOKENS,
    WRITE_MAX_TOKENS,
    research_calls,
    writer_chars,
)
from .prompts import VERIFY_SCHEMA, outline_messages, verify_messages, write_messages
from .quotes import CitationCheck, Mark, Verification, check_quotes, extract_marks, normalise, render_marks
from .run import ResearchRun, Stop, SubQuestion
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
    if plan.verify_with_model:
        calls.append((p.planner_model, VERIFY_ITEMS * VERIFY_ITEM_CHARS, VERIFY_MAX_TOKENS))
    total = 0.0
    for model, prompt_chars, tokens in calls:
        info = models.get(model)
        cost = worst_case_cost(info.pricing, prompt_chars, tokens) if info else None
        if cost is None:
            return None
        total += cost
    return total


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


def _passage(claim: str, evidence: str) -> str:
    """The part of `evidence` nearest to `claim`, as long as a verifier item allows."""
    if len(evidence) <= VERIFY_ITEM_CHARS:
        return evidence
    alignment = fuzz.partial_ratio_alignment(normalise(claim), evidence.lower())
    centre = (alignment.dest_start + alignment.dest_end) // 2 if alignment is not None else 0
    start = max(centre - VERIFY_ITEM_CHARS // 2, 0)
    return evidence[start : start + VERIFY_ITEM_CHARS]


def _verdicts(text: str, model: str) -> dict[str, Any]:
    data = parse_object(text, ["verdicts"], model)
    if not isinstance(data["verdicts"], list):
        raise StructuredOutputError(f"`{model}` returned verdicts that are not a list.", model=model)
    return data


async def _verify_with_model(active: ActiveRun, marks: list[Mark]) -> None:
    """Ask the planner model about the citations whose quotes were not found: supported ones become verified,
    unsupported ones are removed, partly supported ones stay unverified (marked)."""
    known = {e.n for e in active.ledger.entries}
    doubtful = [m for m in marks if m.status == "unverified" and m.n in known][:VERIFY_ITEMS]
    if not doubtful:
        return
    items = [(m.index, m.claim, _passage(m.claim, active.ledger.evidence_for(m.n))) for m in doubtful]
    model = active.run.params.planner_model
    await active.say(f"verifying {len(items)} citation(s) with {model}")
    try:
        data = await active.structured(
            "verify", model, verify_messages(items), VERIFY_MAX_TOKENS, "citation_check", VERIFY_SCHEMA, _verdicts
        )
    except (OpenRouterError, Stop) as exc:
        log.warning("the verifier model could not judge the citations (%s); they stay marked", exc)
        return
    by_index = {m.index: m for m in doubtful}
    for verdict in data["verdicts"]:
        if not isinstance(verdict, dict):
            continue
        index = verdict.get("id")
        mark = by_index.get(index) if isinstance(index, int) else None
        if mark is None:
            continue
        if verdict.get("verdict") == "supported":
            mark.status, mark.method = "verified", "model"
        elif verdict.get("verdict") == "unsupported":
            mark.status, mark.method = "removed", "model"


def _checked(active: ActiveRun, text: str) -> tuple[str, list[Mark], int]:
    """The report with citations as placeholders, its citations checked by quote, and how many links to pages the
    run never saw were removed."""
    placeholders, marks = extract_marks(text)
    checked, removed_links = verify_citations(placeholders, active.ledger)
    evidence = {e.n: active.ledger.evidence_for(e.n) or e.snippet for e in active.ledger.entries}
    check_quotes(marks, evidence, active.ledger.numbers())
    return checked, marks, removed_links


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


def _publish(active: ActiveRun, checked: str, marks: list[Mark], removed_links: int) -> None:
    run = active.run
    body = render_marks(checked, marks)
    run.citations = [CitationCheck.of(m) for m in marks]
    run.verification = Verification.of(marks)
    run.removed_citations = removed_links + run.verification.removed
    run.sources = list(active.ledger.entries)
    run.evidence = dict(active.ledger.evidence)
    run.report = (
        f"{body.rstrip()}\n\n{_method(active)}\n\n{source_list(active.ledger)}\n\n_{run.verification.line()}_\n"
    )


def keep_partial_report(active: ActiveRun) -> None:
    """A report assembled in code from the findings so far (no model call), for runs that end abruptly."""
    run = active.run
    checked, marks, removed = _checked(active, _assembled(run.params.question, active.done(), run.open_questions))
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
    checked, marks, removed = _checked(active, text)
    if plan.verify_with_model:
        t = time.monotonic()
        await _verify_with_model(active, marks)
        run.timings["verify_s"] = round(time.monotonic() - t, 3)
    _publish(active, checked, marks, removed)
