"""Provenance: is the writer's quote really on the page it cites? Decided in code, strictly.

A quote is *found* when its tokens (see `pagetext.py`: folded words, numbers by value) occur in the page in order,
and *found as a variant* when the only differences are ones a careful copyist makes without changing what the page
says: a spelling variant (one slipped letter in a word of six letters or more, keeping its first letter), a
compound written apart or together, an article swapped or a stopword added or dropped. Any changed number,
negation, antonym or other content word fails. A quote with an ellipsis (`…`) is found when each of its pieces is,
in order and close together. A quote too short to prove anything (under four words, or four CJK characters) is
never "found".

Found is not the same as true: a real quote can sit beside a claim that misstates it. Whether the page supports the
*claim* is the verifier's question (`support.py`); this module only gives it the passage to judge and the figures in
the claim that the passage does not contain, and names the one case code decides alone: a claim that restates its
own quote word for word, where that quote is a whole sentence of the page (`claim_restates_quote`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Literal

from .pagetext import ARTICLES, NEGATIONS, STOPWORDS, Token, clean, same_number, tokens
from .planning import PASSAGE_CHARS

__all__ = [
    "MIN_QUOTE_CJK",
    "MIN_QUOTE_WORDS",
    "PASSAGE_CHARS",
    "Found",
    "Page",
    "claim_restates_quote",
    "find_quote",
    "missing_numbers",
    "passage",
]

MIN_QUOTE_WORDS = 4  # "in 2020" is on many pages: a shorter quote proves nothing
MIN_QUOTE_CJK = 4  # CJK characters carry a word each
MIN_CLAIM_TOKENS = 5  # a claim this long that restates its quote, a whole sentence of the page, is supported by it
# What ends a sentence, list item or table cell, in the text between two tokens.
_SENTENCE_GAP = re.compile(r"[.!?。！？|\n]")
_ELLIPSIS = ("…", "...", "[…]", "[...]", "(…)", "(...)")
# Pairs a one-letter slip can turn into each other, or that differ little in letters but a lot in meaning.
ANTONYMS = frozenset(
    frozenset(pair)
    for pair in (
        ("above", "below"),
        ("before", "after"),
        ("increase", "decrease"),
        ("increased", "decreased"),
        ("increases", "decreases"),
        ("higher", "lower"),
        ("more", "less"),
        ("most", "least"),
        ("maximum", "minimum"),
        ("inflow", "outflow"),
        ("import", "export"),
        ("imports", "exports"),
        ("male", "female"),
        ("win", "loss"),
        ("won", "lost"),
        ("über", "unter"),
        ("uber", "unter"),
        ("mehr", "weniger"),
        ("plus", "moins"),
        ("mas", "menos"),
        ("superior", "inferior"),
    )
)

Kind = Literal["found", "variant", "not_found", "too_short"]


@dataclass
class Page:
    """A source's evidence, cleaned and cut into tokens once for all its citations (with each token's comparison
    key, and where each key occurs)."""

    text: str
    toks: list[Token] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    at: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: str) -> Page:
        text = clean(raw)
        toks = tokens(text)
        keys = [_key(t) for t in toks]
        at: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            at.setdefault(key, []).append(i)
        return cls(text=text, toks=toks, keys=keys, at=at)


@dataclass
class Found:
    """Where a quote is on a page, if it is, and how it differs."""

    kind: Kind
    start: int = 0  # characters, in the cleaned page text
    end: int = 0
    score: float = 0.0  # the share of the quote's tokens matched exactly, 0-100
    reason: str = ""  # why a near miss failed, or what a variant changed

    @property
    def ok(self) -> bool:
        return self.kind in ("found", "variant")


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (one letter added, dropped, changed, or two swapped)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        if len(diffs) != 2 or diffs[1] != diffs[0] + 1:
            return False
        return a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def spelling_variant(a: Token, b: Token) -> bool:
    """Whether two different word tokens are one word misspelt (see the module docstring)."""
    if a.kind != "word" or b.kind != "word" or a.text in NEGATIONS or b.text in NEGATIONS:
        return False
    if frozenset((a.text, b.text)) in ANTONYMS:
        return False
    if min(len(a.text), len(b.text)) < 6 or a.text[0] != b.text[0]:
        return False
    return _edit_distance_at_most_one(a.text, b.text)


def _light(token: Token) -> bool:
    """A token a copied quote may add or drop: a stopword, never a negation or a number."""
    return token.kind != "number" and token.text in STOPWORDS and token.text not in NEGATIONS


def _describe(q: Sequence[Token], w: Sequence[Token]) -> str:
    shown_q = " ".join(t.text for t in q) or "nothing"
    shown_w = " ".join(t.text for t in w) or "nothing"
    if any(t.is_number for t in (*q, *w)):
        return f"a number differs (quote: {shown_q}; page: {shown_w})"
    if any(t.text in NEGATIONS for t in (*q, *w)):
        return f"a negation differs (quote: {shown_q}; page: {shown_w})"
    return f"words differ (quote: {shown_q}; page: {shown_w})"


def _judge(q: Sequence[Token], w: Sequence[Token]) -> tuple[bool, str, int]:
    """Whether quote tokens `q` may stand for page tokens `w` (a window aligned to them), why not, and how many
    tokens matched exactly."""
    matcher = SequenceMatcher(None, [_key(t) for t in q], [_key(t) for t in w], autojunk=False)
    equal, variants = 0, []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        qs, ws = q[i1:i2], w[j1:j2]
        if op == "equal":
            if all(a.same(b) for a, b in zip(qs, ws, strict=True)):
                equal += i2 - i1
                continue
            return False, _describe(qs, ws), equal
        if op == "replace":
            if "".join(t.text for t in qs) == "".join(t.text for t in ws) and not any(t.is_number for t in (*qs, *ws)):
                variants.append("a compound written apart or together")
                continue
            pairs = zip(qs, ws, strict=False)
            if len(qs) == len(ws) and all(
                spelling_variant(a, b) or (a.text in ARTICLES and b.text in ARTICLES) for a, b in pairs
            ):
                variants.append("a spelling variant")
                continue
            return False, _describe(qs, ws), equal
        if all(_light(t) for t in (*qs, *ws)):  # "insert" or "delete": stopwords only
            variants.append("a stopword added or dropped")
            continue
        return False, _describe(qs, ws), equal
    return True, "; ".join(dict.fromkeys(variants)), equal


def _key(token: Token) -> str:
    # Numbers align with numbers (whether they are the same number is checked exactly after alignment, since one
    # may have several readings), words on their folded text.
    return "#" if token.is_number else token.text


def _exact(q: Sequence[Token], page: Page, start: int = 0) -> int | None:
    n = len(q)
    for i in page.at.get(_key(q[0]), []):
        if (
            i >= start
            and i + n <= len(page.toks)
            and all(a.same(b) for a, b in zip(q, page.toks[i : i + n], strict=True))
        ):
            return i
    return None


def _windows(keys: Sequence[str], wanted: set[str], size: int, start: int) -> list[tuple[int, int]]:
    """(start, how many of `wanted` it holds) for every window of `size` keys from `start`, in one pass."""
    counts: dict[str, int] = {}
    held = 0
    out = []
    for i in range(start, len(keys)):
        key = keys[i]
        if key in wanted:
            counts[key] = counts.get(key, 0) + 1
            held += counts[key] == 1
        first = i - size + 1
        if first > start:
            gone = keys[first - 1]
            if gone in wanted:
                counts[gone] -= 1
                held -= counts[gone] == 0
        if first >= start:
            out.append((first, held))
    # The last windows run past the end of the page: slide on, only dropping keys.
    for first in range(max(len(keys) - size + 1, start), len(keys)):
        if first > start and first > len(keys) - size:
            gone = keys[first - 1]
            if gone in wanted:
                counts[gone] -= 1
                held -= counts[gone] == 0
        if not out or out[-1][0] < first:
            out.append((first, held))
    return out


def _candidates(q: Sequence[Token], page: Page, start: int, limit: int = 12) -> list[int]:
    """Window starts in `page` that share the most of the quote's tokens (at least half of them)."""
    wanted = {_key(t) for t in q}
    scored = [(h, i) for i, h in _windows(page.keys, wanted, len(q) + 4, start) if h * 2 >= len(wanted)]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [i for _shared, i in scored[:limit]]


def _near(q: Sequence[Token], page: Page, start: int) -> tuple[Found, int] | None:
    """The best window of `page` (from token `start`) that the quote may stand for, or the nearest miss."""
    best_miss: Found | None = None
    for i in _candidates(q, page, start):
        offset = max(i - 2, 0)
        window = page.toks[offset : i + len(q) + 4]
        matcher = SequenceMatcher(None, [_key(t) for t in q], [_key(t) for t in window], autojunk=False)
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        if not blocks:
            continue
        lo, hi = blocks[0].b, blocks[-1].b + blocks[-1].size
        # Quote tokens before the first block or after the last must be matched by page tokens there too.
        lo = max(lo - blocks[0].a, 0)
        hi = min(hi + (len(q) - blocks[-1].a - blocks[-1].size), len(window))
        aligned = window[lo:hi]
        ok, why, equal = _judge(q, aligned)
        score = 100.0 * equal / max(len(q), 1)
        if ok and equal * 10 >= len(q) * 7:
            return Found("variant", aligned[0].start, aligned[-1].end, score, why), offset + hi
        if best_miss is None or score > best_miss.score:
            best_miss = Found("not_found", score=score, reason=why or "too few of the quote's words are on the page")
    return (best_miss, start) if best_miss is not None else None


def _too_short(q: Sequence[Token]) -> bool:
    cjk = sum(t.kind == "cjk" for t in q)
    words = sum(t.kind != "cjk" for t in q)
    return words < MIN_QUOTE_WORDS and cjk < MIN_QUOTE_CJK and words + cjk // 2 < MIN_QUOTE_WORDS


def _pieces(quote: str) -> list[str]:
    text = quote
    for mark in _ELLIPSIS:
        text = text.replace(mark, "\x00")
    return [p.strip() for p in text.split("\x00") if p.strip()]


def find_quote(quote: str, page: Page) -> Found:
    """Whether `quote` is on `page`, strictly (see the module docstring)."""
    pieces = [tokens(clean(p)) for p in _pieces(quote)]
    pieces = [p for p in pieces if p]
    if not pieces or _too_short([t for p in pieces for t in p]):
        return Found("too_short", reason="the quote is too short to show it comes from this page")
    at, first_start, last_end, kinds, scores, reasons = 0, -1, 0, [], [], []
    for piece in pieces:
        exact = _exact(piece, page, at)
        if exact is not None and (first_start < 0 or exact - at <= 80):
            span = page.toks[exact : exact + len(piece)]
            found = Found("found", span[0].start, span[-1].end, 100.0)
            at = exact + len(piece)
        else:
            near = _near(piece, page, at)
            if near is None:
                return Found("not_found", reason="the quote's words are not on this page")
            found, at = near
            if not found.ok:
                return found
        first_start = found.start if first_start < 0 else first_start
        last_end = found.end
        kinds.append(found.kind)
        scores.append(found.score)
        if found.reason:
            reasons.append(found.reason)
    kind: Kind = "found" if all(k == "found" for k in kinds) else "variant"
    return Found(kind, first_start, last_end, min(scores), "; ".join(dict.fromkeys(reasons)))


def passage(page: Page, found: Found | None, near: str, limit: int = PASSAGE_CHARS) -> str:
    """The part of the page a verifier reads for a citation: around the quote where it was found, else around the
    words of `near` (the claim and quote), widened to sentence ends, at most `limit` characters."""
    text = page.text
    if len(text) <= limit:
        return text.strip()
    if found is not None and found.ok:
        centre = (found.start + found.end) // 2
    else:
        centre = _densest(page, tokens(clean(near)), limit)
    start = max(centre - limit // 2, 0)
    end = min(start + limit, len(text))
    start = max(end - limit, 0)
    # Widen to whole sentences where that costs little.
    head = max(text.rfind(". ", max(start - 200, 0), start), text.rfind("\n", max(start - 200, 0), start))
    if head > 0 and end - (head + 1) <= limit + 200:
        start = head + 1
    tail = max(text.find(". ", end, end + 200), text.find("\n", end, end + 200))
    if tail > 0:
        end = tail + 1
    return text[start:end].strip()


def _densest(page: Page, near: Sequence[Token], limit: int) -> int:
    """The character at the centre of the page window that holds most of `near`'s content tokens."""
    wanted = {_key(t) for t in near if not _light(t)}
    if not wanted or not page.toks:
        return 0
    size = max(1, len(page.toks) * limit // max(len(page.text), 1))  # tokens in about `limit` characters
    best_start, best = max(_windows(page.keys, wanted, size, 0), key=lambda w: (w[1], -w[0]))
    last = page.toks[min(best_start + size, len(page.toks)) - 1]
    return (page.toks[best_start].start + last.end) // 2


def missing_numbers(claim: str, *texts: str) -> list[str]:
    """The figures of `claim` that none of `texts` contains (as whole numbers, by value, sign, percent and unit)."""
    available = [t for text in texts for t in tokens(clean(text)) if t.is_number]
    out = []
    for number in (t for t in tokens(clean(claim)) if t.is_number):
        if not any(same_number(number, other) for other in available):
            out.append(number.text)
    return list(dict.fromkeys(out))


def _whole_sentence(page: Page, first: int, end: int) -> bool:
    """Whether page tokens `first` to `end` are a whole sentence, list item or table cell (an article before them
    at most): nothing else in that sentence can turn what they say around."""
    toks, text = page.toks, page.text
    i = first
    while i > 0 and not _SENTENCE_GAP.search(text[toks[i - 1].end : toks[i].start]):
        if toks[i - 1].text not in ARTICLES:
            return False
        i -= 1
    return end >= len(toks) or _SENTENCE_GAP.search(text[toks[end - 1].end : toks[end].start]) is not None


def claim_restates_quote(claim: str, quote: str, page: Page) -> bool:
    """Whether the claim is its own quote, word for word, and that quote is a whole sentence of the page: then the
    page itself says what the claim says. Nothing looser: words of the claim found inside a longer sentence of the
    page ("critics wrongly claimed that ...") may be denied by the rest of it, which only a verifier can judge."""

    def said(text: str) -> list[Token]:
        out = tokens(clean(text))
        while out and out[0].text in ARTICLES:
            out = out[1:]
        return out

    wanted, quoted = said(claim), said(quote)
    if len(wanted) < MIN_CLAIM_TOKENS or len(wanted) != len(quoted):
        return False
    if not all(a.same(b) for a, b in zip(wanted, quoted, strict=True)):
        return False
    n = len(wanted)
    return any(
        i + n <= len(page.toks)
        and all(a.same(b) for a, b in zip(wanted, page.toks[i : i + n], strict=True))
        and _whole_sentence(page, i, i + n)
        for i in page.at.get(_key(wanted[0]), [])
    )
