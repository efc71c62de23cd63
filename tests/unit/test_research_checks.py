"""Deep research that reads its sources and says what it proved: researchers read pages, the writer quotes them,
code checks every quote against its page (provenance), and a verifier model judges every cited claim against the
passage it cites (support). Run against the fake's corpus and its verifier."""

from __future__ import annotations

import re

import pytest

from openrouter_research_mcp._util import no_progress
from openrouter_research_mcp.research.planning import VERIFY_BATCH
from openrouter_research_mcp.research.run import ResearchInput
from openrouter_research_mcp.tools.research import deep_research
from openrouter_research_mcp.tools.results import ResearchResult
from openrouter_research_mcp.tools.state import CallState

from ..fakes.answers import claim_key
from ..fakes.corpus import PAGES
from ..fakes.openrouter import FakeOpenRouter

QUESTION = "How do honeybee colonies communicate with the waggle dance?"
PLAN = {"sub_questions": [{"question": "How does the waggle dance work?", "rationale": "r"}]}
DANCE = "https://hivescience.test/waggle-dance"


@pytest.fixture
def fake(fake_openrouter: FakeOpenRouter) -> FakeOpenRouter:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    return fake_openrouter


def number_of(result: ResearchResult, url: str) -> int:
    return next(s.n for s in result.sources if s.url == url)


def body_of(result: ResearchResult) -> str:
    """The report as the reader reads it, without the method, source list and closing lines."""
    return (result.report or "").split("## Method")[0]


def verify_calls(fake: FakeOpenRouter) -> list[str]:
    return [
        r.body["messages"][1]["content"]
        for r in fake.chat_requests()
        if r.body.get("response_format", {}).get("json_schema", {}).get("name") == "citation_check"
    ]


@pytest.mark.parametrize("with_model", [False, True], ids=["code only", "with the verifier model"])
async def test_research_citation_of_a_real_source_for_a_sentence_it_lacks_is_caught(
    with_model: bool, fake: FakeOpenRouter, app_state: CallState
) -> None:
    # Two claims the cited page does not make: one with an invented quote, one with no quote at all.
    fake.writer_extra = (
        'Honeybees dance to warn of rain [1 "bees dance to warn the colony of coming rain"]. '
        "A colony elects its queen by vote [1]."
    )
    result = await deep_research(
        app_state, ResearchInput(question=QUESTION, depth=1, verify_with_model=with_model), progress=no_progress
    )
    checks = {c.claim: c for c in result.citations}
    invented = checks["Honeybees dance to warn of rain"]
    unquoted = checks["A colony elects its queen by vote"]
    assert invented.provenance == "not_found" and not invented.quote_found and unquoted.provenance == "no_quote"
    report = body_of(result)
    true_ones = [c for c in result.citations if c not in (invented, unquoted)]
    assert true_ones and all(c.quote_found and c.support == "supported" for c in true_ones)
    v = result.verification
    if with_model:  # the verifier finds neither claim in its passage: both citations go
        assert invented.support == unquoted.support == "unsupported" and invented.checked_by == "model"
        assert invented.reason and invented.shown == "removed"
        assert "Honeybees dance to warn of rain [citation removed: unsupported]" in report
        assert v.unsupported == v.removed == 2 and v.checked_by_model == 2 and v.not_checked == 0
        assert any(u.stage == "verify" for u in result.usage)
        assert v.citation_accuracy == pytest.approx(len(true_ones) / len(result.citations))
    else:  # nobody judged them: they stay, marked as not shown to be supported
        assert invented.support == unquoted.support == "not_checked"
        assert "Honeybees dance to warn of rain [1?]" in report and "queen by vote [1?]" in report
        assert v.not_checked == 2 and v.checked_by_model == 0 and not any(u.stage == "verify" for u in result.usage)
        assert "no claim was checked by a model" in v.line()
    assert (result.report or "").rstrip().endswith(f"_{v.line()}_")
    assert '"' not in report  # no writer's quote reaches the reader's text


async def test_research_real_quote_does_not_certify_a_false_claim(fake: FakeOpenRouter, app_state: CallState) -> None:
    # A real quote from the page beside claims that misstate it: a wrong year, a negation, another person.
    fake.writer_extra = (
        'Karl von Frisch won the Nobel Prize in 1937 [1 "shared the Nobel Prize in Physiology or Medicine in 1973"]. '
        'Bees do not use dances to share where food is [1 "tell their nestmates where food is with the waggle '
        'dance"]. Konrad Lorenz decoded the waggle dance [1 "Karl von Frisch decoded the dance"].'
    )
    fake.verdicts = {
        claim_key("Bees do not use dances to share where food is"): "unsupported",
        claim_key("Konrad Lorenz decoded the waggle dance"): "unsupported",
    }
    result = await deep_research(app_state, ResearchInput(question=QUESTION, depth=1), progress=no_progress)
    checks = {c.claim: c for c in result.citations}
    year, negation, person = (
        checks["Karl von Frisch won the Nobel Prize in 1937"],
        checks["Bees do not use dances to share where food is"],
        checks["Konrad Lorenz decoded the waggle dance"],
    )
    assert year.quote_found and negation.quote_found and person.quote_found  # every quote is real...
    assert year.missing_numbers == ["1937"]  # ...and code sees the claim's year is not on the page
    assert {c.support for c in (year, negation, person)} == {"unsupported"}  # ...but no claim is supported
    assert all(c.shown == "removed" for c in (year, negation, person))
    assert "1937 [1]" not in body_of(result) and "[citation removed: unsupported]" in body_of(result)


async def test_research_without_verifier_a_found_quote_is_marked_quote_found_not_verified(
    fake: FakeOpenRouter, app_state: CallState
) -> None:
    fake.writer_extra = (
        'Karl von Frisch won the Nobel Prize in 1937 [1 "shared the Nobel Prize in Physiology or Medicine in 1973"]. '
        'Bees do not use dances to share where food is [1 "tell their nestmates where food is with the waggle '
        'dance"].'
    )
    result = await deep_research(
        app_state, ResearchInput(question=QUESTION, depth=1, verify_with_model=False), progress=no_progress
    )
    checks = {c.claim: c for c in result.citations}
    negation = checks["Bees do not use dances to share where food is"]
    year = checks["Karl von Frisch won the Nobel Prize in 1937"]
    n = negation.n
    assert negation.quote_found and negation.support == "not_checked" and negation.shown == f"[{n}†]"
    assert year.shown == f"[{n}?]"  # a figure the page lacks: not even "quote found"
    report = result.report or ""
    assert (
        f"food is [{n}†]" in report and "[n†] the quote is on the cited page, but the claim was not checked" in report
    )
    assert "no claim was checked by a model" in result.verification.line()


async def test_research_a_lying_verifier_cannot_pass_a_figure_the_page_lacks(
    fake: FakeOpenRouter, app_state: CallState
) -> None:
    fake.writer_extra = 'The dance was decoded in 1937 [1 "Karl von Frisch decoded the dance"].'
    fake.verifier_says = "supported"  # wrong for this claim: the page says 1973
    result = await deep_research(app_state, ResearchInput(question=QUESTION, depth=1), progress=no_progress)
    check = next(c for c in result.citations if c.claim == "The dance was decoded in 1937")
    assert check.checked_by == "model" and check.support == "partly" and check.shown.endswith("?]")
    assert "1937 is not in the cited passage" in check.reason


async def test_research_marks_the_parser_cannot_read_never_reach_the_reader_raw(
    fake: FakeOpenRouter, app_state: CallState
) -> None:
    fake.writer_extra = (
        'Bees dance [1 "tell their nestmates where food is" and more text that never closes.\n\n'
        'Two sources in one bracket [1 "The length of the waggle run encodes the distance"; 1 "Forager honeybees '
        'tell their nestmates"]. A quote over a line break [1 "The angle of the waggle run against\nthe vertical"].'
    )
    result = await deep_research(
        app_state, ResearchInput(question=QUESTION, depth=1, verify_with_model=False), progress=no_progress
    )
    report = body_of(result)
    assert result.verification.unreadable == 1
    assert not re.search(r"\[\d+\s*[:,]?\s*[\"“„«»「]", report)  # no writer's mark, readable or not, is left raw
    assert "Bees dance [1?]" in report
    claims = [c.claim for c in result.citations]
    assert claims.count("Two sources in one bracket") == 2 and "A quote over a line break" in claims
    assert all(c.quote_found for c in result.citations if c.claim.startswith(("Two sources", "A quote over")))


async def test_research_report_with_sources_but_no_citations_says_so(
    fake: FakeOpenRouter, app_state: CallState
) -> None:
    fake.text_answers["openai/gpt-4o"] = "## Summary\n\nBees dance. Nothing here is cited."
    result = await deep_research(
        app_state, ResearchInput(question=QUESTION, depth=1, writer_model="openai/gpt-4o"), progress=no_progress
    )
    assert result.sources and result.verification.citations == 0
    warning = f"The writer cited none of the {len(result.sources)} sources"
    assert any(w.startswith(warning) for w in result.warnings) and warning in (result.report or "")


async def test_research_verifier_judges_every_claim_in_batches_within_the_plan(
    fake: FakeOpenRouter, app_state: CallState
) -> None:
    sentences = [s.strip() + "." for s in PAGES[DANCE][1].split(".") if s.strip()]
    claims = [f"Claim {i}: {sentences[i % len(sentences)].lower()}" for i in range(VERIFY_BATCH + 5)]
    fake.writer_extra = " ".join(f'{c[:-1]} [1 "{sentences[i % len(sentences)][:-1]}"].' for i, c in enumerate(claims))
    result = await deep_research(
        app_state, ResearchInput(question=QUESTION, depth=1, report_length="brief"), progress=no_progress
    )
    calls = verify_calls(fake)
    judged = [c for c in result.citations if c.checked_by == "model"]
    assert result.plan is not None and len(judged) <= result.plan.verify_citations
    assert len(calls) == -(-len(judged) // VERIFY_BATCH) >= 2  # batches of at most VERIFY_BATCH
    assert all(call.count("<claim id=") <= VERIFY_BATCH for call in calls)
    assert all("<passage id=" in call and len(call) < 40_000 for call in calls)  # passages, not whole pages
    verify_spend = [u for u in result.usage if u.stage == "verify"]
    assert verify_spend and verify_spend[0].calls == len(calls) and result.cost_usd <= result.max_cost_usd


@pytest.mark.usefixtures("fake")
async def test_research_evidence_is_the_pages_read(app_state: CallState) -> None:
    result = await deep_research(
        app_state, ResearchInput(question=QUESTION, depth=1, verify_with_model=False), progress=no_progress
    )
    run = await app_state.shared.research.get(app_state.owner, result.research_id)
    assert run is not None and result.pages_read >= 1
    n = number_of(result, DANCE)
    assert PAGES[DANCE][1][:2000] in run.evidence[str(n)]  # the page's text as read, kept for checking quotes
    assert all(c.quote_found for c in result.citations)


@pytest.mark.parametrize(
    ("length", "tokens", "outline"), [("brief", 1500, False), ("standard", 3500, False), ("long", 8000, True)]
)
async def test_research_report_length(
    length: str, tokens: int, outline: bool, fake: FakeOpenRouter, app_state: CallState
) -> None:
    result = await deep_research(
        app_state,
        ResearchInput(question=QUESTION, depth=1, report_length=length, verify_with_model=False),  # type: ignore[arg-type]
        progress=no_progress,
    )
    writer = [r.body for r in fake.chat_requests() if "You write a research report" in r.body["messages"][0]["content"]]
    outlines = [r.body for r in fake.chat_requests() if "Draft the outline" in r.body["messages"][0]["content"]]
    assert len(writer) == 1 and writer[0]["max_tokens"] == tokens
    words = {"brief": "about 600 words", "standard": "about 1500 words", "long": "about 4000 words"}[length]
    assert words in writer[0]["messages"][0]["content"]
    assert bool(outlines) is outline and ("Follow this outline" in writer[0]["messages"][1]["content"]) is outline
    assert result.plan and result.plan.report_length == length
    report = result.report or ""
    for section in (
        "## Summary",
        "## Findings",
        "## Where sources disagree",
        "## Open questions",
        "## Method",
        "## Sources",
    ):
        assert section in report
