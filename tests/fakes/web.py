"""Web search and page reading inside one fake chat request: the server tools `openrouter:web_search` and
`openrouter:web_fetch`, plus the deprecated `web` plugin, the `:online` suffix and the `web-fetch` plugin.

The fake model is lazy about searching, as a real one may be: the search tool runs only when `tool_choice` forces
it (`{"type":"openrouter:web_search"}` or `"required"`); the plugin and `:online` always search once. Given the
fetch tool it reads, eagerly, the URLs written in the last user message and then the search results. Searches
find corpus pages that share words with the question, then generated `example.org` pages. Fees follow the fake's
own price list (`SEARCH_FEE`, `FETCH_FEE`: the API document's prices, never the server's code);
`stop_server_tools_when` max_cost and `max_tool_calls` stop further tool calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .common import as_dict, dicts, host_of, in_domains, last_prompt

if TYPE_CHECKING:
    from .openrouter import FakeOpenRouter

__all__ = ["FETCH_FEE", "FETCH_TOOL", "SEARCH_FEE", "SEARCH_TOOL", "Source", "WebWork", "first_sentence", "run_web"]

# What a search request and a page read cost by engine, as docs/openrouter-api.md gives them (the dearest mode where a
# range is given). `auto` is charged as the engine the fake routes it to (Exa); `native` at the model's own
# `pricing.web_search`.
SEARCH_FEE = {"exa": 0.007, "firecrawl": 0.007, "parallel": 0.005, "perplexity": 0.005, "auto": 0.007}
FETCH_FEE = {"openrouter": 0.0, "exa": 0.001, "parallel": 0.001, "firecrawl": 0.001, "native": 0.001, "auto": 0.001}


def search_fee(model_pricing: dict[str, Any], engine: str, searches: int = 1) -> float:
    if engine == "native":
        try:
            listed = float(model_pricing.get("web_search") or 0.0)
        except (TypeError, ValueError):
            listed = 0.0
        return searches * (listed if listed > 0 else SEARCH_FEE["exa"])
    return searches * SEARCH_FEE.get(engine, SEARCH_FEE["auto"])


def fetch_fee(engine: str, fetches: int = 1) -> float:
    return fetches * FETCH_FEE.get(engine, FETCH_FEE["auto"])


SEARCH_TOOL = "openrouter:web_search"
FETCH_TOOL = "openrouter:web_fetch"
DEFAULT_RESULTS, MAX_RESULTS = 5, 10
MAX_TOOL_CALLS = 30  # the API's default and ceiling for `max_tool_calls`
DEFAULT_PAGE_CHARS = 2000  # what a fetch returns without `max_content_tokens` (about 500 tokens)
_URL = re.compile(r"https?://[^\s<>\"'\])]+")
_STOPWORDS = frozenset(
    "about after also answer been before being could describe does explain find first from give have into just "
    "know latest many more most much news only other over overall part please question recent search some such "
    "tell than that their them then there these they this those today very want were what when where which while "
    "will with work would your year years".split()
)


@dataclass
class Source:
    """One url_citation: a search result (`content` a snippet) or a page read (`content` its text, `quote` set)."""

    url: str
    title: str
    content: str
    quote: str | None = None  # the page's sentence the answer repeats, once the page was read


@dataclass
class WebWork:
    """What the server tools and plugins did in one request, and their fees."""

    sources: list[Source] = field(default_factory=list)
    searches: int = 0  # by the server tool
    plugin_searches: int = 0  # by the `web` plugin or `:online`
    fetches: int = 0
    fee: float = 0.0
    server_tools: bool = False  # the request carried a server tool: usage reports server_tool_use_details


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]


def _words(text: str) -> set[str]:
    return {w.removesuffix("s") for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 4} - _STOPWORDS


def _domains(value: Any) -> list[str]:
    return [str(d) for d in value if isinstance(d, str) and d] if isinstance(value, list) else []


def _permitted(url: str, allowed: list[str], excluded: list[str]) -> bool:
    host = host_of(url)
    return (not allowed or in_domains(host, allowed)) and not in_domains(host, excluded)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _forced(body: dict[str, Any], tool: str) -> bool:
    choice = body.get("tool_choice")
    return choice == "required" or as_dict(choice).get("type") == tool


class _Steps:
    """The request's server-tool budget: `max_tool_calls` and `stop_server_tools_when` max_cost."""

    def __init__(self, body: dict[str, Any]) -> None:
        limit = _int(body.get("max_tool_calls"))
        self.limit = min(limit, MAX_TOOL_CALLS) if limit is not None else MAX_TOOL_CALLS
        costs = [
            float(c["max_cost_in_dollars"])
            for c in dicts(body.get("stop_server_tools_when"))
            if c.get("type") == "max_cost" and isinstance(c.get("max_cost_in_dollars"), int | float)
        ]
        self.max_cost = min(costs) if costs else None
        self.taken, self.spent, self.stopped = 0, 0.0, False

    def take(self, fee: float) -> bool:
        """Whether one more tool call with `fee` may run (and count it): once stopped, nothing more runs."""
        if self.stopped or self.taken >= self.limit:
            return False
        if self.max_cost is not None and self.spent + fee > self.max_cost + 1e-12:
            self.stopped = True
            return False
        self.taken, self.spent = self.taken + 1, self.spent + fee
        return True


class _Finder:
    """Search results for one question: corpus pages sharing its words (best first), then generated pages.

    A page matches when it shares two of the question's words (one, for a one-word question): a single common word
    such as "rover" in a long unrelated question must not turn a test's example.org results into corpus pages."""

    def __init__(self, pages: dict[str, tuple[str, str]], prompt: str) -> None:
        words = _words(prompt)
        needed = max(min(2, len(words)), 1)
        scored = [(len(words & _words(f"{title} {text}")), url) for url, (title, text) in pages.items()]
        # sorted() is stable: pages that match equally keep the corpus's order
        self.matches = [url for score, url in sorted(scored, key=lambda s: -s[0]) if score >= needed]
        self.pages, self.prompt, self.generated = pages, prompt, 0
        self.used: set[str] = set()
        self.slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].strip("-") or "answer"

    def search(self, count: int, allowed: list[str], excluded: list[str]) -> list[Source]:
        found: list[Source] = []
        for url in self.matches:
            if len(found) == count:
                break
            if url not in self.used and _permitted(url, allowed, excluded):
                self.used.add(url)
                title, text = self.pages[url]
                found.append(Source(url, title, " ".join(re.split(r"(?<=[.!?])\s+", text)[:2])))
        host = allowed[0].lower().strip(".") if allowed else "example.org"
        if in_domains(host, excluded):
            host = "example.net"
        while len(found) < count:
            self.generated += 1
            i, prompt = self.generated, self.prompt
            found.append(
                Source(
                    f"https://{host}/{self.slug}-{i}",
                    f"Source {i} on {prompt[:60]}",
                    f"Passage {i}: what {host} says about {prompt[:80]}.",
                )
            )
        return found


def _results(params: dict[str, Any], per_search: int) -> int:
    wanted = _int(params.get("max_results"))
    return min(max(min(wanted if wanted is not None else DEFAULT_RESULTS, MAX_RESULTS), 1), per_search)


def run_web(fake: FakeOpenRouter, body: dict[str, Any], model: str) -> WebWork:
    """Run the request's searches and page reads as the fake model would, for the model that answers."""
    tools, plugins = dicts(body.get("tools")), dicts(body.get("plugins"))
    search_tool = next((t for t in tools if t.get("type") == SEARCH_TOOL), None)
    fetch_tool = next((t for t in tools if t.get("type") == FETCH_TOOL), None)
    plugin = next((p for p in plugins if p.get("id") == "web"), None)
    fetch_plugin = next((p for p in plugins if p.get("id") == "web-fetch"), None)
    online = model.endswith(":online") or str(body.get("model", "")).endswith(":online")
    # The fetch plugin runs the same server tool underneath, so its reads are counted the same way.
    work = WebWork(server_tools=search_tool is not None or fetch_tool is not None or fetch_plugin is not None)
    pricing = as_dict((fake._entry(model) or {}).get("pricing"))
    prompt, steps = last_prompt(body), _Steps(body)
    finder = _Finder(fake.pages, prompt)
    if plugin is not None or online:
        params = plugin or {}
        allowed, excluded = _domains(params.get("include_domains")), _domains(params.get("exclude_domains"))
        work.sources += finder.search(_results(params, fake.results_per_search), allowed, excluded)
        work.plugin_searches = 1
        work.fee += search_fee(pricing, str(params.get("engine") or "auto"))
    if search_tool is not None and _forced(body, SEARCH_TOOL):
        params = as_dict(search_tool.get("parameters"))
        engine = str(params.get("engine") or "auto")
        allowed, excluded = _domains(params.get("allowed_domains")), _domains(params.get("excluded_domains"))
        max_uses, total = _int(params.get("max_uses")), _int(params.get("max_total_results"))
        uses = min(fake.searches_per_call, max_uses) if max_uses is not None else fake.searches_per_call
        results = 0
        for _ in range(uses):
            if not steps.take(search_fee(pricing, engine)):
                break
            count = _results(params, fake.results_per_search)
            count = min(count, max(total - results, 0)) if total is not None else count
            work.sources += finder.search(count, allowed, excluded)
            work.searches, results = work.searches + 1, results + count
        work.fee += search_fee(pricing, engine, work.searches)
    fetch = as_dict(fetch_tool.get("parameters")) if fetch_tool is not None else fetch_plugin
    if fetch is not None:
        _fetch(fake, body, work, fetch, steps, forced=fetch_tool is not None and _forced(body, FETCH_TOOL))
    return work


def _fetch(
    fake: FakeOpenRouter, body: dict[str, Any], work: WebWork, params: dict[str, Any], steps: _Steps, *, forced: bool
) -> None:
    """Read the message's URLs, then the search results, into `work`: read pages first, in reading order."""
    engine = str(params.get("engine") or "auto")
    allowed, blocked = _domains(params.get("allowed_domains")), _domains(params.get("blocked_domains"))
    written = [url.rstrip(".,;:!?") for url in _URL.findall(last_prompt(body))]
    urls = [u for u in dict.fromkeys([*written, *(s.url for s in work.sources)]) if _permitted(u, allowed, blocked)]
    limit = _int(params.get("max_uses"))
    limit = len(urls) if limit is None else limit
    if forced and urls:  # tool_choice naming the fetch tool: at least one page, even with max_uses 0
        limit = max(limit, 1)
    tokens = _int(params.get("max_content_tokens"))
    chars = tokens * 4 if tokens is not None and tokens > 0 else DEFAULT_PAGE_CHARS
    by_url = {source.url: source for source in work.sources}
    read: list[Source] = []
    for url in urls[:limit]:
        if not steps.take(fetch_fee(engine)):
            break
        title, text = fake.pages.get(url) or (
            f"Page at {url}",
            f"Page at {url}: a page the fake generated, since the URL is not in its corpus. It holds no facts.",
        )
        source = by_url.get(url) or Source(url, title, "")
        source.title, source.content, source.quote = title, text[:chars], first_sentence(text)
        read.append(source)
    work.fetches = len(read)
    work.fee += fetch_fee(engine, work.fetches)
    work.sources = read + [s for s in work.sources if s.quote is None]
