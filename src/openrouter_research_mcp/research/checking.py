"""The check of a report's citations, from the writer's text to what the reader is shown (see `citations.py`).

Code removes links to pages the research never saw, reads the marks, checks each quote's provenance and decides
support where the claim is its own quote, a whole sentence of the page; every other cited claim goes to the verifier
(`support.py`), as many as the budget left pays for, in batches that fit its context. The result is the reader's
text with its marks and what was proven, to publish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .citations import CitationCheck, Mark, Verification, check_provenance, render_marks
from .ledger import CitationLedger
from .marks import extract
from .planning import VERIFY_CONCURRENCY, VERIFY_MAX_TOKENS
from .prompts import VERIFY_SCHEMA, verify_item, verify_messages
from .support import check_verdicts, needs_verifier, support_in_code, verify_claims
from .verify import verify_citations

if TYPE_CHECKING:
    from .provenance import Page

__all__ = ["Checked", "Structured", "check_report", "verify_marks"]

# A structured call on the run's budget: (messages, max_tokens, schema name, schema, check) -> the checked JSON.
Structured = Callable[[list[dict[str, Any]], int, str, dict[str, Any], Callable[[str, str], Any]], Awaitable[Any]]


@dataclass
class Checked:
    """A report's text with its citations read and checked, ready to be shown."""

    text: str  # the report, citations as placeholders
    marks: list[Mark]
    removed_links: int
    notes: list[str] = field(default_factory=list)

    def body(self) -> str:
        """The reader's text, each citation as its mark."""
        return render_marks(self.text, self.marks)

    def citations(self) -> list[CitationCheck]:
        return [CitationCheck.of(m) for m in self.marks]

    def verification(self, sources: int, verifier_model: str) -> Verification:
        return Verification.of(self.marks, sources, verifier_model)


def _pages(ledger: CitationLedger) -> dict[int, Page]:
    """Every source's evidence (what the researchers saw of it), ready to be searched for quotes."""
    from .provenance import Page  # its tables load on first use, not at start-up

    return {e.n: Page.of(ledger.evidence_for(e.n) or e.snippet) for e in ledger.entries}


def _check(text: str, ledger: CitationLedger) -> Checked:
    placeholders, cited = extract(text)
    placeholders, removed_links = verify_citations(placeholders, ledger)
    marks = [Mark.of(c) for c in cited]
    pages = _pages(ledger)
    check_provenance(marks, pages)
    support_in_code(marks, pages)
    return Checked(placeholders, marks, removed_links)


async def check_report(text: str, ledger: CitationLedger) -> Checked:
    """Everything code can decide about the report's citations (CPU work: done on a worker thread)."""
    return await asyncio.to_thread(_check, text, ledger)


def _item(mark: Mark) -> str:
    notes = []
    if mark.quote and not mark.quote_found:
        notes.append(f"The writer's quote was not found on this page ({mark.reason}).")
    if mark.missing_numbers:
        notes.append(f"The passage does not contain these figures of the claim: {', '.join(mark.missing_numbers)}.")
    return verify_item(mark.index, mark.claim, mark.quote, mark.passage, notes)


async def verify_marks(checked: Checked, structured: Structured, *, limit: int, batch_size: int) -> int:
    """Send every claim code could not decide to the verifier (at most `limit`: what the budget left pays for), in
    batches of `batch_size`; returns how many were waiting. Notes on claims left unchecked join `checked.notes`."""
    waiting = sum(needs_verifier(m) for m in checked.marks)
    if not waiting:
        return 0

    async def judge(batch: Sequence[Mark]) -> Any:
        messages = verify_messages([_item(m) for m in batch])
        return await structured(
            messages, VERIFY_MAX_TOKENS, "citation_check", VERIFY_SCHEMA, check_verdicts([m.index for m in batch])
        )

    checked.notes += await verify_claims(
        checked.marks, judge, limit=limit, batch_size=batch_size, concurrency=VERIFY_CONCURRENCY
    )
    return waiting
