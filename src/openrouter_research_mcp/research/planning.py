"""Money and time as plans, not refusals: the largest research plan whose worst case fits `max_cost_usd` and whose
critical path fits `max_seconds`.

A plan is breadth, depth, and the searches and page reads each researcher may make. Its worst case adds every call
it could make, each at its worst (every `max_tokens` used, every search and read made, the text read counted as
input), at catalog prices. Its critical path adds optimistic call times along the rounds (planning, then each round
of researchers in parallel and a reflection, then the writer and the verifier): when even that does not fit, the
run would only stop early, so the plan shrinks instead. Shrinking goes in an order that keeps what matters most:
fewer pages read, then fewer rounds, fewer sub-questions, fewer searches, less set aside for the verifier model
(then none), a brief report. Only when the smallest plan does not fit is the run refused, with the budget that would
be enough.

The verifier's share is a reservation, not a cap: once the report is written, the verifier judges every cited claim
whose worst case the budget left can pay for (`verify_limit`), and the report says how many it could not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from .._util import usd
from ..errors import BudgetExceededError
from ..openrouter.models import ModelInfo
from ..openrouter.request import WebPlan
from ..openrouter.tokens import token_bound, unseen_tokens
from .run import ReportLength, ResearchParams, ResearchPlan

__all__ = [
    "MAX_SOURCES_PER_CALL",
    "PLAN_MAX_TOKENS",
    "REFLECT_MAX_TOKENS",
    "RESEARCH_MAX_TOKENS",
    "VERIFY_BATCH",
    "VERIFY_RESERVED",
    "VERIFY_CONCURRENCY",
    "VERIFY_ITEM_CHARS",
    "VERIFY_MAX_TOKENS",
    "WRITE_MAX_TOKENS",
    "WRITER_EVIDENCE_CHARS",
    "Shape",
    "writer_tokens",
    "choose_plan",
    "research_calls",
    "verify_calls",
    "verify_cost",
    "verify_limit",
]

PLAN_MAX_TOKENS = 800
RESEARCH_MAX_TOKENS = 1500  # findings may be long when the pages read are rich
REFLECT_MAX_TOKENS = 700
OUTLINE_MAX_TOKENS = 800
VERIFY_MAX_TOKENS = 1200  # one batch's verdicts, each with a one-line reason
WRITE_MAX_TOKENS: dict[str, int] = {"brief": 1500, "standard": 3500, "long": 8000}  # ~600, ~1,500, ~4,000 words
SEARCHES, FETCHES = 2, 3  # what a researcher may do at most: search twice, open three pages
RESULTS_PER_SEARCH = 5
MAX_SOURCES_PER_CALL = SEARCHES * RESULTS_PER_SEARCH + FETCHES  # citations kept from one researcher
WRITER_EVIDENCE_CHARS = 1200  # of each source's evidence, what the writer reads
MAX_WRITER_SOURCES = 40
PASSAGE_CHARS = 1600  # the page text around a citation that the verifier reads
VERIFY_BATCH = 10  # citations one verifier call judges (fewer when the model's context is small)
VERIFY_CONCURRENCY = 8  # verifier calls in flight at once: small calls, all at the end, on the critical path
VERIFY_ITEM_CHARS = PASSAGE_CHARS + 1200  # a claim, its quote, notes and the passage of the page it is judged against
# Citations whose checking the plan sets aside money for from the start, by report length (a report cites about one
# source per 40 words); a smaller budget sets aside less. Not a cap: every cited claim the budget left pays for is
# judged (`verify_limit`).
VERIFY_RESERVED: dict[str, int] = {"brief": 24, "standard": 48, "long": 96}
PROMPT_CHARS = 3500  # instructions and framing around each prompt
# Optimistic seconds per call, for the critical path: a plan that does not fit even these could only stop early.
SECONDS = {"plan": 3.0, "reflect": 3.0, "outline": 4.0, "verify": 3.0, "research": 5.0, "search": 2.0, "fetch": 2.0}
WRITE_SECONDS: dict[str, float] = {"brief": 5.0, "standard": 10.0, "long": 20.0}


@dataclass(frozen=True)
class Shape:
    """The knobs of a plan."""

    breadth: int
    depth: int
    searches: int = SEARCHES
    fetches: int = FETCHES
    checks: int = VERIFY_RESERVED["standard"]  # citations whose checking is set aside (0: no verifier)
    length: ReportLength = "standard"


def research_calls(breadth: int, depth: int) -> int:
    """Researcher calls over all rounds: `breadth` in the first, halved (at least one) in each after."""
    return sum(max(1, breadth // 2**n) for n in range(depth))


def _web(shape: Shape, base: WebPlan) -> WebPlan:
    return replace(base, searches=shape.searches, fetches=shape.fetches)


def _cost(price: ModelInfo | None, prompt: int, tokens: int, web: WebPlan | None = None, calls: int = 1) -> float:
    """`calls` calls of `prompt` tokens in, `tokens` out, at their worst."""
    if price is None:
        return float("inf")
    one = (web or WebPlan()).worst_case(price.pricing, prompt, tokens)
    return float("inf") if one is None else one * calls


def writer_tokens(params: ResearchParams, calls: int) -> int:
    """The most the writer reads: the question, every finding and the evidence excerpts of the sources it may cite
    (text not written yet, so estimated: each call's reservation bounds its real text)."""
    sources = min(calls * MAX_SOURCES_PER_CALL, MAX_WRITER_SOURCES)
    unseen = PROMPT_CHARS + calls * RESEARCH_MAX_TOKENS * 4 + sources * (WRITER_EVIDENCE_CHARS + 400)
    return token_bound(params.question) + unseen_tokens(unseen)


def worst_case(shape: Shape, params: ResearchParams, models: Mapping[str, ModelInfo | None], base: WebPlan) -> float:
    """The most the whole plan can cost (inf when a model's price is unknown)."""
    planner, searcher = models.get(params.planner_model), models.get(params.searcher_model)
    writer = models.get(params.writer_model)
    calls = research_calls(shape.breadth, shape.depth)
    question, prompt = token_bound(params.question), unseen_tokens(PROMPT_CHARS)
    total = _cost(planner, question + prompt, PLAN_MAX_TOKENS, calls=2)  # a retry when the JSON is unusable
    total += _cost(searcher, 2 * question + prompt, RESEARCH_MAX_TOKENS, _web(shape, base), calls=calls)
    reflect = question + prompt + unseen_tokens(calls * RESEARCH_MAX_TOKENS * 4)
    total += _cost(planner, reflect, REFLECT_MAX_TOKENS, calls=2 * (shape.depth - 1))
    writer_in = writer_tokens(params, calls)
    if shape.length == "long":
        total += _cost(writer, writer_in, OUTLINE_MAX_TOKENS)
    total += _cost(writer, writer_in, WRITE_MAX_TOKENS[shape.length])
    total += verify_cost(planner, shape.checks)
    return total


def verify_calls(checks: int, batch: int = VERIFY_BATCH) -> int:
    return math.ceil(checks / max(batch, 1))


def verify_cost(verifier: ModelInfo | None, checks: int, batch: int = VERIFY_BATCH) -> float:
    """The most judging `checks` citations in batches of `batch` can cost: every batch full, every verdict at its
    longest."""
    if checks <= 0:
        return 0.0
    size = min(checks, max(batch, 1))
    prompt = unseen_tokens(PROMPT_CHARS + size * VERIFY_ITEM_CHARS)
    return _cost(verifier, prompt, VERIFY_MAX_TOKENS, calls=verify_calls(checks, size))


def verify_limit(verifier: ModelInfo | None, waiting: int, left_usd: float, batch: int = VERIFY_BATCH) -> int:
    """How many of `waiting` cited claims the verifier judges: all of them when the budget left pays for their worst
    case, else the most it pays for (none when the verifier's price is unknown)."""
    if waiting <= 0 or verify_cost(verifier, waiting, batch) <= left_usd:
        return max(waiting, 0)
    low, high = 0, waiting  # verify_cost(low) fits, verify_cost(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if verify_cost(verifier, mid, batch) <= left_usd else (low, mid)
    return low


def critical_path(shape: Shape) -> float:
    """Optimistic seconds from start to report: plan, then each round (researchers in parallel) and reflection."""
    research = SECONDS["research"] + SECONDS["search"] * shape.searches + SECONDS["fetch"] * shape.fetches
    rounds = shape.depth * research + (shape.depth - 1) * SECONDS["reflect"]
    finish = WRITE_SECONDS[shape.length] + (SECONDS["outline"] if shape.length == "long" else 0.0)
    return SECONDS["plan"] + rounds + finish + (SECONDS["verify"] if shape.checks else 0.0)


def _smaller(shape: Shape) -> Iterator[Shape]:
    """Ever smaller plans, in the order that gives up least first."""
    while shape.fetches > 1:
        shape = replace(shape, fetches=shape.fetches - 1)
        yield shape
    while shape.depth > 1:
        shape = replace(shape, depth=shape.depth - 1)
        yield shape
    while shape.breadth > 1:
        shape = replace(shape, breadth=shape.breadth - 1)
        yield shape
    if shape.searches > 1:
        shape = replace(shape, searches=1)
        yield shape
    if shape.fetches > 0:
        shape = replace(shape, fetches=0)
        yield shape
    while shape.checks > VERIFY_BATCH:
        shape = replace(shape, checks=max(shape.checks // 2, VERIFY_BATCH))
        yield shape
    if shape.checks:
        shape = replace(shape, checks=0)
        yield shape
    if shape.length != "brief":
        shape = replace(shape, length="brief")
        yield shape


def choose_plan(
    params: ResearchParams, models: Mapping[str, ModelInfo | None], base: WebPlan, max_cost_usd: float | None = None
) -> ResearchPlan:
    """The largest plan that fits the budget (`max_cost_usd`, default the run's) and the time; raises
    `BudgetExceededError` naming the smallest budget that would do when not even the smallest plan fits it."""
    budget = params.max_cost_usd if max_cost_usd is None else max_cost_usd
    checks = VERIFY_RESERVED[params.report_length] if params.verify_with_model else 0
    shape = Shape(params.breadth, params.depth, checks=checks, length=params.report_length)
    candidates = [shape, *_smaller(shape)]
    costs = [worst_case(candidate, params, models, base) for candidate in candidates]
    # The largest plan that fits both; else (time is a guess, and a time stop still reports) the largest that fits
    # the budget; never one that does not fit the budget.
    for need_time in (True, False):
        reasons: list[str] = []
        for candidate, cost in zip(candidates, costs, strict=True):
            too_dear = cost > budget
            too_slow = need_time and critical_path(candidate) > params.max_seconds
            if not too_dear and not too_slow:
                if critical_path(candidate) > params.max_seconds and "time" not in reasons:
                    reasons.append("time")
                return ResearchPlan(
                    breadth=candidate.breadth,
                    depth=candidate.depth,
                    searches=candidate.searches,
                    fetches=candidate.fetches,
                    verify_with_model=candidate.checks > 0,
                    verify_citations=candidate.checks,
                    report_length=candidate.length,
                    scaled_because=reasons,
                    worst_case_usd=round(cost, 6),
                )
            for reason, applies in (("budget", too_dear), ("time", too_slow)):
                if applies and reason not in reasons:
                    reasons.append(reason)
    least = costs[-1]
    if least == float("inf"):
        raise BudgetExceededError(
            "A model of this run has no fixed price (it is decided at routing time), so the run's cost cannot be "
            "bounded. Name specific models for planner_model, searcher_model and writer_model."
        )
    raise BudgetExceededError(
        f"Not even the smallest research (one sub-question, one search, a brief report) fits {usd(budget)}: it "
        f"could cost up to {usd(least)}. Raise max_cost_usd to at least {usd(least * 1.01)}, or choose cheaper models."
    )
