"""Provenance in code (is the quote on the cited page?), page-text normalisation, and the reading of citation marks:
each case is one that real page text or real writers produced."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from openrouter_research_mcp.research.citations import Mark, Verification, check_provenance, mark_text, render_marks
from openrouter_research_mcp.research.marks import extract, renumber
from openrouter_research_mcp.research.pagetext import clean, tokens
from openrouter_research_mcp.research.provenance import Page, claim_restates_quote, find_quote, missing_numbers
from openrouter_research_mcp.research.support import support_in_code, verify_claims

from ..fakes import labelled_set as labelled

PAGE = (
    "In the field study, the heat pumps reached a seasonal coefficient of performance (COP) of 3.1 over the winter. "
    "The drug was well-tolerated in most patients. Superconductivity appears below 50 K. List comprehensions are "
    "not understandings of lists. Efficacy was 95% in adults; 162 cases were recorded. On 5 May the station "
    "measured 42,6 °C. Die Straße ist 20 000 m lang. Attackers scored twice before the defenders replied."
)


@pytest.mark.parametrize(
    ("quote", "kind"),
    [
        ("seasonal coefficient of performance (COP) of 3.1", "found"),
        ("Seasonal Coefficient Of Performance, COP, of 3.1!", "found"),  # case and punctuation
        ("seasonal coeficient of performance (COP) of 3.1", "variant"),  # one slipped letter
        ("the drug was well tolerated in most patients", "variant"),  # a compound written apart
        ("Die Strasse ist 20,000 m lang", "found"),  # ß and another thousands separator
        ("the heat pumps reached … COP of 3.1", "found"),  # an ellipsis
        ("in the field study heat pumps reached a seasonal", "variant"),  # an article dropped
        ("seasonal coefficient of performance (COP) of 5.2", "not_found"),  # a changed number
        ("the drug was poorly tolerated in most patients", "not_found"),  # an antonym
        ("Superconductivity appears above 50 K", "not_found"),
        ("List comprehensions are understandings of lists", "not_found"),  # a negation dropped
        ("Efficacy was 5% in adults", "not_found"),  # 5 is not 95
        ("16 cases were recorded", "not_found"),  # 16 is not 162
        ("the station measured 42,5 °C", "not_found"),  # the 5 of "5 May" does not count
        ("defenders scored twice before the attackers replied", "not_found"),  # swapped entities
        ("in 2020", "too_short"),
    ],
)
def test_provenance_accepts_spelling_and_refuses_meaning_changes(quote: str, kind: str) -> None:
    assert find_quote(quote, Page.of(PAGE)).kind == kind


@pytest.mark.parametrize(
    ("page", "quote"),
    [
        ("Costs &amp; benefits were weighed&nbsp;carefully by the board", "costs & benefits were weighed carefully"),
        ("The ma\u00adchine learning group met every week in Basel", "machine learning group met every week"),
        ("an inter-\nnational agreement was signed in spring", "an international agreement was signed"),
        ("see [the final report](https://x.test/r) for every figure", "see the final report for every figure"),
        ("the turbine ran for 20\u202f000 hours[3] without a fault", "the turbine ran for 20,000 hours without"),
        ("the vote passed with 17 percent abstaining overall", "the vote passed with 17% abstaining"),
        ("die Quote lag bei 17 Prozent im Jahr", "die Quote lag bei 17 % im Jahr"),
        ("le taux atteint 17 pour cent cette année", "le taux atteint 17% cette année"),
        ("it is the engineer\u2019s choice of material", "it is the engineer's choice of material"),
        ("温度达到四十二度，创下新纪录。", "创下新纪录"),
        ("温度　达到四十二度，创下新纪录。", "温度达到四十二度"),
        ("试验显示有效率为百分之九十五，副作用很少。", "有效率为95%"),  # a Chinese percent, in Chinese numerals
        ("全省充电桩覆盖率达到百分之5，仍然偏低。", "覆盖率达到5%"),  # ... and in digits
        ("新型ワクチンの有効率は95パーセントだった。", "有効率は９５％だった"),  # a Japanese percent word, full width
    ],
)
def test_normalisation_reads_page_text_as_it_arrives(page: str, quote: str) -> None:
    assert find_quote(quote, Page.of(page)).kind == "found", clean(page)


def test_numbers_are_whole_tokens_with_their_decimals_signs_and_percents() -> None:
    assert missing_numbers("a COP of 5.2", "a COP of 3.1") == ["5.2"]
    assert missing_numbers("an efficacy of 5%", "efficacy was 95%") == ["5%"]
    assert missing_numbers("16 were recorded", "162 were recorded") == ["16"]
    assert missing_numbers("42,5 °C on 5 May", "42,6 °C on 5 May") == ["42,5 °C"]
    assert missing_numbers("3 apples", "3.14 apples") == ["3"]  # a decimal is not split at its point
    assert missing_numbers("rated to -25 °C", "rated to 25 °C") == ["-25 °C"]  # nor its sign dropped
    assert missing_numbers("17 percent", "17%") == [] and missing_numbers("20,000 bees", "20 000 bees") == []
    assert missing_numbers("42.6 °C", "42,6 °C") == []  # a decimal comma is a decimal point
    assert missing_numbers("5 km", "5 m") == ["5 km"]


@pytest.mark.parametrize(
    ("claim", "page", "missing"),
    [
        ("an efficacy of 50%", "有效率为百分之五十", []),
        ("an efficacy of 50 percent", "有效率为百分之50。", []),
        ("an efficacy of 5%", "有效率为百分之五十", ["5%"]),  # 5 is not 50
        ("有效率为百分之九十五", "efficacy was 95%", []),
        ("有效率为百分之九十五", "efficacy was 59%", ["百分之九十五"]),
        ("有效率为百分之九十五点五", "efficacy was 95.5%", []),
        ("有效率为百分之九十五点五", "efficacy was 95%", ["百分之九十五点五"]),  # a decimal is not dropped
        ("增长百分之一百零五", "grew by 105%", []),
        ("增长百分之一百零五", "grew by 15%", ["百分之一百零五"]),
        ("増加率は５０％", "増加率は50パーセントだった", []),  # full-width digits and percent sign
        ("百分之五十", "五十", ["百分之五十"]),  # a percent is not the bare number
    ],
)
def test_cjk_percents_are_read_as_percentages(claim: str, page: str, missing: list[str]) -> None:
    assert missing_numbers(claim, page) == missing


def test_tokens_keep_their_place_in_the_text() -> None:
    text = clean("COP of 3.1 &amp; more")
    found = tokens(text)
    assert [text[t.start : t.end] for t in found] == ["COP", "of", "3.1", "more"]


def test_code_supports_only_a_claim_that_restates_its_quote_a_whole_page_sentence() -> None:
    page = Page.of(PAGE)
    claim = "The drug was well-tolerated in most patients."
    assert claim_restates_quote(claim, "the drug was well-tolerated in most patients", page)
    assert not claim_restates_quote(claim, "well-tolerated in most patients", page)  # the claim is more than its quote
    assert not claim_restates_quote("The drug was well-tolerated.", "The drug was well-tolerated", page)  # too short
    assert not claim_restates_quote("the station measured 42,6 °C", "the station measured 42,6 °C", page)  # a clause


VACCINE = (
    "Critics wrongly claimed that the new vaccine cuts deaths by 90 percent in adults, but the trial found no effect."
)


@pytest.mark.parametrize("quote", ["the trial found no effect", "the new vaccine cuts deaths by 90 percent in adults"])
async def test_claim_whose_words_the_page_denies_goes_to_the_verifier(quote: str) -> None:
    pages = {1: Page.of(VACCINE)}
    mark = Mark(index=0, n=1, quote=quote, claim="The new vaccine cuts deaths by 90 percent in adults.")
    check_provenance([mark], pages)
    support_in_code([mark], pages)
    assert mark.quote_found and (mark.support, mark.checked_by) == ("not_checked", "none")
    assert mark_text(mark) == "[1†]"  # without a verifier: quote found, claim not checked
    judged: list[str] = []

    async def verifier(batch: Sequence[Mark]) -> dict[str, Any]:
        judged.extend(m.claim for m in batch)
        verdict = {"verdict": "unsupported", "reason": "the page says critics were wrong"}
        return {"verdicts": {m.index: verdict for m in batch}}

    await verify_claims([mark], verifier, limit=10, batch_size=10)
    assert judged == [mark.claim] and mark.shown == "removed" and mark.checked_by == "model"


@pytest.mark.parametrize(
    ("text", "read", "unreadable"),
    [
        ('Heat [2 "rated for operation down to -25 C"].', [(2, "rated for operation down to -25 C")], 0),
        ('A [2: "one two three"] b [3, “four five six”].', [(2, "one two three"), (3, "four five six")], 0),
        ("Zitat [4 „ein deutsches Zitat“] und [5 »noch eins«].", [(4, "ein deutsches Zitat"), (5, "noch eins")], 0),
        ("Citation [6 « une citation »] et [7 「日本語の引用」].", [(6, "une citation"), (7, "日本語の引用")], 0),
        ('Inner [2 "the so-called "green" premium rose"].', [(2, 'the so-called "green" premium rose')], 0),
        ('Two [2 "alpha beta"; 1 "gamma delta"].', [(2, "alpha beta"), (1, "gamma delta")], 0),
        ("Plain [1, 3] and a range [2-4].", [(1, ""), (3, ""), (2, ""), (3, ""), (4, "")], 0),
        ('Across [2 "first line\nsecond line"].', [(2, "first line second line")], 0),
        ("Full width 【2 “全角の引用”】.", [(2, "全角の引用")], 0),
        ("Single [12 ‹one two three›] and [3 ›vier fünf sechs‹].", [(12, "one two three"), (3, "vier fünf sechs")], 0),
        ("Single, never closed [12 ‹one two three].", [], 1),
        ('Never closed [3 "a quote that runs on.\n\nNext paragraph.', [], 1),
        ("Our own marks copied back [3?] and [4†].", [], 2),
        ("Decoys: [3](https://a.test) [note] `xs[0]` [2021] [0].", [], 0),
    ],
)
def test_marks_are_read_as_writers_write_them(text: str, read: list[tuple[int, str]], unreadable: int) -> None:
    placeholders, cited = extract(text)
    assert [(c.n, c.quote) for c in cited if c.readable] == read
    assert sum(not c.readable for c in cited) == unreadable
    assert "\x00" not in text and ("[" not in placeholders or "Decoys" in text)


def test_marks_claim_is_the_sentence_that_ends_at_it() -> None:
    _text, cited = extract('First point. - The pumps ran all winter [1 "ran all winter long"]. Next.')
    assert [c.claim for c in cited] == ["The pumps ran all winter"]


def test_renumber_points_a_researcher_s_marks_at_the_ledger() -> None:
    assert renumber('A [1 "x y"] b [2] c [3 "z"].', [7, None, 9]) == 'A [7 "x y"] b  c [9 "z"].'


def test_provenance_names_the_source_a_quote_really_comes_from() -> None:
    pages = {1: Page.of("The museum opened in 1901 on the river bank."), 2: Page.of(PAGE)}
    marks = [Mark(index=0, n=1, quote="the drug was well-tolerated in most patients", claim="It was tolerated.")]
    check_provenance(marks, pages)
    assert marks[0].provenance == "elsewhere" and marks[0].elsewhere == 2 and not marks[0].quote_found
    unknown = [Mark(index=0, n=9, quote="x y z w", claim="c")]
    check_provenance(unknown, pages)
    assert unknown[0].provenance == "unknown_source" and mark_text(unknown[0]) == ""


def test_verification_line_says_what_was_proven() -> None:
    found = Mark(index=0, n=1, provenance="found", support="not_checked")
    assert mark_text(found) == "[1†]"
    v = Verification.of([found], sources=1)
    assert v.line().startswith("1 citations; 1 quotes found on the cited page; no claim was checked by a model")
    judged = [
        Mark(index=0, n=1, provenance="found", support="supported", checked_by="model"),
        Mark(index=1, n=1, provenance="found", support="unsupported", checked_by="model"),
        Mark(index=2, n=2, provenance="not_found", support="partly", checked_by="model"),
    ]
    v = Verification.of(judged, sources=2, verifier_model="m/x")
    assert v.citation_accuracy == pytest.approx(1 / 3, abs=1e-3) and v.supported_citations == 1 and v.removed == 1
    assert "a verifier model (`m/x`) judged 3 claims against the cited page: 1 supported" in v.line()
    assert "citation accuracy 33 % (1 of 3 checked claims supported)" in v.line()
    assert [mark_text(m) for m in judged] == ["[1]", "", "[2?]"]
    assert Verification.of([], sources=3).line().startswith("The writer cited none of the 3 sources")


# ------------------------------------------------------------------------------------ the hand-labelled set


def test_labelled_set_is_large_realistic_and_multilingual() -> None:
    cites, by_id = labelled.citations(), labelled.pages()
    assert len(cites) >= 200 and len(by_id) >= 20 and len({p.lang for p in by_id.values()}) >= 4
    kinds = {c.kind for c in cites}
    assert {"supported_exact", "supported_variant", "supported_reworded", "altered_quote", "fabricated_quote"} <= kinds
    assert {"wrong_page", *labelled.FALSE_KINDS} <= kinds
    text = "".join(p.text for p in by_id.values())
    for trap in ("&amp;", "&nbsp;", "\u00ad", "-\n", "](https://", "%", "\u2212"):
        assert trap in text, trap  # the page text carries what extractors leave in real pages
    assert re.search(r"^\|.*\|\n\|\s*:?-{3,}", text, re.MULTILINE)  # markdown tables


def test_labelled_provenance_agrees_with_every_label() -> None:
    outcomes = labelled.evaluate(verifier=False)
    wrong = [(o.citation.id, o.mark.reason) for o in outcomes if o.quote_found != o.citation.quote_on_page]
    assert wrong == []
    altered = [o for o in outcomes if o.citation.kind == "altered_quote"]
    assert altered and not any(o.quote_found for o in altered)  # no altered quote is ever "quote found"
    exact = [o for o in outcomes if o.citation.kind == "supported_exact"]
    assert sum(o.quote_found for o in exact) >= 0.95 * len(exact)


def test_labelled_no_false_claim_is_shown_supported() -> None:
    for verifier in (False, True):
        shown = labelled.evaluate(verifier=verifier)
        false = [o.citation.id for o in shown if o.citation.false_claim and o.shown == "supported"]
        assert false == [], (verifier, false)
    alone = labelled.evaluate(verifier=False)
    real_but_false = [o for o in alone if o.citation.kind in labelled.FALSE_KINDS]
    assert {o.shown for o in real_but_false} <= {"quote_found", "doubtful"}  # code alone says only "quote found"


def test_labelled_marks_are_read_as_labelled() -> None:
    for case in labelled.mark_cases():
        placeholders, cited = extract(case.text)
        assert [(c.n, c.quote) for c in cited if c.readable] == case.marks, case.id
        assert sum(not c.readable for c in cited) == case.leftover, case.id
        shown = render_marks(placeholders, [Mark(index=c.index, n=c.n, provenance="found") for c in cited])
        prose = re.sub(r"`[^`]*`", "", shown)  # code shows a mark literally, as code
        assert not re.search(r"[\[【［]\s*\d+\s*[:,]?\s*[\"“„«»‹›「『‘‚']", prose), case.id
