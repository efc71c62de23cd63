"""Money: model pricing, per-call usage and cost, and the session-wide ledger.

OpenRouter prices are decimal strings in USD per token (or per request / per web search). The 2026 catalog omits
zero prices, so a missing key means 0; `"-1"` means the price is decided at routing time (`openrouter/auto`) and
the cost cannot be known in advance.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._constants import DEFAULT_WEB_SEARCH_FEE
from ._util import as_dict

__all__ = ["ModelUsage", "Pricing", "Usage", "UsageLedger", "cost_from_pricing", "usage_from_response"]

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


class Usage(BaseModel):
    """Tokens and cost of one call. `cost_usd` is None when it could not be known."""

    model_config = ConfigDict(defer_build=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    web_search_requests: int = 0
    cost_usd: float | None = None
    cost_source: str = Field(default="unknown", description="upstream (usage.cost), pricing (catalog), or unknown")


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
        + usage.web_search_requests * (pricing.web_search or DEFAULT_WEB_SEARCH_FEE)
    )
    return round(cost, 10)


def usage_from_response(raw: Any, pricing: Pricing | None) -> Usage:
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


class ModelUsage(BaseModel):
    """What one model has consumed this session."""

    model_config = ConfigDict(defer_build=True)

    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    calls_with_unknown_cost: int = 0


class UsageLedger:
    """Session-wide totals per model. Thread-safe, since sync tools run on worker threads."""

    def __init__(self) -> None:
        self._by_model: dict[str, ModelUsage] = {}
        self._lock = threading.Lock()

    def record(self, model: str, usage: Usage) -> None:
        """Add one successful call's usage under `model` (the model that answered)."""
        with self._lock:
            entry = self._by_model.setdefault(model, ModelUsage())
            entry.calls += 1
            entry.prompt_tokens += usage.prompt_tokens
            entry.completion_tokens += usage.completion_tokens
            entry.reasoning_tokens += usage.reasoning_tokens
            if usage.cost_usd is None:
                entry.calls_with_unknown_cost += 1
            else:
                entry.cost_usd = round(entry.cost_usd + usage.cost_usd, 10)

    def record_failure(self, model: str) -> None:
        """Count a call that failed (no tokens billed as far as we know)."""
        with self._lock:
            self._by_model.setdefault(model, ModelUsage()).failed_calls += 1

    def by_model(self) -> dict[str, ModelUsage]:
        with self._lock:
            return {name: entry.model_copy() for name, entry in sorted(self._by_model.items())}

    def totals(self) -> ModelUsage:
        total = ModelUsage()
        for entry in self.by_model().values():
            total.calls += entry.calls
            total.failed_calls += entry.failed_calls
            total.prompt_tokens += entry.prompt_tokens
            total.completion_tokens += entry.completion_tokens
            total.reasoning_tokens += entry.reasoning_tokens
            total.cost_usd = round(total.cost_usd + entry.cost_usd, 10)
            total.calls_with_unknown_cost += entry.calls_with_unknown_cost
        return total
