"""Money: model pricing, the tokens and cost of calls, worst-case estimates, and the one rule for web-search fees.

OpenRouter prices are decimal strings in USD per token (or per request / per web search). The 2026 catalog omits
zero prices, so a missing key means 0; `"-1"` means the price is decided at routing time (`openrouter/auto`) and
the cost cannot be known in advance.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._constants import DEFAULT_WEB_SEARCH_FEE
from .._util import as_dict

__all__ = [
    "CallTotals",
    "ModelUsage",
    "Pricing",
    "SessionUsage",
    "Usage",
    "cost_from_pricing",
    "estimate_prompt_tokens",
    "usage_from_response",
    "web_search_fee",
    "worst_case_cost",
]

PER_MILLION = 1_000_000


class Pricing(BaseModel):
    """USD per token (prompt, completion, internal_reasoning, cache) or per unit (request, image, web_search).

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
    web_search: float = 0.0

    @field_validator("*", mode="before")
    @classmethod
    def _decimal_string(cls, value: Any) -> float:
        if value is None or value == "":
            return 0.0
        try:
            number = float(value)
        except (TypeError, ValueError):
            return math.nan
        return math.nan if number < 0 else number

    @property
    def known(self) -> bool:
        """False when any price is routing-dependent (`-1`) or unreadable."""
        return not any(math.isnan(v) for v in self.model_dump().values())

    @property
    def is_free(self) -> bool:
        return self.known and self.prompt == 0 and self.completion == 0 and self.request == 0

    def per_million(self, kind: str) -> float | None:
        """The price of `prompt` or `completion` in USD per million tokens, or None when unknown."""
        value = float(getattr(self, kind))
        return None if math.isnan(value) else round(value * PER_MILLION, 6)


def web_search_fee(pricing: Pricing | None, searches: int = 1) -> float:
    """The one rule for what web searches cost: per search request, at the model's `pricing.web_search` where the
    catalog gives one, else at DEFAULT_WEB_SEARCH_FEE. Used for real costs, worst-case estimates and the test fake."""
    per_search = pricing.web_search if pricing is not None and pricing.web_search > 0 else DEFAULT_WEB_SEARCH_FEE
    return searches * per_search


class Usage(BaseModel):
    """Tokens and USD cost: of one call, or summed over many with `add`. `cost_usd` is None when unknown."""

    model_config = ConfigDict(defer_build=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    web_search_requests: int = 0
    cost_usd: float | None = None
    cost_source: str = Field(
        default="unknown", description="upstream (usage.cost), pricing (catalog), sum (a total) or unknown"
    )

    def add(self, other: Usage) -> None:
        """Add `other`'s tokens and cost to this total (an unknown cost adds nothing)."""
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cached_tokens += other.cached_tokens
        self.total_tokens += other.total_tokens
        self.web_search_requests += other.web_search_requests
        if other.cost_usd is not None:
            self.cost_usd = round((self.cost_usd or 0.0) + other.cost_usd, 10)

    @classmethod
    def total(cls, parts: Iterable[Usage]) -> Usage:
        """The sum of `parts` (cost 0 when there are none)."""
        out = cls(cost_usd=0.0, cost_source="sum")
        for part in parts:
            out.add(part)
        return out


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def cost_from_pricing(usage: Usage, pricing: Pricing) -> float | None:
    """Estimate the USD cost of `usage` from catalog `pricing`; None when a price is unknown (`-1`)."""
    if not pricing.known:
        return None
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens) if pricing.internal_reasoning else 0
    uncached = max(usage.prompt_tokens - usage.cached_tokens, 0) if pricing.input_cache_read else usage.prompt_tokens
    cost = (
        uncached * pricing.prompt
        + (usage.cached_tokens * pricing.input_cache_read if pricing.input_cache_read else 0.0)
        + (usage.completion_tokens - reasoning) * pricing.completion
        + reasoning * pricing.internal_reasoning
        + pricing.request
        + web_search_fee(pricing, usage.web_search_requests)
    )
    return round(cost, 10)


def usage_from_response(raw: Any, pricing: Pricing | None = None) -> Usage:
    """Read OpenRouter's `usage` object; fill in `cost_usd` from `pricing` when `usage.cost` is absent."""
    raw = as_dict(raw)
    prompt_details = as_dict(raw.get("prompt_tokens_details"))
    completion_details = as_dict(raw.get("completion_tokens_details"))
    server_tools = as_dict(raw.get("server_tool_use"))
    usage = Usage(
        prompt_tokens=_int(raw.get("prompt_tokens")),
        completion_tokens=_int(raw.get("completion_tokens")),
        reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
        cached_tokens=_int(prompt_details.get("cached_tokens")),
        total_tokens=_int(raw.get("total_tokens")),
        web_search_requests=_int(server_tools.get("web_search_requests")),
    )
    if not usage.total_tokens:
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
    cost = raw.get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        usage.cost_usd, usage.cost_source = float(cost), "upstream"
    elif pricing is not None:
        estimate = cost_from_pricing(usage, pricing)
        if estimate is not None:
            usage.cost_usd, usage.cost_source = estimate, "pricing"
    return usage


def estimate_prompt_tokens(text_chars: int) -> int:
    """A pessimistic token count for `text_chars` characters (about 3 characters a token, plus framing)."""
    return math.ceil(text_chars / 3) + 16


def worst_case_cost(pricing: Pricing, prompt_chars: int, max_tokens: int, *, web_searches: int = 0) -> float | None:
    """The most a call can cost: the prompt estimate, all of `max_tokens` at the dearest output rate, the request
    fee and the fee of up to `web_searches` searches. None when the price is only known at routing time."""
    if not pricing.known:
        return None
    output_rate = max(pricing.completion, pricing.internal_reasoning)
    cost = estimate_prompt_tokens(prompt_chars) * pricing.prompt + max_tokens * output_rate + pricing.request
    return cost + (web_search_fee(pricing, web_searches) if web_searches else 0.0)


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
