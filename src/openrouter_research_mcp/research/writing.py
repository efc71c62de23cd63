"""The report: an outline for long reports, the writer, and the check of its citations (`checking.py`).

Writing needs little from the run it finishes, and gets only that (`Drafting`): the question and models, the plan,
the ledger of sources and evidence, the findings, a way to report progress, and calls made on the run's budget.
It returns a `Report` for the run to keep. When the writer cannot run (time, budget, an outage), the report is
assembled in code from the researchers' findings, whose own citations are checked the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._util import usd
from ..errors import OpenRouterError
from ..openrouter.models import ModelInfo
from ..openrouter.pricing import worst_case_cost
from ..openrouter.tokens import unseen_tokens
from .checking import Checked, Structured, check_report, verify_marks
from .citations import CitationCheck, Verification
from .ledger import CitationLedger
from .planning import (
    OUTLINE_MAX_TOKENS,
    VERIFY_BATCH,
    VERIFY_ITEM_CHARS,
    VERIFY_MAX_TOKENS,
    WRITE_MAX_TOKENS,
    research_calls,
    verify_cost,
    verify_limit,
    writer_tokens,
)
from .prompts import outline_messages, write_messages
from .run import ResearchParams, ResearchPlan, ResearchRun, Stage, Stop, SubQuestion
from .support import batch_size_for, needs_verifier
from .verify import source_list

__all__ = ["Drafting", "MethodFacts", "Report", "assemble_report", "finish_hold", "write_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodFacts:
    """What the report's Method section says the research did."""

    searches: int
    pages_read: int
    researcher_calls: int
    rounds: int
    cost_usd: float
    seconds: float


class Drafting(Protocol):
    """What writing and checking a report needs from the run being carried out."""

    @property
    def params(self) -> ResearchParams: ...

    @property
    def plan(self) -> ResearchPlan: ...

    @property
    def ledger(self) -> CitationLedger: ...

    @property
    def open_questions(self) -> list[str]: ...

    @property
    def partial(self) -> bool:
        """The research stopped early (budget, time, a cancel)."""

    def findings(self) -> list[SubQuestion]: ...

    def model_info(self, model: str) -> ModelInfo | None:
        """The model's catalog entry: its price and context (None when unknown)."""

    @property
    def budget_left(self) -> float:
        """USD of the run's budget neither spent nor set aside for a call in flight."""

    def facts(self) -> MethodFacts: ...

    async def say(self, message: str) -> None: ...

    async def complete(self, stage: Stage, model: str, messages: list[dict[str, Any]], max_tokens: int) -> str:
        """One call on the run's budget; raises `Stop` when it cannot start, `OpenRouterError` when it fails."""

    async def structured(
        self,
        stage: Stage,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        name: str,
        schema: dict[str, Any],
        check: Any,
    ) -> Any: ...


@dataclass
class Report:
    """A finished report and what was proven about its citations."""

    text: str
    citations: list[CitationCheck]
    verification: Verification
    removed: int  # citations and links removed: unsupported, of unknown sources, or to pages never seen
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # the run's duration as the Method section states it


def finish_hold(run: ResearchRun, models: Mapping[str, ModelInfo | None]) -> float | None:
    """What finishing may cost at worst (outline, writer, verifier): set aside before anything else is spent, so a
    report can always be written and checked."""
    p, plan = run.params, run.plan
    if plan is None:
        return None
    prompt = writer_tokens(p, research_calls(plan.breadth, plan.depth))
    calls: list[tuple[str, int, int]] = [(p.writer_model, prompt, WRITE_MAX_TOKENS[plan.report_length])]
    if plan.report_length == "long":
        calls.append((p.writer_model, prompt, OUTLINE_MAX_TOKENS))
    total = 0.0
    for model, prompt_tokens, tokens in calls:
        info = models.get(model)
        cost = worst_case_cost(info.pricing, prompt_tokens, tokens) if info else None
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


def _method(p: ResearchParams, facts: MethodFacts, writer: str | None) -> str:
    written = f"written by `{writer}`" if writer else "assembled in code from the findings (no writer model ran)"
    lines = [
        "## Method",
        "",
        f"{facts.searches} web searches and {facts.pages_read} pages read by {facts.researcher_calls} researcher "
        f"calls (`{p.searcher_model}`) over {facts.rounds} round(s); planned by `{p.planner_model}`, {written}; "
        f"{usd(facts.cost_usd)} and {facts.seconds:.1f} s.",
    ]
    if p.clarifications:
        lines.append("Asked first: " + "; ".join(f"{k}: {v}" for k, v in p.clarifications.items() if v) + ".")
    if p.assumptions:
        lines.append("Assumed (no one could be asked): " + "; ".join(p.assumptions) + ".")
    return "\n".join(lines)


def _publish(d: Drafting, checked: Checked, writer: str | None, timings: dict[str, float]) -> Report:
    verification = checked.verification(len(d.ledger), d.params.planner_model)
    warnings = list(checked.notes)
    if verification.uncited:
        warnings.append(verification.line())
    legend = verification.legend(checked.marks)
    closing = (f"_{legend}_\n\n" if legend else "") + f"_{verification.line()}_"  # the last line: what was proven
    facts = d.facts()
    text = f"{checked.body().rstrip()}\n\n{_method(d.params, facts, writer)}\n\n{source_list(d.ledger)}\n\n{closing}\n"
    return Report(
        text=text,
        citations=checked.citations(),
        verification=verification,
        removed=checked.removed_links + verification.removed,
        warnings=warnings,
        timings=timings,
        seconds=facts.seconds,
    )


async def assemble_report(d: Drafting) -> Report:
    """A report assembled in code from the findings so far (no model call), for runs that end abruptly."""
    text = _assembled(d.params.question, d.findings(), d.open_questions)
    return _publish(d, await check_report(text, d.ledger), None, {})


async def write_report(d: Drafting) -> Report:
    """Write the report (after an outline, for a long one), check every citation, and return it."""
    p, plan = d.params, d.plan
    await d.say("writing the report")
    done = d.findings()
    timings: dict[str, float] = {}
    t = time.monotonic()
    text, writer = "", None
    try:
        if done:
            outline = ""
            if plan.report_length == "long":
                outline = await d.complete(
                    "outline", p.writer_model, outline_messages(p.question, done), OUTLINE_MAX_TOKENS
                )
            messages = write_messages(
                p.question,
                done,
                d.ledger.entries,
                d.ledger.evidence_for,
                partial=d.partial,
                length=plan.report_length,
                outline=outline,
                clarifications=p.clarifications,
            )
            text = await d.complete("write", p.writer_model, messages, WRITE_MAX_TOKENS[plan.report_length])
            writer = p.writer_model if text.strip() else None
    except (Stop, OpenRouterError) as exc:
        log.warning("writer unavailable (%s); assembling the report from the findings", exc)
    timings["write_s"] = round(time.monotonic() - t, 3)
    if not text.strip():
        text = _assembled(p.question, done, d.open_questions)
    checked = await check_report(text, d.ledger)
    if plan.verify_citations:
        t = time.monotonic()
        model = p.planner_model

        async def structured(
            messages: list[dict[str, Any]], max_tokens: int, name: str, schema: Any, check: Any
        ) -> Any:
            return await d.structured("verify", model, messages, max_tokens, name, schema, check)

        info = d.model_info(model)
        context = info.context_length if info else 0
        size = batch_size_for(context, VERIFY_MAX_TOKENS, unseen_tokens(VERIFY_ITEM_CHARS), VERIFY_BATCH)
        waiting = sum(needs_verifier(m) for m in checked.marks)
        limit = verify_limit(info, waiting, d.budget_left, size)  # every cited claim, when the budget left allows
        if limit:
            await d.say(f"checking {limit} cited claim(s) with {model}")
        judge: Structured = structured
        await verify_marks(checked, judge, limit=limit, batch_size=size)
        timings["verify_s"] = round(time.monotonic() - t, 3)
    return _publish(d, checked, writer, timings)
