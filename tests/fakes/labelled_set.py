"""The hand-labelled citation set (`tests/fakes/labelled/`): realistic page text in several languages, and citations
of it labelled with the truth, for unit tests, the end-to-end test and the bench of the citation check.

`evaluate` runs the checker on every labelled citation as a report would: provenance in code, support in code where
the claim is its quote and a whole sentence of the page, and (with `verifier=True`) a verifier that answers as the
labels say, batched as the research engine batches it. Each outcome records what the code alone decided and what
the reader is shown.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrouter_research_mcp.research.citations import Mark, check_provenance
from openrouter_research_mcp.research.provenance import Page
from openrouter_research_mcp.research.support import support_in_code, verify_claims

from .answers import claim_key

if TYPE_CHECKING:
    from .openrouter import FakeOpenRouter

__all__ = [
    "FALSE_KINDS",
    "LabelledCitation",
    "LabelledPage",
    "MarkCase",
    "Outcome",
    "citations",
    "evaluate",
    "mark_cases",
    "pages",
    "research_scenario",
]

ROOT = Path(__file__).with_name("labelled")
FALSE_KINDS = (
    "false_negation",
    "false_antonym",
    "false_number",
    "false_entity",
    "false_reversal",
    "false_overgeneralisation",
    "false_table",
)


@dataclass(frozen=True)
class LabelledPage:
    id: str
    url: str
    title: str
    lang: str
    text: str


@dataclass(frozen=True)
class LabelledCitation:
    id: str
    page: str  # where the quote comes from
    cited: str  # the page the citation names
    kind: str
    claim: str
    quote: str
    quote_on_page: bool  # the truth for provenance on the cited page
    verdict: str  # the truth for support by the cited page: supported, partly or unsupported

    @property
    def lang(self) -> str:
        return self.cited.split("-", 1)[0]

    @property
    def false_claim(self) -> bool:
        return self.verdict != "supported"


@dataclass(frozen=True)
class MarkCase:
    id: str
    text: str
    marks: list[tuple[int, str]]
    leftover: int


@cache
def pages() -> dict[str, LabelledPage]:
    out = {}
    for path in sorted((ROOT / "pages").glob("*.txt")):
        head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        fields = dict(line.split(": ", 1) for line in head.splitlines())
        out[path.stem] = LabelledPage(path.stem, fields["url"], fields["title"], fields["lang"], body)
    return out


@cache
def citations() -> tuple[LabelledCitation, ...]:
    raw = json.loads((ROOT / "citations.json").read_text(encoding="utf-8"))
    keep = LabelledCitation.__dataclass_fields__
    return tuple(LabelledCitation(**{k: v for k, v in item.items() if k in keep}) for item in raw)


@cache
def mark_cases() -> tuple[MarkCase, ...]:
    raw: Any = json.loads((ROOT / "marks.json").read_text(encoding="utf-8"))
    cases = raw["cases"] if isinstance(raw, dict) else raw
    return tuple(
        MarkCase(c["id"], c["text"], [(int(n), str(q)) for n, q in c["marks"]], int(c["leftover"])) for c in cases
    )


@dataclass
class Outcome:
    """What the checker made of one labelled citation."""

    citation: LabelledCitation
    quote_found: bool  # provenance, decided in code
    code_shown: str  # the reader's mark with code alone: supported, doubtful, quote_found or removed
    shown: str  # the reader's mark after the verifier (equal to code_shown without one)
    mark: Mark


def numbered() -> tuple[dict[str, int], dict[int, Page]]:
    """Each labelled page as a numbered source, as a report's ledger numbers them."""
    ids = {page_id: n for n, page_id in enumerate(pages(), start=1)}
    return ids, {n: Page.of(pages()[page_id].text) for page_id, n in ids.items()}


def evaluate(chosen: Sequence[LabelledCitation] | None = None, *, verifier: bool = True) -> list[Outcome]:
    """Check every citation of `chosen` (default: the whole set) as a report would; see the module docstring."""
    chosen = list(citations() if chosen is None else chosen)
    ids, sources = numbered()
    marks = [Mark(index=i, n=ids[c.cited], quote=c.quote, claim=c.claim) for i, c in enumerate(chosen)]
    check_provenance(marks, sources)
    support_in_code(marks, sources)
    code_shown = [m.shown for m in marks]
    if verifier:

        async def oracle(batch: Sequence[Mark]) -> dict[str, Any]:
            return {"verdicts": {m.index: {"verdict": chosen[m.index].verdict, "reason": "as labelled"} for m in batch}}

        asyncio.run(verify_claims(marks, oracle, limit=len(marks), batch_size=10))
    return [
        Outcome(citation=c, quote_found=m.quote_found, code_shown=code, shown=m.shown, mark=m)
        for c, m, code in zip(chosen, marks, code_shown, strict=True)
    ]


_INNER_END = re.compile(r"[.!?]\s|[。！？].")


def research_scenario(fake: FakeOpenRouter, page_ids: Sequence[str], most: int = 90) -> list[LabelledCitation]:
    """Set `fake` up so a research run finds and reads `page_ids`, its writer cites them as the labels say (each
    claim on its own line), and its verifier answers as a correct one would. Returns the citations written: those
    of the pages whose claim is one sentence and unlike any other (the fake verifier knows a claim by its words)."""
    by_id = pages()
    fake.pages = {by_id[p].url: (by_id[p].title, by_id[p].text) for p in page_ids}
    # Each sub-question names its page, which the fake's page reading then reads (as a model given a URL does).
    fake.structured_answers["research_plan"] = {
        "sub_questions": [{"question": f"{by_id[p].title} ({by_id[p].url})", "rationale": "r"} for p in page_ids]
    }
    seen: set[str] = set()
    chosen: list[LabelledCitation] = []
    for c in citations():
        key = claim_key(c.claim)
        one_sentence = not _INNER_END.search(c.claim.rstrip(".。 "))
        if c.page in page_ids and c.cited in page_ids and one_sentence and key not in seen:
            seen.add(key)
            chosen.append(c)
    chosen = chosen[:most]
    fake.writer_extra = "\n".join(
        f'- {c.claim.rstrip(".。 ")} [{{source:{by_id[c.cited].url}}} "{c.quote}"].' for c in chosen
    )
    fake.verdicts = {claim_key(c.claim.rstrip(".。 ")): c.verdict for c in chosen}
    return chosen
