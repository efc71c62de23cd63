"""Every citation of a report, and what was proven about it: two questions, two names.

*Provenance* (code, `provenance.py`): is the writer's quote on the page it cites? *Support* (`support.py`): does that
page support the claim the citation backs? A verifier model judges support, reading the claim, the quote and the
passage of the page around it; code decides it alone only where the claim restates its own quote word for word and
that quote is a whole sentence of the page. The reader sees:

- `[n]`: the cited page supports the claim (the verifier said so, or the claim is a whole sentence of the page);
- `[n?]`: partly supported, unclear, not checked with the quote missing, or a mark that could not be read;
- `[n†]`: the quote is on the cited page, but nobody checked the claim (no verifier, or its budget ran out);
- nothing: unsupported, or citing a source the research never found (removed, and a claim left without any
  citation says so).

A found quote is "quote found", never "verified" by itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from .marks import Cited, restore

if TYPE_CHECKING:
    from .provenance import Page

__all__ = [
    "CitationCheck",
    "Mark",
    "Provenance",
    "Shown",
    "Support",
    "Verification",
    "check_provenance",
    "mark_text",
    "render_marks",
]

Provenance = Literal[
    "found", "variant", "not_found", "too_short", "no_quote", "elsewhere", "unknown_source", "unreadable"
]
Support = Literal["supported", "partly", "unsupported", "cannot_tell", "not_checked"]
Shown = Literal["supported", "doubtful", "quote_found", "removed"]
REMOVED_UNSUPPORTED = "[citation removed: unsupported]"
REMOVED_UNKNOWN = "[citation removed: not a source of this report]"


@dataclass
class Mark:
    """One citation being checked: what the writer wrote, and what code and the verifier found."""

    index: int
    n: int
    quote: str = ""
    claim: str = ""
    provenance: Provenance = "no_quote"
    support: Support = "not_checked"
    checked_by: Literal["model", "code", "none"] = "none"
    reason: str = ""
    score: float = 0.0
    elsewhere: int | None = None
    missing_numbers: list[str] = field(default_factory=list)
    passage: str = ""

    @classmethod
    def of(cls, cited: Cited) -> Mark:
        return cls(
            index=cited.index,
            n=cited.n,
            quote=cited.quote,
            claim=cited.claim,
            provenance="no_quote" if cited.readable else "unreadable",
        )

    @property
    def quote_found(self) -> bool:
        return self.provenance in ("found", "variant")

    @property
    def shown(self) -> Shown:
        if self.provenance == "unknown_source" or self.support == "unsupported":
            return "removed"
        if self.support == "supported":
            return "supported"
        if self.support == "not_checked" and self.quote_found and not self.missing_numbers:
            return "quote_found"
        return "doubtful"


def mark_text(mark: Mark) -> str:
    """What the reader sees for a citation that stays (empty for a removed one)."""
    return {"supported": f"[{mark.n}]", "doubtful": f"[{mark.n}?]", "quote_found": f"[{mark.n}†]"}.get(mark.shown, "")


def render_marks(text: str, marks: Sequence[Mark]) -> str:
    """The reader's text: each citation's placeholder as its mark; a claim left with no citation at all by removed
    ones says so."""
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
        beside = out[: match.start()].endswith(("]", "\x01")) or re.match(r"\s*\[\d", out[match.end() :]) is not None
        if beside:
            return ""
        note = removed_as[int(match.group(1))]
        return ("" if out[: match.start()].endswith((" ", "\n")) else " ") + note

    out = re.sub("\x01(\\d+)\x01", removed, out)
    return re.sub(r"[ \t]+([.,;:])", r"\1", out)


def check_provenance(marks: Sequence[Mark], pages: Mapping[int, Page]) -> None:
    """Set each mark's provenance: unknown source, no quote, too short, found (or as a variant), found on another
    source, or not found; and keep the passage of the cited page a verifier would read, with the claim's figures
    that neither the quote nor that passage contains."""
    from .provenance import find_quote, missing_numbers, passage  # its tables load on first use, not at start-up

    for mark in marks:
        if mark.n not in pages:
            mark.provenance = "unknown_source"
            mark.reason = f"source {mark.n} is not one this research found"
            continue
        page = pages[mark.n]
        found = None
        if mark.provenance != "unreadable" and mark.quote:
            found = find_quote(mark.quote, page)
            mark.score = found.score
            if found.ok:
                mark.provenance = "variant" if found.kind == "variant" else "found"
                mark.reason = f"quote found ({found.reason})" if found.reason else "quote found"
            elif found.kind == "too_short":
                mark.provenance, mark.reason = "too_short", found.reason
            else:
                mark.provenance, mark.reason = "not_found", f"quote not on the page: {found.reason}"
                for other, other_page in pages.items():
                    if other != mark.n and find_quote(mark.quote, other_page).ok:
                        mark.provenance, mark.elsewhere = "elsewhere", other
                        mark.reason = f"the quote is from source {other}, not source {mark.n}"
                        break
        mark.passage = passage(page, found, f"{mark.claim} {mark.quote}")
        mark.missing_numbers = missing_numbers(mark.claim, mark.quote if mark.quote_found else "", mark.passage)


class CitationCheck(BaseModel):
    """How one citation of the report was checked."""

    n: int = Field(description="the source it cites")
    claim: str = Field(description="the sentence it backs")
    quote: str = Field(default="", description="the writer's quote from the source")
    quote_found: bool = Field(description="the quote is on the cited page (checked in code)")
    provenance: Provenance = Field(
        description="found, variant (spelling only), not_found, too_short, no_quote, elsewhere (on another "
        "source), unknown_source, unreadable"
    )
    support: Support = Field(description="whether the cited page supports the claim, and by whom it was judged")
    checked_by: Literal["model", "code", "none"]
    shown: str = Field(description="the reader's mark: [n], [n?], [n†] or removed")
    reason: str = Field(default="", description="the verifier's or the code's one-line reason")
    score: float = Field(default=0.0, description="share of the quote's words matched on the page, 0-100")
    elsewhere: int | None = Field(default=None, description="the source the quote is really from")
    missing_numbers: list[str] = Field(default_factory=list, description="claim figures not on the cited page")

    @classmethod
    def of(cls, mark: Mark) -> CitationCheck:
        return cls(
            n=mark.n,
            claim=mark.claim,
            quote=mark.quote,
            quote_found=mark.quote_found,
            provenance=mark.provenance,
            support=mark.support,
            checked_by=mark.checked_by,
            shown=mark_text(mark) or "removed",
            reason=mark.reason[:300],
            score=round(mark.score, 1),
            elsewhere=mark.elsewhere,
            missing_numbers=mark.missing_numbers,
        )


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %"


class Verification(BaseModel):
    """What was proven about the report's citations, counted (FACT-style figures included)."""

    citations: int = 0
    claims: int = 0
    quotes_found: int = Field(default=0, description="quotes on their cited page (code)")
    supported: int = Field(default=0, description="claims the cited page supports (verifier or code)")
    supported_by_code: int = Field(default=0, description="of those, claims that are their quote, a page sentence")
    partly: int = 0
    cannot_tell: int = 0
    unsupported: int = Field(default=0, description="removed: the verifier found the page does not support them")
    not_checked: int = Field(default=0, description="claims no model or code judged")
    unknown_source: int = Field(default=0, description="removed: the source is not one the research found")
    unreadable: int = Field(default=0, description="marks the parser could not read")
    removed: int = 0
    checked_by_model: int = 0
    verifier_model: str | None = None
    citation_accuracy: float | None = Field(
        default=None, description="supported ÷ claims checked (by the verifier or code), 0-1"
    )
    supported_citations: int = Field(default=0, description="citations whose claim is supported")
    sources: int = Field(default=0, description="sources the report could cite")

    @classmethod
    def of(cls, marks: Iterable[Mark], sources: int = 0, verifier_model: str | None = None) -> Verification:
        marks = list(marks)
        supported = sum(m.support == "supported" for m in marks)
        checked = sum(m.support != "not_checked" for m in marks)
        unsupported = sum(m.support == "unsupported" for m in marks)
        unknown = sum(m.provenance == "unknown_source" for m in marks)
        by_model = sum(m.checked_by == "model" for m in marks)
        return cls(
            citations=len(marks),
            claims=len({m.claim for m in marks}),
            quotes_found=sum(m.quote_found for m in marks),
            supported=supported,
            supported_by_code=sum(m.support == "supported" and m.checked_by == "code" for m in marks),
            partly=sum(m.support == "partly" for m in marks),
            cannot_tell=sum(m.support == "cannot_tell" for m in marks),
            unsupported=unsupported,
            not_checked=sum(m.support == "not_checked" and m.provenance != "unknown_source" for m in marks),
            unknown_source=unknown,
            unreadable=sum(m.provenance == "unreadable" for m in marks),
            removed=unsupported + unknown,
            checked_by_model=by_model,
            verifier_model=verifier_model if by_model else None,
            citation_accuracy=round(supported / checked, 4) if checked else None,
            supported_citations=supported,
            sources=sources,
        )

    @property
    def uncited(self) -> bool:
        """The report has sources but cites none of them."""
        return self.sources > 0 and self.citations == 0

    def line(self) -> str:
        """The sentence that ends every report: what was proven, and by whom."""
        if not self.citations:
            if self.sources:
                return (
                    f"The writer cited none of the {self.sources} sources: no claim in this report is backed by a "
                    "checked citation."
                )
            return "No sources were found, so nothing in this report is cited."
        parts = [f"{self.citations} citations", f"{self.quotes_found} quotes found on the cited page"]
        if self.checked_by_model:
            judged = [f"{self.supported - self.supported_by_code} supported"]
            if self.partly:
                judged.append(f"{self.partly} partly supported [n?]")
            if self.cannot_tell:
                judged.append(f"{self.cannot_tell} unclear [n?]")
            if self.unsupported:
                judged.append(f"{self.unsupported} unsupported (removed)")
            model = f" (`{self.verifier_model}`)" if self.verifier_model else ""
            parts.append(
                f"a verifier model{model} judged {self.checked_by_model} claims against the cited page: "
                + ", ".join(judged)
            )
        else:
            parts.append("no claim was checked by a model")
        if self.supported_by_code:
            parts.append(
                f"{self.supported_by_code} claims are their quote, a sentence of the cited page (supported in code)"
            )
        if self.not_checked:
            parts.append(f"{self.not_checked} not checked ([n†] where the quote was found, else [n?])")
        if self.unknown_source:
            parts.append(f"{self.unknown_source} citing no source of this report (removed)")
        if self.unreadable:
            parts.append(f"{self.unreadable} marks could not be read")
        checked = self.citations - self.not_checked - self.unknown_source
        if checked:
            parts.append(
                f"citation accuracy {_pct(self.supported, checked)} ({self.supported} of {checked} checked "
                "claims supported)"
            )
        return "; ".join(parts) + "."

    def legend(self, marks: Iterable[Mark]) -> str:
        """What the marks that appear in the report mean."""
        shown = {m.shown for m in marks}
        meanings = {
            "supported": "[n] the cited page supports the claim",
            "doubtful": "[n?] partly supported, unclear, or not checked",
            "quote_found": "[n†] the quote is on the cited page, but the claim was not checked",
        }
        kept = [text for key, text in meanings.items() if key in shown]
        return "Marks: " + "; ".join(kept) + "." if kept else ""
