"""Money: model pricing, the tokens and cost of calls, worst-case estimates, and the one rule for web-search fees.

OpenRouter prices are decimal strings in USD per token (or per request / per web search). The 2026 catalog omits
zero prices, so a missing key means 0; `"-1"` means the price is decided at routing time (`openrouter/auto`) and
the cost cannot be known in advance.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._util import as_dict

__all__ = [
    "CallTotals",
    "FETCH_FEES",
    "SEARCH_FEES",
    "ModelUsage",
    "PriceTier",
    "Pricing",
    "SessionUsage",
    "Usage",
    "cost_from_pricing",
    "usage_from_response",
    "web_fetch_fee",
    "web_search_fee",
    "worst_case_cost",
]

PER_MILLION = 1_000_000


# USD per search request by engine (OpenRouter, 2026): Exa about $0.007 for up to 10 results, Parallel and Perplexity
# $0.001-0.005 (their dearest mode is used), Firecrawl unpublished (priced as Exa). `native` is the provider's own
# price (`pricing.web_search`); `auto` may pick any engine, so it is priced at the dearest.
SEARCH_FEES: dict[str, float] = {"exa": 0.007, "firecrawl": 0.007, "parallel": 0.005, "perplexity": 0.005}
# USD per page fetched: the `openrouter` engine is free, Exa and Parallel about $1 per 1,000 fetches.
FETCH_FEES: dict[str, float] = {"openrouter": 0.0, "exa": 0.001, "parallel": 0.001, "firecrawl": 0.001, "native": 0.001}
PRICE_FIELDS = (
    "prompt",
    "completion",
    "internal_reasoning",
    "input_cache_read",
    "input_cache_write",
    "request",
    "image",
    "audio",
    "web_search",
)


def _price(value: Any) -> float:
    """A decimal-string price as a float: missing is 0; negative (`"-1"`) or unreadable is `nan` (unknown)."""
    if value is None or value == "":
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return math.nan if number < 0 or not math.isfinite(number) else number


class PriceTier(BaseModel):
    """Prices that replace the base ones from a prompt size upward (`pricing.overrides[]`)."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    min_prompt_tokens: int = 0
    prices: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if not isinstance(value, dict) or "prices" in value:
            return value
        return {
            "min_prompt_tokens": value.get("min_prompt_tokens") or 0,
            "prices": {key: _price(value[key]) for key in PRICE_FIELDS if key in value},
        }


class Pricing(BaseModel):
    """USD per token (prompt, completion, internal_reasoning, cache, audio) or per unit (request, image,
    web_search), with long-prompt tiers (`overrides`) and a `discount` (a fraction taken off every price).

    A missing key is 0. A negative value (`"-1"`) is kept as `nan`: unknown until routing.
    """

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    prompt: float = 0.0
    completion: float = 0.0
    internal_reasoning: float = 0.0
    input_cache_read: float = 0.0
    input_cache_write: float = 0.0
    request: float = 0.0
    image: float = 0.0
    audio: float = 0.0
    web_search: float = 0.0
    discount: float = 0.0
    overrides: tuple[PriceTier, ...] = ()

    @field_validator(*PRICE_FIELDS, mode="before")
    @classmethod
    def _decimal_string(cls, value: Any) -> float:
        return _price(value)

    @field_validator("discount", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> float:
        number = _price(value)
        return number if 0 <= number < 1 else 0.0

    @field_validator("overrides", mode="before")
    @classmethod
    def _tiers(cls, value: Any) -> Any:
        return [tier for tier in value if isinstance(tier, dict)] if isinstance(value, list | tuple) else ()

    @property
    def known(self) -> bool:
        """False when any price is routing-dependent (`-1`) or unreadable."""
        return not any(math.isnan(getattr(self, name)) for name in PRICE_FIELDS)

    @property
    def is_free(self) -> bool:
        return self.known and self.prompt == 0 and self.completion == 0 and self.request == 0

    def at(self, prompt_tokens: int) -> Pricing:
        """The prices that apply to a request of `prompt_tokens`: the largest tier it reaches replaces the base
        prices it names, and the discount is taken off. Without tiers or discount, this object itself."""
        tiers = [t for t in self.overrides if t.min_prompt_tokens <= prompt_tokens]
        if not tiers and not self.discount:
            return self
        prices = {name: float(getattr(self, name)) for name in PRICE_FIELDS}
        if tiers:
            prices.update(max(tiers, key=lambda t: t.min_prompt_tokens).prices)
        keep = 1.0 - self.discount
        return Pricing.model_validate({name: value * keep for name, value in prices.items()})

    def per_million(self, kind: str) -> float | None:
        """The price of `prompt` or `completion` in USD per million tokens, or None when unknown."""
        value = float(getattr(self, kind))
        return None if math.isnan(value) else round(value * PER_MILLION, 6)


def web_search_fee(pricing: Pricing | None, searches: int = 1, engine: str = "auto") -> float:
    """The one rule for what web searches cost, used for real costs, worst-case estimates and the test fake: per
    search request, by engine; `native` at the model's `pricing.web_search`; `auto` at the dearest it may pick."""
    listed = pricing.web_search if pricing is not None and pricing.web_search > 0 else 0.0
    dearest = max(SEARCH_FEES.values())
    if engine == "native":
        per_search = listed or dearest
    elif engine in SEARCH_FEES:
        per_search = SEARCH_FEES[engine]
    else:
        per_search = max(listed, dearest)
    return searches * per_search


def web_fetch_fee(fetches: int = 1, engine: str = "auto") -> float:
    """What `fetches` page reads cost with `engine` (`auto`: the dearest it may pick)."""
    return fetches * FETCH_FEES.get(engine, max(FETCH_FEES.values()))


class Usage(BaseModel):
    """Tokens and USD cost: of one call, or summed over many with `add`. `cost_usd` is None when unknown.

    `cost_usd` is the real cost: what OpenRouter charged plus, with the user's own provider key (BYOK), what the
    provider charged (`upstream_cost_usd`, included in `cost_usd`)."""

    model_config = ConfigDict(defer_build=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    cost_usd: float | None = None
    upstream_cost_usd: float = Field(default=0.0, description="BYOK: the provider's charge, included in cost_usd")
    cost_source: str = Field(
        default="unknown", description="upstream (usage.cost), pricing (catalog), sum (a total) or unknown"
    )

    def add(self, other: Usage) -> None:
        """Add `other`'s tokens and cost to this total (an unknown cost adds nothing)."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.upstream_cost_usd = round(self.upstream_cost_usd + other.upstream_cost_usd, 10)
        if other.cost_usd is not None:
            self.cost_usd = round((self.cost_usd or 0.0) + other.cost_usd, 10)

    @classmethod
    def total(cls, parts: Iterable[Usage]) -> Usage:
        """The sum of `parts` (cost 0 when there are none)."""
        out = cls(cost_usd=0.0, cost_source="sum")
        for part in parts:
            out.add(part)
        return out


_COUNTS = (
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "total_tokens",
    "web_search_requests",
    "web_fetch_requests",
)
MAX_COUNT = 10**9  # no single call has a billion tokens: a larger count is garbage, not usage


def _count(value: Any, name: str, notes: list[str]) -> int:
    """A token or request count from upstream: a whole number from 0 to MAX_COUNT, else 0 (and a note)."""
    if value is None:
        return 0
    if isinstance(value, str):  # a number sent as a string is odd but readable
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        if 0 <= value <= MAX_COUNT:
            return int(value)
    notes.append(f"OpenRouter reported an impossible {name} ({value!r}); it was counted as 0.")
    return 0


def _money(value: Any, name: str, notes: list[str]) -> float | None:
    """A USD amount from upstream: a finite number >= 0, else None (and a note, so it is never trusted)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    notes.append(f"OpenRouter reported an impossible {name} ({value!r}); the cost was estimated from catalog prices.")
    return None


def cost_from_pricing(
    usage: Usage, pricing: Pricing, *, search_engine: str = "auto", fetch_engine: str = "auto"
) -> float | None:
    """Estimate the USD cost of `usage` from catalog `pricing` (at its prompt size's tier); None when a price is
    unknown (`-1`)."""
    if not pricing.known:
        return None
    tier = pricing.at(usage.prompt_tokens)
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens) if tier.internal_reasoning else 0
    cached = min(usage.cached_tokens, usage.prompt_tokens) if tier.input_cache_read else 0
    cost = (
        (usage.prompt_tokens - cached) * tier.prompt
        + cached * tier.input_cache_read
        + usage.cache_write_tokens * tier.input_cache_write
        + (usage.completion_tokens - reasoning) * tier.completion
        + reasoning * tier.internal_reasoning
        + tier.request
        + web_search_fee(pricing, usage.web_search_requests, search_engine)
        + web_fetch_fee(usage.web_fetch_requests, fetch_engine)
    )
    return round(cost, 10)


def usage_from_response(raw: Any) -> tuple[Usage, list[str]]:
    """Read OpenRouter's `usage` object, trusting no number: returns the usage and notes on anything impossible.

    Reads `server_tool_use_details` (and the older `server_tool_use`), cache writes, and with BYOK adds
    `cost_details.upstream_inference_cost` to `cost`. `cost_usd` stays None when it is missing or impossible; the
    client then estimates it from catalog prices."""
    notes: list[str] = []
    raw = as_dict(raw)
    prompt_details = as_dict(raw.get("prompt_tokens_details"))
    completion_details = as_dict(raw.get("completion_tokens_details"))
    tools = as_dict(raw.get("server_tool_use_details")) or as_dict(raw.get("server_tool_use"))
    searches = _count(tools.get("web_search_requests"), "web search count", notes)
    executed = _count(tools.get("tool_calls_executed"), "tool call count", notes)
    usage = Usage(
        prompt_tokens=_count(raw.get("prompt_tokens"), "prompt token count", notes),
        completion_tokens=_count(raw.get("completion_tokens"), "completion token count", notes),
        reasoning_tokens=_count(completion_details.get("reasoning_tokens"), "reasoning token count", notes),
        cached_tokens=_count(prompt_details.get("cached_tokens"), "cached token count", notes),
        cache_write_tokens=_count(prompt_details.get("cache_write_tokens"), "cache write count", notes),
        total_tokens=_count(raw.get("total_tokens"), "total token count", notes),
        web_search_requests=searches,
        # Server-tool calls that were not searches are page reads (web_fetch is the only other one we send).
        web_fetch_requests=max(executed - searches, 0),
    )
    usage.total_tokens = max(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens)
    cost = _money(raw.get("cost"), "cost", notes)
    upstream = 0.0
    if raw.get("is_byok") is True:
        upstream = _money(as_dict(raw.get("cost_details")).get("upstream_inference_cost"), "BYOK cost", notes) or 0.0
    if cost is not None:
        usage.cost_usd, usage.upstream_cost_usd, usage.cost_source = round(cost + upstream, 12), upstream, "upstream"
    return usage, notes


def worst_case_cost(
    pricing: Pricing,
    prompt_tokens: int,
    max_tokens: int,
    *,
    web_searches: int = 0,
    search_engine: str = "auto",
    web_fetches: int = 0,
    fetch_engine: str = "auto",
    extra_prompt_tokens: int = 0,
    images: int = 0,
    fees: float = 0.0,
) -> float | None:
    """The most a call can cost: `prompt_tokens` (a bound from `tokens.py`) at its tier's price, all of
    `max_tokens` at the dearest output rate, the request fee, and the fees of up to `web_searches` searches and
    `web_fetches` page reads (whose text joins the prompt as `extra_prompt_tokens`, as does what attachments add),
    the per-image price of `images` attached, and other `fees` (such as PDF parsing). None when the price is only
    known at routing time."""
    if not pricing.known:
        return None
    prompt_tokens += extra_prompt_tokens
    tier = pricing.at(prompt_tokens)
    output_rate = max(tier.completion, tier.internal_reasoning)
    return (
        prompt_tokens * tier.prompt
        + max_tokens * output_rate
        + tier.request
        + web_search_fee(pricing, web_searches, search_engine)
        + web_fetch_fee(web_fetches, fetch_engine)
        + images * tier.image
        + fees
    )


class CallTotals(Usage):
    """Usage summed over a number of calls."""

    calls: int = 0
    calls_with_unknown_cost: int = 0

    def record(self, usage: Usage) -> None:
        """Count one call and add its usage."""
        self.calls += 1
        self.calls_with_unknown_cost += usage.cost_usd is None
        self.add(usage)


class ModelUsage(CallTotals):
    """What one model has consumed this session."""

    failed_calls: int = 0


class SessionUsage:
    """This session's calls, tokens and cost per model (not to be confused with research's citation ledger).
    Thread-safe, since sync tools run on worker threads."""

    def __init__(self) -> None:
        self._by_model: dict[str, ModelUsage] = {}
        self._lock = threading.Lock()

    def _entry(self, model: str) -> ModelUsage:
        return self._by_model.setdefault(model, ModelUsage(cost_usd=0.0, cost_source="sum"))

    def record(self, model: str, usage: Usage) -> None:
        """Add one successful call's usage under `model` (the model that answered)."""
        with self._lock:
            self._entry(model).record(usage)

    def record_failure(self, model: str) -> None:
        """Count a call that failed (no tokens billed as far as we know)."""
        with self._lock:
            self._entry(model).failed_calls += 1

    def by_model(self) -> dict[str, ModelUsage]:
        with self._lock:
            return {name: entry.model_copy() for name, entry in sorted(self._by_model.items())}

    def totals(self) -> ModelUsage:
        total = ModelUsage(cost_usd=0.0, cost_source="sum")
        for entry in self.by_model().values():
            total.add(entry)
            total.calls += entry.calls
            total.failed_calls += entry.failed_calls
            total.calls_with_unknown_cost += entry.calls_with_unknown_cost
        return total
