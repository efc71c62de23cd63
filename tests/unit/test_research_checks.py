"""Deep research that reads its sources and proves every citation: researchers read pages, the writer quotes them,
code checks every quote against the page, and a verifier model judges the rest (against the fake's corpus)."""

from __future__ import annotations

import pytest

from openrouter_research_mcp.research.quotes import QUOTE_MATCH, check_quotes, quote_in
from openrouter_research_mcp.tools.research import deep_research
from openrouter_research_mcp.tools.results import ResearchResult
from openrouter_research_mcp.tools.state import AppState

from ..fakes.citations import seeded_citations
from ..fakes.corpus import PAGES
from ..fakes.openrouter import FakeOpenRouter

QUESTION = "How do honeybee colonies communicate with the waggle dance?"
PLAN = {"sub_questions": [{"question": "How does the waggle dance work?", "rationale": "r"}]}


async def progress(_done: float, _total: float | None, _message: str) -> None:
    return None


@pytest.fixture
def fake(fake_openrouter: FakeOpenRouter) -> FakeOpenRouter:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    return fake_openrouter


def number_of(result: ResearchResult, url: str) -> int:
    return next(s.n for s in result.sources if s.url == url)


@pytest.mark.parametrize("with_model", [False, True], ids=["code only", "with the verifier model"])
async def test_research_citation_of_a_real_source_for_a_sentence_it_lacks_is_caught(
    with_model: bool, fake: FakeOpenRouter, app_state: AppState
) -> None:
    # Two claims the cited page does not make: one with an invented quote, one with no quote at all.
    fake.writer_extra = (
        'Honeybees dance to warn of rain [1 "bees dance to warn the colony of coming rain"]. '
        "A colony elects its queen by vote [1]."
    )
    result = await deep_research(app_state, QUESTION, depth=1, verify_with_model=with_model, progress=progress)
    checks = {c.claim: c for c in result.citations}
    invented = checks["Honeybees dance to warn of rain"]
    unquoted = checks["A colony elects its queen by vote"]
    assert invented.quote and invented.score < QUOTE_MATCH and unquoted.quote == ""
    report = result.report or ""
    true_ones = [c for c in result.citations if c not in (invented, unquoted)]
    assert true_ones and all(c.status == "verified" and c.method == "quote" for c in true_ones)
    if with_model:  # the verifier finds neither claim in the page: both citations go
        assert invented.status == unquoted.status == "removed" and invented.method == "model"
        assert "Honeybees dance to warn of rain [citation removed: unsupported]" in report
        assert result.verification.removed == 2 and result.verification.unverified == 0
        assert any(u.stage == "verify" for u in result.usage)
    else:  # code alone cannot prove them: they stay, marked
        assert invented.status == unquoted.status == "unverified"
        assert "Honeybees dance to warn of rain [1?]" in report and "queen by vote [1?]" in report
        assert result.verification.unverified == 2 and not any(u.stage == "verify" for u in result.usage)
    line = result.verification.line()
    assert report.rstrip().endswith(f"_{line}_") and f"of {len(result.citations)} citations verified" in line
    assert '"' not in report.split("## Method")[0].replace('"quote"', "")  # no quote reaches the reader's text


@pytest.mark.usefixtures("fake")
async def test_research_evidence_is_the_pages_read(app_state: AppState) -> None:
    result = await deep_research(app_state, QUESTION, depth=1, verify_with_model=False, progress=progress)
    run = await app_state.research.get(result.research_id)
    assert run is not None and result.pages_read >= 1
    url = "https://hivescience.test/waggle-dance"
    n = number_of(result, url)
    assert PAGES[url][1][:2000] in run.evidence[str(n)]  # the page's text as read, kept for checking quotes
    assert all(c.status == "verified" for c in result.citations)


@pytest.mark.parametrize(
    ("quote", "evidence", "found"),
    [
        (
            "rated for operation down to -25 C",
            "Heat pumps are rated for operation down to -25 C in cold climates.",
            True,
        ),
        ("Rated for operation, down to −25 °C!", "Heat pumps are rated for operation down to -25 °C here.", True),
        (
            "rated for operation down to -30 C",
            "Heat pumps are rated for operation down to -25 C in cold climates.",
            False,
        ),  # a changed number is never a near miss
        (
            "rated for operaton down to -25 C",
            "Heat pumps are rated for operation down to -25 C in cold climates.",
            True,
        ),  # a typo is
        ("in 2020", "It happened in 2020.", False),  # too short to prove anything
        ("bees fly to the moon", "Bees fly to flowers within 3 km of the hive.", False),
    ],
)
def test_quote_in_normalises_and_guards_numbers(quote: str, evidence: str, found: bool) -> None:
    assert quote_in(quote, evidence)[0] is found


@pytest.mark.parametrize(
    ("length", "tokens", "outline"), [("brief", 1500, False), ("standard", 3500, False), ("long", 8000, True)]
)
async def test_research_report_length(
    length: str, tokens: int, outline: bool, fake: FakeOpenRouter, app_state: AppState
) -> None:
    result = await deep_research(
        app_state,
        QUESTION,
        depth=1,
        report_length=length,  # type: ignore[arg-type]
        verify_with_model=False,
        progress=progress,
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


@pytest.mark.parametrize("seed", [1, 7, 2026])
def test_quote_check_never_verifies_a_false_citation_of_the_corpus(seed: int) -> None:
    marks, evidence, truth = seeded_citations(seed)
    check_quotes(marks, evidence, set(evidence))
    assert not [m.quote for m, true in zip(marks, truth, strict=True) if m.status == "verified" and not true]
    assert not [m.quote for m, true in zip(marks, truth, strict=True) if m.status == "removed" and true]
    verified = sum(m.status == "verified" for m, true in zip(marks, truth, strict=True) if true)
    assert verified >= 0.95 * sum(truth)  # nearly every true quote is proved by code alone
