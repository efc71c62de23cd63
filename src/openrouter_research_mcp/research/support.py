"""Support: does the cited page support the claim? Judged by a verifier model for every cited claim, in batches
that fit its context; by code alone only where the claim restates its own quote, a whole sentence of the page.

The verifier reads, per citation, the claim, the writer's quote and the passage of the page around it (not the whole
page), with a note when the quote was not found there or when a figure of the claim is not in the passage. Its
verdicts are supported, partly, unsupported or cannot tell, each with a one-line reason. Code has the last word on
figures: a "supported" for a claim whose number the passage does not contain becomes "partly", since the passage
cannot support what it does not say.

Each batch is one structured call that `judge` makes (it reserves and settles its own money); a batch it cannot
pay for, or one that fails, leaves its citations "not checked", and the report says so.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import OpenRouterError, StructuredOutputError
from ..openrouter.structured import parse_object
from .citations import Mark
from .run import Stop

if TYPE_CHECKING:
    from .provenance import Page

__all__ = ["VERDICTS", "Judge", "batches", "check_verdicts", "needs_verifier", "support_in_code", "verify_claims"]

log = logging.getLogger(__name__)

VERDICTS = ("supported", "partly", "unsupported", "cannot_tell")
REASON_CHARS = 240
# A batch's verdicts and the call that gets them: `judge(items)` returns the parsed verdicts, or raises `Stop`
# (no money or time left) or an `OpenRouterError`.
Judge = Callable[[Sequence[Mark]], Awaitable[dict[str, Any]]]


def support_in_code(marks: Sequence[Mark], pages: Mapping[int, Page]) -> None:
    """A claim that restates its own quote word for word, that quote a whole sentence of the cited page, is
    supported by the page itself. Any other claim, even one whose words are all on the page, waits for the verifier
    (or stays not checked): the rest of the page's sentence may deny it."""
    from .provenance import claim_restates_quote  # loaded on first use, not at start-up

    for mark in marks:
        if (
            mark.provenance == "found"
            and mark.n in pages
            and not mark.missing_numbers
            and claim_restates_quote(mark.claim, mark.quote, pages[mark.n])
        ):
            mark.support, mark.checked_by = "supported", "code"
            mark.reason = "the claim is its quote, a whole sentence of the cited page"


def needs_verifier(mark: Mark) -> bool:
    """A claim code did not decide, of a source the research found, in a mark that could be read."""
    return mark.support == "not_checked" and mark.provenance not in ("unknown_source", "unreadable")


def batches(marks: Sequence[Mark], size: int) -> list[list[Mark]]:
    """The marks a verifier judges, in batches of at most `size`."""
    size = max(size, 1)
    return [list(marks[i : i + size]) for i in range(0, len(marks), size)]


def check_verdicts(ids: Sequence[int]) -> Callable[[str, str], dict[str, Any]]:
    """A structured-output check: every id judged once with a known verdict (else the verifier is asked again)."""

    def check(text: str, model: str) -> dict[str, Any]:
        data = parse_object(text, ["verdicts"], model)
        raw = data["verdicts"]
        if not isinstance(raw, list):
            raise StructuredOutputError(f"`{model}` returned verdicts that are not a list.", model=model)
        got: dict[int, dict[str, Any]] = {}
        for item in raw:
            if not isinstance(item, dict):
                continue
            index, verdict = item.get("id"), item.get("verdict")
            if isinstance(index, bool) or not isinstance(index, int) or index not in ids:
                continue
            if verdict not in VERDICTS:
                raise StructuredOutputError(
                    f"`{model}` gave verdict {verdict!r} for claim {index}; it must be one of {', '.join(VERDICTS)}.",
                    model=model,
                )
            got.setdefault(index, {"verdict": verdict, "reason": str(item.get("reason") or "")})
        missing = [i for i in ids if i not in got]
        if missing:
            raise StructuredOutputError(
                f"`{model}` gave no verdict for claim(s) {', '.join(map(str, missing))}; judge every id.", model=model
            )
        return {"verdicts": got}

    return check


def _apply(mark: Mark, verdict: str, reason: str) -> None:
    reason = " ".join(reason.split())[:REASON_CHARS]
    if verdict == "supported" and mark.missing_numbers:
        verdict = "partly"
        figures = ", ".join(mark.missing_numbers)
        reason = f"{reason} (but {figures} is not in the cited passage: checked in code)".strip()
    mark.support, mark.checked_by, mark.reason = verdict, "model", reason  # type: ignore[assignment]


async def verify_claims(
    marks: Sequence[Mark], judge: Judge, *, limit: int, batch_size: int, concurrency: int = 4
) -> list[str]:
    """Judge up to `limit` unjudged claims (as many as the budget left pays for: `planning.verify_limit`) in
    batches, at most `concurrency` at once. Returns notes for the run's warnings about claims left unchecked (over
    the limit, out of budget or time, or the verifier failing)."""
    waiting = [m for m in marks if needs_verifier(m)]
    chosen, over = waiting[: max(limit, 0)], waiting[max(limit, 0) :]
    notes: list[str] = []
    for mark in over:
        mark.reason = f"not checked: the budget left pays for checking {len(chosen)} of {len(waiting)} citations"
    if over:
        notes.append(
            f"{len(over)} citation(s) were not checked by a model: the budget left pays for checking {len(chosen)} "
            f"of the {len(waiting)} cited claims."
        )
    gate = asyncio.Semaphore(max(concurrency, 1))
    problems: list[str] = []

    async def one(batch: list[Mark]) -> None:
        async with gate:
            try:
                data = await judge(batch)
            except Stop:
                problems.append("the budget or time left for checking ran out")
                for mark in batch:
                    mark.reason = "not checked: the budget or time for checking ran out"
                return
            except OpenRouterError as exc:
                log.warning("the verifier could not judge %d claim(s): %s", len(batch), exc.message)
                problems.append(f"the verifier failed ({exc.message})")
                for mark in batch:
                    mark.reason = f"not checked: the verifier failed ({exc.message[:120]})"
                return
        verdicts: dict[int, dict[str, Any]] = data["verdicts"]
        for mark in batch:
            got = verdicts.get(mark.index)
            if got is not None:
                _apply(mark, got["verdict"], got["reason"])

    await asyncio.gather(*(one(b) for b in batches(chosen, batch_size)))
    unchecked = sum(m.support == "not_checked" for m in chosen)
    if unchecked:
        notes.append(f"{unchecked} citation(s) were not checked by a model: {'; '.join(dict.fromkeys(problems))}.")
    return notes


def batch_size_for(context_tokens: int, max_tokens: int, item_tokens: int, most: int) -> int:
    """How many verifier items fit the model's context beside its answer, at most `most` (at least one)."""
    if context_tokens <= 0:
        return most
    room = context_tokens - max_tokens - 1000
    return max(1, min(most, math.floor(room / max(item_tokens, 1))))
