"""A seeded mix of true and false citations of the corpus pages, for measuring the citation check (the bench) and
guarding it (the tests). True ones quote a page exactly, or as a writer might copy it (other case or punctuation, a
typo); false ones change a number, quote another page, invent, or quote nothing."""

from __future__ import annotations

import random
import re

from openrouter_research_mcp.research.quotes import Mark

from .corpus import PAGES

__all__ = ["seeded_citations"]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 8]


def _reformat(quote: str, rng: random.Random) -> str:
    """The same words as a writer might copy them: other case, other punctuation, a dropped comma, extra spaces."""
    words = quote.split()
    choice = rng.randrange(4)
    if choice == 0:
        return quote.upper()
    if choice == 1:
        return "  ".join(w.strip(",;:") for w in words)
    if choice == 2:
        return quote.replace(",", "").replace(".", "") + "."
    i = rng.randrange(len(words))  # one letter slipped in one long word: a typo, not a new claim
    word = words[i]
    if len(word) > 6 and not any(ch.isdigit() for ch in word):
        words[i] = word[:3] + word[4:]
    return " ".join(words)


def _bad(quote: str, other: str, rng: random.Random) -> tuple[str, str]:
    """A citation its source does not back: a changed number, another page's words, an invention, or no quote."""
    numbers = re.findall(r"\d+", quote)
    choice = rng.randrange(4)
    if choice == 0 and numbers:
        n = rng.choice(numbers)
        return "changed number", quote.replace(n, str(int(n) + rng.randint(1, 9)), 1)
    if choice == 1:
        return "another page's words", other
    if choice == 2:
        return "invented", "the colony decides every question by a secret ballot of the drones"
    return "no quote", ""


def seeded_citations(seed: int = 2026) -> tuple[list[Mark], dict[int, str], list[bool]]:
    """Citations of the corpus pages, half true (quoted exactly or reformatted) and half not."""
    rng = random.Random(seed)
    pages = list(PAGES.values())
    evidence = {n: text for n, (_title, text) in enumerate(pages, start=1)}
    marks: list[Mark] = []
    truth: list[bool] = []
    for n, text in evidence.items():
        for sentence in [s for s in _sentences(text) for _ in range(4)]:
            words = sentence.split()
            start = rng.randrange(max(len(words) - 6, 1))
            quote = " ".join(words[start : start + rng.randint(6, 14)])
            good = rng.random() < 0.5
            if good:
                quote = quote if rng.random() < 0.5 else _reformat(quote, rng)
            else:
                other_page = evidence[rng.choice([k for k in evidence if k != n])]
                other = " ".join(rng.choice(_sentences(other_page)).split()[:10])
                _kind, quote = _bad(quote, other, rng)
            marks.append(Mark(index=len(marks), n=n, quote=quote, claim=sentence))
            truth.append(good)
    return marks, evidence, truth
