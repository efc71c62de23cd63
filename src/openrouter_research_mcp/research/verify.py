"""The check in code after the writer: only ledger citations and ledger URLs survive in a report."""

from __future__ import annotations

import re

from .._markdown import escape_inline, safe_markdown
from .ledger import CitationLedger

__all__ = ["source_list", "verify_citations"]

_GROUP = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")  # [3], [1, 2], [2-4]
# A URL may hold one level of balanced parentheses (Wikipedia's `Mercury_(planet)`).
_URL_BODY = r"(?:[^\s<>()\[\]\"'`]|\([^\s<>()\"'`]*\))+"
_LINK = re.compile(rf"\[([^\]]*)\]\(\s*((?:https?|ftp|javascript|data):{_URL_BODY})\s*\)", re.IGNORECASE)
_URL = re.compile(rf"\b(?:https?://|www\.){_URL_BODY}", re.IGNORECASE)
_CODE = re.compile(r"(```.*?```|`[^`\n]+`)", re.DOTALL)  # code is left alone: `xs[0]` is not a citation


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for piece in re.split(r"\s*[,;]\s*", group):
        if re.fullmatch(r"\d+\s*[–-]\s*\d+", piece):
            lo, hi = (int(x) for x in re.split(r"\s*[–-]\s*", piece))
            out.extend(range(lo, hi + 1) if 0 < hi - lo < 50 else [lo, hi])
        elif piece.strip().isdigit():
            out.append(int(piece))
    return out


def _known(url: str, ledger: CitationLedger) -> bool:
    return ledger.knows_url(url) or (url.lower().startswith("www.") and ledger.knows_url(f"https://{url}"))


def verify_citations(report: str, ledger: CitationLedger) -> tuple[str, int]:
    """Remove every `[n]` that is not a ledger number and every URL or link that is not a ledger URL.

    Returns the cleaned report and how many citations or URLs were removed. Code spans are not touched.
    """
    valid = ledger.numbers()
    removed = 0

    def fix_link(match: re.Match[str]) -> str:
        nonlocal removed
        if _known(match.group(2), ledger):
            return match.group(0)
        removed += 1
        return match.group(1)

    def fix_url(match: re.Match[str]) -> str:
        nonlocal removed
        url = match.group(0).rstrip(".,;:!?")
        if _known(url, ledger):
            return match.group(0)
        removed += 1
        return match.group(0)[len(url) :]

    def fix_group(match: re.Match[str]) -> str:
        nonlocal removed
        numbers = _numbers(match.group(1))
        kept = [n for n in numbers if n in valid]
        removed += len(numbers) - len(kept)
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    def fix_prose(text: str) -> str:
        text = _LINK.sub(fix_link, text)
        # Bare URLs, outside the (ledger) links kept above.
        pieces = re.split(rf"(\[[^\]]*\]\(\s*https?:{_URL_BODY}\s*\))", text, flags=re.IGNORECASE)
        text = "".join(p if _LINK.fullmatch(p) else _URL.sub(fix_url, p) for p in pieces)
        text = _GROUP.sub(fix_group, text)
        return re.sub(r"[ \t]+([.,;:])", r"\1", text)

    parts = _CODE.split(report)
    body = "".join(part if i % 2 else fix_prose(part) for i, part in enumerate(parts))
    return safe_markdown(body), removed


def source_list(ledger: CitationLedger) -> str:
    """The numbered source list that ends every report (titles escaped: web text cannot inject links)."""
    if not ledger.entries:
        return "## Sources\n\nNo web sources were found."
    lines = ["## Sources", ""]
    lines += [f"{e.n}. [{escape_inline(e.title or e.url)}](<{e.url}>)" for e in ledger.entries]
    return "\n".join(lines)
