"""Bearer tokens for a team server (`OPENROUTER_MCP_AUTH=tokens`), checked through the SDK's `TokenVerifier`.

Each request's token is hashed and looked up in the accounts database (`jobs/accounts.py`) on every request, so a
token revoked from a shell stops working at the next request. A token's name becomes the caller's principal
(`token:NAME`), and its quotas travel with the verified token to the request's caller.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from mcp.server.auth.provider import AccessToken

from ..jobs.accounts import Accounts, Limits

__all__ = ["TOKEN_PRINCIPAL", "TokenTable", "limits_of", "refused", "refusals"]

log = logging.getLogger(__name__)

TOKEN_PRINCIPAL = "token:"
MAX_TOKEN_CHARS = 512  # longer is no token of ours: refused without a database look-up

# Why the verifiers refused the current request's token, for the metrics (`remote/http.py` counts each 401 once).
refusals: ContextVar[list[str] | None] = ContextVar("openrouter_research_auth_refusals", default=None)


def refused(reason: str) -> None:
    """Note why this request's token was refused (a short code: unknown_token, expired, wrong_audience, ...)."""
    noted = refusals.get()
    if noted is not None:
        noted.append(reason)


class TokenTable:
    """The SDK's `TokenVerifier` over the accounts database."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            refused("malformed")
            return None
        found = await self.accounts.find_token_async(token)
        if found is None:
            log.info("a request with an unknown or revoked bearer token was refused")
            refused("unknown_token")
            return None
        limits = found.limits
        return AccessToken(
            token=token,
            client_id=found.name,
            scopes=[],
            subject=TOKEN_PRINCIPAL + found.name,
            claims={
                "usd_per_day": limits.usd_per_day,
                "usd_per_month": limits.usd_per_month,
                "calls_per_minute": limits.calls_per_minute,
                "jobs": limits.jobs,
            },
        )


def limits_of(token: AccessToken | None) -> Limits:
    """The quotas a verified token carries (unset ones are None: the defaults apply)."""
    claims = (token.claims or {}) if token is not None else {}

    def number(name: str) -> float | None:
        value = claims.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    calls, jobs = number("calls_per_minute"), number("jobs")
    return Limits(
        usd_per_day=number("usd_per_day"),
        usd_per_month=number("usd_per_month"),
        calls_per_minute=int(calls) if calls is not None else None,
        jobs=int(jobs) if jobs is not None else None,
    )
