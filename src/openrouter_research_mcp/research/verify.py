"""The check in code after the writer: only ledger citations and ledger URLs survive in a report."""

from __future__ import annotations

import re

from .ledger import CitationLedger

__all__ = ["source_list", "verify_citations"]

_GROUP = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")  # [3], [1, 2], [2-4]
_LINK = re.compile(r"\[([^\]]*)\]\((https?://[^)\s]+)\)")  # [text](url)
_URL = re.compile(r"https?://[^\s<>\)\]\"']+")


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for piece in re.split(r"\s*[,;]\s*", group):
        if re.fullmatch(r"\d+\s*[–-]\s*\d+", piece):
            lo, hi = (int(x) for x in re.split(r"\s*[–-]\s*", piece))
            out.extend(range(lo, hi + 1) if 0 < hi - lo < 50 else [lo, hi])
        elif piece.strip().isdigit():
            out.append(int(piece))
    return out


def verify_citations(report: str, ledger: CitationLedger) -> tuple[str, int]:
    """Remove every `[n]` that is not a ledger number and every URL that is not a ledger URL.

    Returns the cleaned report and how many citations or URLs were removed.
    """
    valid = ledger.numbers()
    removed = 0

    def fix_link(match: re.Match[str]) -> str:
        nonlocal removed
        text, url = match.group(1), match.group(2)
        if ledger.knows_url(url):
            return match.group(0)
        removed += 1
        return text

    def fix_url(match: re.Match[str]) -> str:
        nonlocal removed
        url = match.group(0).rstrip(".,;:")
        tail = match.group(0)[len(url):]
        if ledger.knows_url(url):
            return match.group(0)
        removed += 1
        return "" + tail

    def fix_group(match: re.Match[str]) -> str:
        nonlocal removed
        numbers = _numbers(match.group(1))
        kept = [n for n in numbers if n in valid]
        removed += len(numbers) - len(kept)
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    body = _LINK.sub(fix_link, report)
    # Bare URLs, but not those inside a kept markdown link (they are ledger URLs already).
    pieces = re.split(r"(\[[^\]]*\]\(https?://[^)\s]+\))", body)
    body = "".join(p if _LINK.fullmatch(p) else _URL.sub(fix_url, p) for p in pieces)
    body = _GROUP.sub(fix_group, body)
    body = re.sub(r"[ \t]+([.,;:])", r"\1", body)
    return body, removed


def source_list(ledger: CitationLedger) -> str:
    """The numbered source list that ends every report."""
    lines = ["## Sources", ""]
    lines += [f"{e.n}. [{e.title or e.url}]({e.url})" for e in ledger.entries]
    return "\n".join(lines) if ledger.entries else "## Sources\n\nNo web sources were found."
