"""The citation ledger and the in-code citation check."""

from __future__ import annotations

import re

import pytest

from openrouter_research_mcp.research.ledger import CitationLedger, normalise_url
from openrouter_research_mcp.research.verify import source_list, verify_citations


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://Example.org/a/", "https://example.org/a"),
        ("https://www.example.org/a#section", "https://example.org/a"),
        ("https://example.org:443/a?utm_source=x&b=2&a=1", "https://example.org/a?a=1&b=2"),
        ("http://example.org:80/", "http://example.org"),
    ],
)
def test_normalise_url_folds_equivalent_urls(a: str, b: str) -> None:
    assert normalise_url(a) == normalise_url(b)


def test_normalise_url_keeps_different_pages_apart() -> None:
    assert normalise_url("https://example.org/a?id=1") != normalise_url("https://example.org/a?id=2")
    assert normalise_url("https://example.org/a") != normalise_url("https://example.com/a")


def test_ledger_numbers_and_deduplicates() -> None:
    ledger = CitationLedger()
    assert ledger.add("https://a.test/x", "A", "", "q1") == 1
    assert ledger.add("https://b.test/y", "B", "b", "q1") == 2
    assert ledger.add("https://www.A.test/x/#top", "A again", "late snippet", "q2") == 1
    assert len(ledger) == 2 and ledger.entries[0].found_by == "q1" and ledger.entries[0].snippet == "late snippet"
    assert ledger.knows_url("https://a.test/x?utm_medium=email") and not ledger.knows_url("https://c.test")


def ledger_of(*urls: str) -> CitationLedger:
    ledger = CitationLedger()
    for url in urls:
        ledger.add(url, url, "", "q")
    return ledger


def test_verify_keeps_ledger_citations_and_removes_invented_ones() -> None:
    ledger = ledger_of("https://a.test/1", "https://b.test/2")
    report = (
        "Claim one [1]. Claim two [2][7]. Grouped [1, 2, 9]. Range [1-3]. "
        "See https://a.test/1 and https://invented.test/page. A [link](https://nowhere.test/x) "
        "and a [real link](https://b.test/2)."
    )
    cleaned, removed = verify_citations(report, ledger)
    assert "[7]" not in cleaned and "[9]" not in cleaned and "[3]" not in cleaned
    assert "invented.test" not in cleaned and "nowhere.test" not in cleaned
    assert "[1]" in cleaned and "[2]" in cleaned and "https://a.test/1" in cleaned
    assert "[real link](https://b.test/2)" in cleaned and "A link" in cleaned
    assert removed == 5  # [7], [9], the 3 of [1-3], invented.test and the nowhere.test link
    assert {int(n) for n in re.findall(r"\[(\d+)\]", cleaned)} <= ledger.numbers()


def test_verify_with_empty_ledger_removes_every_citation() -> None:
    cleaned, removed = verify_citations("Fact [1]. Another [2] https://x.test/y.", CitationLedger())
    assert "[1]" not in cleaned and "x.test" not in cleaned and removed == 3


def test_source_list_numbers_every_entry() -> None:
    listed = source_list(ledger_of("https://a.test/1", "https://b.test/2"))
    assert listed.splitlines()[2:] == [
        "1. [https://a.test/1](<https://a.test/1>)",
        "2. [https://b.test/2](<https://b.test/2>)",
    ]


def test_source_list_escapes_titles_so_web_text_cannot_add_links() -> None:
    ledger = CitationLedger()
    ledger.add("https://a.test/1", "Click [here](https://evil.example/x)\nnow", "", "q")
    [line] = source_list(ledger).splitlines()[2:]
    assert line == "1. [Click \\[here\\]\\(https://evil.example/x\\) now](<https://a.test/1>)"


def test_ledger_accepts_only_web_urls_and_odd_urls_never_crash() -> None:
    ledger = CitationLedger()
    assert ledger.add("javascript:alert(1)", "x", "", "q") is None and ledger.add("/relative", "x", "", "q") is None
    assert (
        ledger.add("http://[::1]:8080/", "v6", "", "q") == 1
        and ledger.add("http://example.org:99999/", "p", "", "q") == 2
    )
    assert normalise_url("http://example.org:99999/") == "http://example.org:99999/"


def test_verify_is_case_blind_keeps_parenthesised_urls_and_leaves_code_alone() -> None:
    ledger = ledger_of("https://en.wikipedia.org/wiki/Mercury_(planet)")
    report = (
        "See [Mercury](https://en.wikipedia.org/wiki/Mercury_(planet)) and "
        "https://en.wikipedia.org/wiki/Mercury_(planet). Not HTTPS://EVIL.example/x nor [t](Https://evil.x/y) "
        "nor www.evil.example/page. Code `xs[0]` and\n```\nm[2][3]\n```\n[1]"
    )
    cleaned, removed = verify_citations(report, ledger)
    assert "[Mercury](https://en.wikipedia.org/wiki/Mercury_(planet))" in cleaned
    assert "and https://en.wikipedia.org/wiki/Mercury_(planet)." in cleaned
    assert "evil" not in cleaned.lower() and removed == 3
    assert "`xs[0]`" in cleaned and "m[2][3]" in cleaned and cleaned.endswith("[1]")
