"""Reading the writer's citation marks, and writing the reader's.

Writers cite `[n "quote"]`, and in practice also `[n: "quote"]`, `[n, “quote”]`, `[n „Zitat“]`, `[n «citation»]`,
`[n ‹quote›]`, `[n ›Zitat‹]`, `[n 「引用」]`, a quote with double quotes inside it, a quote that runs over a line
break, several sources in one bracket (`[2 "…"; 1 "…"]`, `[1, 3]`, `[2-4]`), or full-width brackets. `extract`
reads all of them, in order, and replaces each with a placeholder; the sentence that ends at a mark is its claim.
Anything left that still looks like a mark (an opening quote that never closes, a number too large to be a source)
is counted as unreadable, and is shown to the reader as a plain `[n?]` (or dropped when no source number can be
read), never as the writer's raw syntax. Code spans and markdown links are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["PLACEHOLDER", "Cited", "extract", "renumber", "restore"]

PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
MAX_QUOTE_CHARS = 600
MAX_RANGE = 20
BRACKETS = {"[": "]", "【": "】", "［": "］"}
QUOTES = {
    '"': '"',
    "“": "”",
    "„": "“”",
    "«": "»",
    "»": "«",
    "‹": "›",
    "›": "‹",
    "「": "」",
    "『": "』",
    "‘": "’",
    "‚": "‘’",
    "'": "'",
}
_CLOSERS = "".join(BRACKETS.values())
_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]+`)", re.DOTALL)
_SENTENCE_END = re.compile(r"(?:[.!?]\s+|[。！？]\s*|\n)")
# A bracket that begins like a quoted citation, or a quoted citation whose bracket never closes.
_LOOKS_LIKE = re.compile(r"[\[【［]\s*(\d{1,6})\s*[:,]?\s*[\"“„«»‹›「『‘‚']")
# Where a citation mark begins: a bracket, a source number (1-999), then the bracket's end, a separator or a quote.
_MARK_START = re.compile(r"[\[【［]\s*[1-9]\d{0,2}(?!\d)\s*(?:[\]】］;,–-]|[:,]?\s*[\"“„«»‹›「『‘‚'])")
_PLAIN_LEFTOVER = re.compile(r"[\[【［]\s*(\d{1,3})\s*[?†*]\s*[\]】］]")


@dataclass
class Cited:
    """One citation read from the text: the source number, the quote (may be empty), the claim it backs, and
    whether it could be read at all."""

    index: int
    n: int
    quote: str = ""
    claim: str = ""
    readable: bool = True
    raw: str = ""


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _number(text: str, i: int) -> tuple[int, int] | None:
    match = re.compile(r"\d{1,3}(?!\d)").match(text, i)
    if match is None:
        return None
    value = int(match.group(0))
    return (value, match.end()) if value >= 1 else None


def _quoted(text: str, i: int, close: str) -> tuple[str, int] | None:
    """The quote that opens at `text[i]`, and the index after its closing mark. The closing mark is the first one
    followed (after spaces) by the bracket's end or the next item, so double quotes inside a quote are kept."""
    opener = text[i]
    closers = QUOTES[opener]
    j = i + 1
    limit = min(len(text), j + MAX_QUOTE_CHARS + 1)
    while j < limit:
        ch = text[j]
        if ch == "\n" and text[j + 1 : j + 2] == "\n":
            return None  # a paragraph break: this quote never closed
        if ch in BRACKETS and _MARK_START.match(text, j):
            return None  # the next citation begins: this quote never closed
        if ch in closers:
            after = _skip_space(text, j + 1)
            if after < len(text) and (
                text[after] in close or text[after] == ";" or (text[after] == "," and _next_is_item(text, after + 1))
            ):
                quote = " ".join(text[i + 1 : j].split())
                return (quote, j + 1) if quote else None
        j += 1
    return None


def _next_is_item(text: str, i: int) -> bool:
    return _number(text, _skip_space(text, i)) is not None


def _group(text: str, i: int) -> tuple[list[tuple[int, str]], int] | None:
    """The citations of a bracket that opens at `text[i]`, and the index after it; None when it is not one."""
    close = BRACKETS[text[i]]
    items: list[tuple[int, str]] = []
    j = _skip_space(text, i + 1)
    while True:
        read = _number(text, j)
        if read is None:
            return None
        n, j = read
        range_end = re.compile(r"\s*[-–]\s*(\d{1,3})(?!\d)").match(text, j)
        if range_end is not None and 0 < int(range_end.group(1)) - n <= MAX_RANGE:
            items += [(k, "") for k in range(n, int(range_end.group(1)) + 1)]
            j = range_end.end()
        else:
            k = _skip_space(text, j)
            if k < len(text) and text[k] in ":,":
                after = _skip_space(text, k + 1)
                if after < len(text) and text[after] in QUOTES:
                    k = after
            quote = ""
            if k < len(text) and text[k] in QUOTES:
                got = _quoted(text, k, close)
                if got is None:
                    return None
                quote, j = got
            items.append((n, quote))
        j = _skip_space(text, j)
        if j < len(text) and text[j] in close:
            if text[j + 1 : j + 2] == "(":  # [3](https://...) is a link, not a citation
                return None
            return items, j + 1
        if j < len(text) and text[j] in ";,":
            j = _skip_space(text, j + 1)
            continue
        return None


def _prose(text: str, found: list[Cited]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in BRACKETS:
            got = _group(text, i)
            if got is not None:
                items, end = got
                for n, quote in items:
                    found.append(Cited(index=len(found), n=n, quote=quote, raw=text[i:end]))
                    out.append(f"\x00{found[-1].index}\x00")
                i = end
                continue
        out.append(ch)
        i += 1
    return _leftovers("".join(out), found)


def _leftovers(text: str, found: list[Cited]) -> str:
    """What still looks like a citation mark after parsing: counted as unreadable, replaced by a placeholder."""

    def unreadable(match: re.Match[str]) -> str:
        n = int(match.group(1))
        found.append(Cited(index=len(found), n=n, readable=False, raw=match.group(0)))
        return f"\x00{found[-1].index}\x00"

    def cut(match: re.Match[str]) -> str:
        start = match.start()
        rest = text[start:]
        end = min(
            (p for p in (rest.find(c) for c in _CLOSERS) if p >= 0),
            default=-1,
        )
        line = rest.find("\n")
        if 0 <= end <= MAX_QUOTE_CHARS and (line < 0 or end < line):
            return rest[: end + 1]
        stop = line if line >= 0 else len(rest)
        return rest[:stop]

    pieces: list[str] = []
    i = 0
    for match in _LOOKS_LIKE.finditer(text):
        if match.start() < i:
            continue
        span = cut(match)
        pieces.append(text[i : match.start()])
        pieces.append(unreadable(re.match(r"[\[【［]\s*(\d{1,6})", span) or match))
        i = match.start() + len(span)
    pieces.append(text[i:])
    return _PLAIN_LEFTOVER.sub(unreadable, "".join(pieces))


def extract(report: str) -> tuple[str, list[Cited]]:
    """The report with each citation replaced by a placeholder, and the citations in order with their claims."""
    found: list[Cited] = []
    parts = _CODE.split(report)
    text = "".join(part if i % 2 else _prose(part, found) for i, part in enumerate(parts))
    for match in PLACEHOLDER.finditer(text):
        cited = found[int(match.group(1))]
        before = PLACEHOLDER.sub("", text[: match.start()]).rstrip()
        start = max((m.end() for m in _SENTENCE_END.finditer(before)), default=0)
        cited.claim = " ".join(before[start:].split()).lstrip("#-*>+ ").strip()[:400]
    return text, found


def restore(text: str, show: Callable[[int], str]) -> str:
    """Put each placeholder's rendering (`show(index)`) back into `text`."""
    return PLACEHOLDER.sub(lambda m: show(int(m.group(1))), text)


def renumber(text: str, numbers: Sequence[int | None]) -> str:
    """A researcher's own numbering ([1], [2 "quote"]… for its web results) turned into the ledger's numbers, in
    the canonical `[n "quote"]` form; a citation of a result with no ledger source is dropped, quote and all."""
    placeholders, found = extract(text)

    def show(index: int) -> str:
        cited = found[index]
        n = numbers[cited.n - 1] if cited.readable and 0 < cited.n <= len(numbers) else None
        if n is None:
            return ""
        quote = cited.quote.replace('"', "'")
        return f'[{n} "{quote}"]' if quote else f"[{n}]"

    return restore(placeholders, show)
