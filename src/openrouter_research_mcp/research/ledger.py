"""The citation ledger: every web source the research found, de-duplicated by normalised URL and numbered.

Only ledger entries may be cited in a report, so every source a reader sees was really returned by a web-grounded
model call, together with the sub-question that found it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._util import is_web_url
from ..openrouter.completion import Source

__all__ = ["EVIDENCE_CHARS", "SNIPPET_CHARS", "CitationLedger", "normalise_url"]

_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ref_src")
SNIPPET_CHARS = 500
EVIDENCE_CHARS = 8000  # per source: the text researchers saw of it (passages and read pages), for checking quotes


def normalise_url(url: str) -> str:
    """A canonical form for de-duplication: lower-case scheme and host, no `www.`, default port, fragment,
    tracking parameters or trailing slash; query parameters sorted. Never raises: a URL `urlsplit` cannot read
    (a bad port, a broken IPv6 literal) is compared as its stripped, lower-cased text."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().removeprefix("www.")
        port = parts.port
    except ValueError:
        return url.strip().lower()
    scheme = parts.scheme.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith(_TRACKING)
    )
    path = parts.path.rstrip("/") or ""
    return urlunsplit((scheme or "https", host, path, urlencode(query), ""))


class CitationLedger:
    """Numbered, de-duplicated sources. `add` returns the source's number, new or existing."""

    def __init__(self, entries: list[Source] | None = None, evidence: dict[str, str] | None = None) -> None:
        self.entries: list[Source] = list(entries or [])
        self._by_key = {normalise_url(e.url): e for e in self.entries}
        # Per source number (as a string, as saved in JSON): the text researchers saw of it, bounded.
        self.evidence: dict[str, str] = dict(evidence or {})

    def add(self, url: str, title: str, snippet: str, found_by: str) -> int | None:
        """The source's number (new or existing), or None for a URL that is not http(s). The snippet (the text the
        model saw: a search passage or a page it read) is kept as evidence."""
        if not is_web_url(url):
            return None
        key = normalise_url(url)
        existing = self._by_key.get(key)
        if existing is not None:
            if not existing.snippet and snippet:
                existing.snippet = snippet[:SNIPPET_CHARS]
            self._keep(existing.n, snippet)
            return existing.n
        entry = Source(
            n=len(self.entries) + 1,
            url=url.strip(),
            title=" ".join(title.split())[:200],
            snippet=snippet[:SNIPPET_CHARS],
            found_by=found_by,
        )
        self.entries.append(entry)
        self._by_key[key] = entry
        self._keep(entry.n, snippet)
        return entry.n

    def _keep(self, n: int, text: str) -> None:
        """Add `text` to source n's evidence unless it is already there, within EVIDENCE_CHARS."""
        text = text.strip()
        held = self.evidence.get(str(n), "")
        if not text or text in held or len(held) >= EVIDENCE_CHARS:
            return
        self.evidence[str(n)] = (f"{held}\n\n{text}" if held else text)[:EVIDENCE_CHARS]

    def evidence_for(self, n: int) -> str:
        """Everything kept of source n (empty when nothing was)."""
        return self.evidence.get(str(n), "")

    def __len__(self) -> int:
        return len(self.entries)

    def numbers(self) -> set[int]:
        return {e.n for e in self.entries}

    def knows_url(self, url: str) -> bool:
        return normalise_url(url) in self._by_key
