"""The account behind the key (`GET /key`, `GET /credits`), without ever the key itself."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._util import as_dict
from ..errors import OpenRouterError

__all__ = ["account_info"]

log = logging.getLogger(__name__)

# Fields of GET /key worth showing; anything else (the label is a masked key) is left out.
# `rate_limit` is deprecated (always -1 since 2026), so it is not shown; BYOK usage is.
KEY_FIELDS = (
    "limit",
    "limit_remaining",
    "limit_reset",
    "include_byok_in_limit",
    "usage",
    "usage_daily",
    "usage_weekly",
    "usage_monthly",
    "byok_usage",
    "byok_usage_daily",
    "byok_usage_weekly",
    "byok_usage_monthly",
    "is_free_tier",
    "expires_at",
)


# GET a JSON document with the caller's key: `OpenRouterClient.get_json` bound to it.
GetJson = Callable[..., Awaitable[Any]]


async def account_info(get_json: GetJson) -> dict[str, Any]:
    """Limits, usage and credits of the caller's key. Raises AuthError when there is no key or it is refused."""
    key = as_dict((await get_json("/key", auth=True)).get("data"))
    info: dict[str, Any] = {name: key[name] for name in KEY_FIELDS if name in key}
    try:
        credits = as_dict((await get_json("/credits", auth=True)).get("data"))
    except OpenRouterError as exc:
        # 2026: /credits needs a management key, so an ordinary key's 403 is expected and not worth showing.
        if exc.status != 403:
            log.info("credits not available: %s", exc.message)
        credits = {}
    if credits:
        total, used = credits.get("total_credits"), credits.get("total_usage")
        info["credits"] = {"total_usd": total, "used_usd": used}
        if isinstance(total, int | float) and isinstance(used, int | float):
            info["credits"]["remaining_usd"] = round(total - used, 6)
    return info
