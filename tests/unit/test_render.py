"""Text renderings: what the host shows. Model and web text is made safe; long text is bounded."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from openrouter_research_mcp._markdown import escape_inline, safe_markdown
from openrouter_research_mcp._util import usd
from openrouter_research_mcp.openrouter.completion import Source, parse_completion
from openrouter_research_mcp.openrouter.pricing import Usage
from openrouter_research_mcp.tools.render import ANSWER_CHARS, render_ask
from openrouter_research_mcp.tools.results import AskResult

from .helpers import completion


def answer(text: str = "ok", **fields: object) -> AskResult:
    base = {"answer": text, "model": "a/b", "model_requested": "a/b", "usage": Usage(cost_usd=0.001), "latency_s": 1}
    return AskResult.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("unsafe", "shown"),
    [
        ("<a href='javascript:alert(6)'>x</a>", "‹a href='javascript:alert(6)'>x‹/a>"),
        ("![img](data:image/svg+xml,<svg/onload=alert(7)>)", "[image: img]"),
        ("[evil](javascript:alert(4))", "evil"),
        ("[v](vbscript:msgbox(1)) and [f](file:///etc/passwd)", "v and f"),
        ("<img src=x onerror=alert(1)>", "‹img src=x onerror=alert(1)>"),
        ("[ok](https://x.org/a_(b)) `<b>code</b>`", "[ok](https://x.org/a_(b)) `‹b>code‹/b>`"),
        ("```html\n<b>code</b>\n```\nthen <b>", "```html\n<b>code</b>\n```\nthen ‹b>"),
        ("a < b and c > d [1]", "a < b and c > d [1]"),
    ],
)
def test_safe_markdown_neutralises_html_and_script_links(unsafe: str, shown: str) -> None:
    assert safe_markdown(unsafe) == shown


def test_escape_inline_keeps_a_title_plain() -> None:
    assert escape_inline("[evil](javascript:alert(4))\n<img>") == r"\[evil\]\(javascript:alert\(4\)\) ‹img>"


def test_parse_keeps_only_web_sources() -> None:
    notes = [
        {"type": "url_citation", "url_citation": {"url": url, "title": "t"}}
        for url in (
            "javascript:alert(1)",
            "data:text/html,x",
            "vbscript:x",
            "file:///etc/passwd",
            "//relative",
            "https://ok.test/a",
            "HTTP://OK.TEST/b",
        )
    ]
    result = parse_completion(completion("x", annotations=notes), "a/b")
    assert [(s.n, s.url) for s in result.citations] == [(1, "https://ok.test/a"), (2, "HTTP://OK.TEST/b")]


def test_render_ask_shows_a_refusal_escapes_titles_and_caps_sources() -> None:
    refused = render_ask(answer("", refusal="I won't."))
    assert refused.startswith("The model declined to answer: I won't.") and "(no text)" not in refused
    sources = [
        Source(n=i, url=f"https://s.test/{i}", title="[evil](javascript:alert(4)) <img src=x>") for i in range(1, 21)
    ]
    text = render_ask(answer("Hi", sources=sources, more_sources=9980))
    assert "](javascript:" not in text and "<img" not in text and "(+9980 more)" in text


def test_render_ask_bounds_a_huge_answer() -> None:
    text = render_ask(answer("x" * (20 * 1024 * 1024)))
    assert ANSWER_CHARS <= len(text) < ANSWER_CHARS + 1000 and "more characters" in text


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), -1.5])
def test_usd_never_prints_an_impossible_amount(value: float | None) -> None:
    assert usd(value) == "unknown"


HOSTILE = [
    "<a href='javascript:alert(6)'>x</a>",
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    "![img](data:image/svg+xml,<svg/onload=alert(7)>)",
    "[evil](javascript:alert(4))",
    "[evil](JaVaScRiPt:alert(4))",
    "[evil](java\tscript:alert(4))",
    "[e]( javascript:alert(1) )",
    "[e][ref]\n\n[ref]: javascript:alert(5)",
    "<javascript:alert(3)>",
    "`x` <img src=y> `y`",
    "``<img src=z>``",
    "~~~\n<b>fenced</b>\n~~~\n<img src=after>",
    "    <img src=indented>",
    "<div\n><img src=multiline></div>",
    "&lt;img src=entity&gt; &#60;img src=x&#62;",
    "[a](<javascript:alert(8)>)",
    "<!-- <img src=comment> -->",
    "<https://ok.test/a>",
]


class _Tags(HTMLParser):
    """Every element and link target in rendered HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.targets += [value or "" for name, value in attrs if name in ("href", "src")]


def test_safe_markdown_rendered_with_raw_html_on_has_no_image_or_script_link() -> None:
    renderer = MarkdownIt("commonmark", {"html": True})
    for text in [*HOSTILE, "\n\n".join(HOSTILE)]:
        found = _Tags()
        found.feed(renderer.render(safe_markdown(text)))
        assert not found.tags & {"img", "script", "div", "svg", "iframe"}, (text, found.tags)
        assert all(t.startswith(("https:", "http:")) for t in found.targets), (text, found.targets)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.995, "$1.00"), (0.99499, "$0.995"), (3.195e-05, "$0.000032"), (1234.5, "$1,234.50"), (0.01, "$0.01")],
)
def test_usd_rounds_the_figure_it_shows(value: float, shown: str) -> None:
    assert usd(value) == shown


def test_usd_never_shows_a_smaller_amount_for_a_larger_cost() -> None:
    def amount(text: str) -> float:
        return float(text.lstrip("$").replace(",", ""))

    values = sorted({round(10 ** (e / 40) * m, 12) for e in range(-280, 160) for m in (1, 1.004, 1.0049, 1.005)})
    shown = [amount(usd(v)) for v in values]
    assert all(a <= b for a, b in zip(shown, shown[1:], strict=False))
