"""How many cited claims the verifier judges: every one whose worst case the budget left pays for, however long the
report; fewer only when the budget requires it, and then the report says so."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from openrouter_research_mcp._util import no_progress
from openrouter_research_mcp.openrouter.models import ModelInfo
from openrouter_research_mcp.openrouter.pricing import Pricing
from openrouter_research_mcp.research.citations import Mark, Verification, mark_text
from openrouter_research_mcp.research.planning import VERIFY_BATCH, VERIFY_RESERVED, verify_cost, verify_limit
from openrouter_research_mcp.research.run import ReportLength, ResearchInput
from openrouter_research_mcp.research.support import verify_claims
from openrouter_research_mcp.tools.research import deep_research
from openrouter_research_mcp.tools.state import CallState

from ..fakes.corpus import PAGES
from ..fakes.openrouter import FakeOpenRouter

VERIFIER = ModelInfo(id="x/verifier", context_length=128_000, pricing=Pricing(prompt=0.15e-6, completion=0.6e-6))
DANCE = "https://hivescience.test/waggle-dance"


def test_verify_limit_is_every_claim_the_budget_left_pays_for() -> None:
    many = 30 * VERIFY_BATCH  # more than any report length sets aside
    assert many > max(VERIFY_RESERVED.values())
    assert verify_limit(VERIFIER, many, verify_cost(VERIFIER, many)) == many
    # A cent short of the last batch: every batch but that one.
    assert verify_limit(VERIFIER, many, verify_cost(VERIFIER, many) - 1e-9) == many - VERIFY_BATCH
    assert verify_limit(VERIFIER, 35, 1.5 * verify_cost(VERIFIER, VERIFY_BATCH)) == VERIFY_BATCH
    assert verify_limit(VERIFIER, 35, 0.0) == 0 and verify_limit(VERIFIER, 0, 1.0) == 0
    assert verify_limit(None, 35, 100.0) == 0  # a verifier whose price is unknown cannot be paid for
    # Smaller batches (a small context) cost more per claim: each call carries the instructions again.
    assert verify_cost(VERIFIER, 20, batch=2) > verify_cost(VERIFIER, 20)
    assert verify_limit(VERIFIER, 20, verify_cost(VERIFIER, 20), batch=2) < 20


async def test_verifier_leaves_unchecked_only_what_the_budget_cannot_pay_for_and_says_so() -> None:
    marks = [
        Mark(index=i, n=1, quote="a quote of five words", claim=f"Claim {i}", provenance="found") for i in range(35)
    ]
    limit = verify_limit(VERIFIER, len(marks), 1.5 * verify_cost(VERIFIER, VERIFY_BATCH))

    async def judge(batch: Sequence[Mark]) -> dict[str, Any]:
        return {"verdicts": {m.index: {"verdict": "supported", "reason": "the page says so"} for m in batch}}

    notes = await verify_claims(marks, judge, limit=limit, batch_size=VERIFY_BATCH)
    assert notes == [
        "25 citation(s) were not checked by a model: the budget left pays for checking 10 of the 35 cited claims."
    ]
    assert [mark_text(m) for m in marks] == ["[1]"] * 10 + ["[1†]"] * 25
    assert marks[-1].reason == "not checked: the budget left pays for checking 10 of 35 citations"
    assert "25 not checked" in Verification.of(marks, sources=1).line()


@pytest.mark.parametrize("length", ["brief", "standard", "long"])
async def test_research_verifier_judges_every_cited_claim_past_what_the_plan_set_aside(
    length: ReportLength, fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    fake_openrouter.structured_answers["research_plan"] = {"sub_questions": [{"question": "Waggle?", "rationale": "r"}]}
    sentences = [s.strip() for s in PAGES[DANCE][1].split(".") if s.strip()]
    cited = VERIFY_RESERVED[length] + 7  # more claims than the plan set aside money for
    quotes = [" ".join(sentences[i % len(sentences)].split()[:5]) for i in range(cited)]  # short: the writer has room
    fake_openrouter.writer_extra = " ".join(f'In short, {q.lower()} [{{source:{DANCE}}} "{q}"].' for q in quotes)
    result = await deep_research(
        app_state,
        ResearchInput(question="How do bees dance?", depth=1, report_length=length, max_cost_usd=2),
        progress=no_progress,
    )
    assert result.plan is not None and result.plan.verify_citations == VERIFY_RESERVED[length]
    mine = [c for c in result.citations if c.claim.startswith("In short")]
    assert len(mine) == cited and all(c.checked_by == "model" for c in mine)  # every one, not the first 24 or 48
    assert result.verification.not_checked == 0 and not any("not checked" in w for w in result.warnings)
    assert result.cost_usd <= result.max_cost_usd
