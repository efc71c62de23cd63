"""Every citation checked against the text of the page it cites.

The writer backs each `[n]` with a short verbatim quote from source n, written `[n "quote"]`. Code finds the quote
in the evidence kept for source n (the text the researcher saw: search passages and read pages), after normalising
case, whitespace and punctuation. An exact find verifies the citation; so does a close match (RapidFuzz's best
partial alignment scoring at least QUOTE_MATCH out of 100) whose numbers all appear in the matched passage, so a
changed figure never passes as a near miss. Anything else is unverified, for the optional model verifier to judge;
what it calls unsupported is removed. The quotes never reach the reader's text: they become `[n]` (verified) or
`[n?]` (unverified), and the structured result keeps them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field
from rapidfuzz import fuzz

__all__ = [
    "MIN_QUOTE_CHARS",
    "QUOTE_MATCH",
    "CitationCheck",
    "Mark",
    "Verification",
    "extract_marks",
    "normalise",
    "quote_in",
    "check_quotes",
    "render_marks",
]

QUOTE_MATCH = 90.0  # the least RapidFuzz partial_ratio (0-100) for a quote to count as found
MIN_QUOTE_CHARS = 12  # a shorter quote proves nothing ("in 2020" is on many pages): it goes to the verifier
# [n], [n "quote"], [n: "quote"], with straight or curly quotes; also a plain group such as [1, 2]
_MARK = re.compile(r'\[(\d{1,3})\s*[:,]?\s*["“]([^"”\n]{1,600})["”]\s*\]|\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]')
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
_SENTENCE_END = re.compile(r"(?:[.!?]\s+|\n)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"(?<=\d)[,\u202f\u00a0](?=\d{3}(?!\d))")


def normalise(text: str) -> str:
    """Lower case, compatibility-normalised, thousands separators dropped, punctuation as spaces, whitespace
    collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _THOUSANDS.sub("", text)  # 80,000 and 80000 are one number
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(text.split())


def quote_in(quote: str, evidence: str) -> tuple[bool, float]:
    """Whether `quote` is in `evidence` (see the module docstring), and the match score (0-100)."""
    wanted, haystack = normalise(quote), normalise(evidence)
    if not wanted or not haystack:
        return False, 0.0
    if wanted in haystack:
        return len(wanted) >= MIN_QUOTE_CHARS, 100.0
    if len(wanted) < MIN_QUOTE_CHARS:
        return False, 0.0
    alignment = fuzz.partial_ratio_alignment(wanted, haystack)
    if alignment is None or alignment.score < QUOTE_MATCH:
        return False, alignment.score if alignment is not None else 0.0
    passage = haystack[max(alignment.dest_start - 2, 0) : alignment.dest_end + 2]
    numbers_kept = all(number in passage for number in _NUMBER.findall(wanted))
    return numbers_kept, alignment.score


@dataclass
class Mark:
    """One citation in the writer's text: the source it names, its quote (if any) and the claim it backs."""

    index: int
    n: int
    quote: str = ""
    claim: str = ""
    status: Literal["verified", "unverified", "removed"] = "unverified"
    method: Literal["quote", "model", "none"] = "none"
    score: float = 0.0


def extract_marks(report: str) -> tuple[str, list[Mark]]:
    """The report with each citation replaced by a placeholder, and the citations in order with their claims."""
    marks: list[Mark] = []

    def take(match: re.Match[str]) -> str:
        if match.group(1):
            found = [(int(match.group(1)), match.group(2).strip())]
        else:
            found = [(int(n), "") for n in re.split(r"\s*,\s*", match.group(3))]
        out = ""
        for n, quote in found:
            marks.append(Mark(index=len(marks), n=n, quote=quote))
            out += f"\x00{marks[-1].index}\x00"
        return out

    text = _MARK.sub(take, report)
    # The claim of a citation is the sentence that ends at it (read without the other citations).
    for match in _PLACEHOLDER.finditer(text):
        mark = marks[int(match.group(1))]
        before = _PLACEHOLDER.sub("", text[: match.start()]).rstrip()
        start = max((m.end() for m in _SENTENCE_END.finditer(before)), default=0)
        mark.claim = " ".join(before[start:].split()).lstrip("#-*> ").strip()[:400]
    return text, marks


def render_marks(text: str, marks: list[Mark]) -> str:
    """The reader's text: `[n]` for a verified citation, `[n?]` for an unverified one, nothing for a removed one
    (a claim left with no citation at all says so)."""

    def put(match: re.Match[str]) -> str:
        mark = marks[int(match.group(1))]
        if mark.status == "verified":
            return f"[{mark.n}]"
        return f"[{mark.n}?]" if mark.status == "unverified" else "\x01"

    out = _PLACEHOLDER.sub(put, text)

    def removed(match: re.Match[str]) -> str:
        # Beside a kept citation, a removed one just goes; a claim left with none says so.
        beside = out[: match.start()].endswith("]") or re.match(r"\s*\[\d", out[match.end() :]) is not None
        if beside:
            return ""
        return ("" if out[: match.start()].endswith((" ", "\n")) else " ") + "[citation removed: unsupported]"

    out = re.sub("\x01+", removed, out)
    return re.sub(r"[ \t]+([.,;:])", r"\1", out)


class CitationCheck(BaseModel):
    """How one citation in the report was checked."""

    n: int = Field(description="the source it cites")
    claim: str = Field(description="the sentence it backs")
    quote: str = Field(default="", description="the writer's quote from the source")
    status: Literal["verified", "unverified", "removed"]
    method: Literal["quote", "model", "none"] = Field(description="how it was verified, if it was")
    score: float = Field(default=0.0, description="quote match, 0-100")

    @classmethod
    def of(cls, mark: Mark) -> CitationCheck:
        return cls(
            n=mark.n,
            claim=mark.claim,
            quote=mark.quote,
            status=mark.status,
            method=mark.method,
            score=round(mark.score, 1),
        )


class Verification(BaseModel):
    """The report's citations, counted by how they were checked."""

    claims: int = 0
    citations: int = 0
    verified_by_quote: int = 0
    verified_by_model: int = 0
    unverified: int = 0
    removed: int = 0

    @classmethod
    def of(cls, marks: Iterable[Mark]) -> Verification:
        marks = list(marks)
        return cls(
            claims=len({m.claim for m in marks}),
            citations=len(marks),
            verified_by_quote=sum(m.status == "verified" and m.method == "quote" for m in marks),
            verified_by_model=sum(m.status == "verified" and m.method == "model" for m in marks),
            unverified=sum(m.status == "unverified" for m in marks),
            removed=sum(m.status == "removed" for m in marks),
        )

    def line(self) -> str:
        """The sentence that ends every report, e.g. "31 of 33 citations verified against their sources; 2 removed."."""
        if not self.citations:
            return "No citations to verify."
        verified = self.verified_by_quote + self.verified_by_model
        parts = [f"{verified} of {self.citations} citations verified against their sources"]
        if self.verified_by_model:
            parts[0] += f" ({self.verified_by_model} by a verifier model)"
        if self.unverified:
            parts.append(f"{self.unverified} unverified, marked [n?]")
        if self.removed:
            parts.append(f"{self.removed} removed")
        return "; ".join(parts) + "."


def check_quotes(marks: list[Mark], evidence: Mapping[int, str], known: set[int]) -> None:
    """Set each mark's status from its quote: removed when it names no known source, verified when its quote is
    found in that source's evidence, unverified otherwise."""
    for mark in marks:
        if mark.n not in known:
            mark.status, mark.method = "removed", "none"
            continue
        found, score = quote_in(mark.quote, evidence.get(mark.n, "")) if mark.quote else (False, 0.0)
        mark.score = score
        mark.status, mark.method = ("verified", "quote") if found else ("unverified", "none")
