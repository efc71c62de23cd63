"""What one attempt of a chat call cost, when OpenRouter did not say so in the answer.

A failed attempt may still have been billed: a stream that delivered text and then dropped was generated upstream.
Its cost is asked of OpenRouter (`GET /generation?id=…`, the real figure), and when that is not available yet, it is
estimated from catalog prices: the token bound (`tokens.py`) of the prompt and of the text that arrived. An attempt
refused before any work (a 4xx, a connection that never opened) cost nothing. An answer that came without a usage
block is priced the same way, and never booked at $0. Every estimate is flagged, so a result says which figures
are estimates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import OpenRouterError, StreamError, TransientError
from .pricing import Pricing, Usage, cost_from_pricing
from .tokens import token_bound

__all__ = ["Trace", "answered_estimate", "attempt_cost"]

PricingLookup = Callable[[str], Pricing | None]


@dataclass
class Trace:
    """What one attempt got from upstream before it ended: its generation id and the answer text received."""

    generation_id: str | None = None
    received_tokens: int = 0


def prompt_bound(payload: dict[str, Any]) -> int:
    """The most tokens a request's messages can be, text and attachment parts alike (as sent)."""
    return token_bound(json.dumps(payload.get("messages") or [], ensure_ascii=False))


def _estimate(payload: dict[str, Any], model: str, received: int, pricing: PricingLookup | None) -> Usage | None:
    """The prompt's bound and `received` answer tokens, priced."""
    found = pricing(model) if pricing is not None else None
    if found is None or not found.known:
        return None
    usage = Usage(
        prompt_tokens=prompt_bound(payload),
        completion_tokens=received,
    )
    cost = cost_from_pricing(usage, found)
    if cost is None:
        return None
    usage.cost_usd, usage.cost_source = cost, "estimate"
    return usage


def answered_estimate(payload: dict[str, Any], model: str, text: str, pricing: PricingLookup | None) -> Usage | None:
    """The usage of an answer that came without a usage block: the prompt's estimate and the text received."""
    return _estimate(payload, model, token_bound(text), pricing)


def may_be_billed(error: OpenRouterError) -> bool:
    """Whether a failed attempt may have been charged: it started answering (a broken stream) or failed after
    processing began; a refusal before any work (4xx) or a connection that never opened cost nothing."""
    if isinstance(error, StreamError) or error.received_tokens > 0:
        return True
    return error.generation_id is not None and isinstance(error, TransientError)


async def attempt_cost(
    error: OpenRouterError,
    payload: dict[str, Any],
    model: str,
    *,
    lookup: Callable[[str], Awaitable[Any]] | None,
    pricing: PricingLookup | None,
) -> Usage | None:
    """What a failed attempt cost (see the module docstring), or None when it cost nothing."""
    if not may_be_billed(error):
        return None
    received = error.received_tokens or (token_bound(error.partial_text) if isinstance(error, StreamError) else 0)
    if error.generation_id and lookup is not None:
        try:
            found = await lookup(error.generation_id)
        except Exception:  # 404 for a moment after the generation, or any other trouble: estimate instead
            found = None
        data = found.get("data") if isinstance(found, dict) else None
        total = data.get("total_cost") if isinstance(data, dict) else None
        real = isinstance(total, int | float) and not isinstance(total, bool) and math.isfinite(total) and total >= 0
        if real and isinstance(data, dict):
            usage = Usage(
                prompt_tokens=_int(data.get("tokens_prompt")),
                completion_tokens=_int(data.get("tokens_completion")),
                cost_usd=float(total or 0.0),
                cost_source="upstream",
            )
            usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
            return usage
    return _estimate(payload, model, received, pricing) or Usage(cost_usd=None, cost_source="unknown")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e9 else 0
