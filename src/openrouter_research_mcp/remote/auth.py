"""Bearer tokens for a team server (`OPENROUTER_MCP_AUTH=tokens`), checked through the SDK's `TokenVerifier`, and
the quotas of OAuth callers (`oauth`, verified by `oauth.py`).

Each request's token is hashed and looked up in the accounts database (`jobs/accounts.py`) on every request, so a
token revoked from a shell stops working at the next request. While that database cannot be reached (PostgreSQL
away, `StoreUnavailable`), a token this server verified within the last `OUTAGE_GRACE_S` is still taken, with what it
was then, so calls that need no database go on; any other token is refused. A token's name becomes the caller's
principal (`token:NAME`), and its quotas travel with the verified token to the request's caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, ClassVar, Generic, TypeVar

from mcp.server.auth.provider import AccessToken, TokenVerifier

from ..jobs.accounts import TOKEN_PRINCIPAL, Accounts, Limits, TokenInfo, hash_token
from ..jobs.store import StoreUnavailable

__all__ = [
    "Quiet",
    "QuietAccessToken",
    "RecentlyGood",
    "SubjectQuotas",
    "TokenTable",
    "limits_of",
    "refused",
    "refusals",
]

log = logging.getLogger(__name__)

V = TypeVar("V")

MAX_TOKEN_CHARS = 512  # longer is no token of ours: refused without a database look-up
OUTAGE_GRACE_S = 300.0  # while the accounts database is away: how recent a token's last good look-up must be
MAX_REMEMBERED = 50_000  # tokens remembered as checked good lately, per verifier

# Why the verifiers refused the current request's token, for the metrics (`remote/http.py` counts each 401 once).
refusals: ContextVar[list[str] | None] = ContextVar("openrouter_research_auth_refusals", default=None)


class Quiet:
    """Mixed into the SDK's token and code models: their `token` and `code` never show in a repr or str (a log
    line, a traceback's locals, an assertion's message), where the SDK's own models print them whole."""

    HIDDEN: ClassVar[frozenset[str]] = frozenset({"token", "code"})

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():  # type: ignore[misc]
            yield name, "***" if name in self.HIDDEN else value


class QuietAccessToken(Quiet, AccessToken):
    """A verified bearer token that never shows itself."""


def refused(reason: str) -> None:
    """Note why this request's token was refused (a short code: unknown_token, expired, wrong_audience, ...)."""
    noted = refusals.get()
    if noted is not None:
        noted.append(reason)


class RecentlyGood(Generic[V]):
    """What a verifier found for each token it checked good lately, by the token's hash: taken for OUTAGE_GRACE_S
    after that look-up while the accounts database is away, so an outage does not sign everyone out. At most
    MAX_REMEMBERED: past it the stale go first, and then none is added."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._seen: dict[str, tuple[V, float]] = {}

    def keep(self, digest: str, value: V) -> None:
        now = self.clock()
        if len(self._seen) >= MAX_REMEMBERED:
            self._seen = {k: v for k, v in self._seen.items() if 0 <= now - v[1] < OUTAGE_GRACE_S}
        if len(self._seen) < MAX_REMEMBERED:
            self._seen[digest] = (value, now)

    def forget(self, digest: str) -> None:
        self._seen.pop(digest, None)

    def forget_where(self, gone: Callable[[V], bool]) -> None:
        self._seen = {k: v for k, v in self._seen.items() if not gone(v[0])}

    def get(self, digest: str) -> V | None:
        """The value kept for `digest`, if its look-up was less than OUTAGE_GRACE_S ago."""
        known = self._seen.get(digest)
        return known[0] if known is not None and 0 <= self.clock() - known[1] < OUTAGE_GRACE_S else None


class TokenTable:
    """The SDK's `TokenVerifier` over the accounts database."""

    def __init__(self, accounts: Accounts, clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts, self.clock = accounts, clock
        self._good: RecentlyGood[TokenInfo] = RecentlyGood(clock)

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            refused("malformed")
            return None
        try:
            found = await self.accounts.find_token_async(token)
        except StoreUnavailable as exc:
            found = self._recent(token, exc)
            if found is None:
                return None
        else:
            digest = hash_token(token)
            if found is None:
                self._good.forget(digest)
            else:
                self._good.keep(digest, found)
        if found is None:
            log.info("a request with an unknown or revoked bearer token was refused")
            refused("unknown_token")
            return None
        return QuietAccessToken(
            token=token,
            client_id=found.name,
            scopes=[],
            subject=TOKEN_PRINCIPAL + found.name,
            claims=_claims(found.limits),
        )

    def _recent(self, token: str, exc: StoreUnavailable) -> TokenInfo | None:
        known = self._good.get(hash_token(token))
        if known is not None:
            log.warning("%s Token %r taken as it was at its last look-up.", exc.message, known.name)
            return known
        log.warning("%s A token not seen recently was refused.", exc.message)
        refused("unavailable")
        return None


class SubjectQuotas:
    """The SDK's `TokenVerifier` around an OAuth verifier: a verified caller's quotas come from the accounts
    database (`quota set SUBJECT`), looked up on every request so a change applies at the next one; a subject
    without quotas of its own has the defaults. Nothing an issuer puts in a token sets a quota."""

    def __init__(self, inner: TokenVerifier, accounts: Accounts) -> None:
        self.inner, self.accounts = inner, accounts

    async def verify_token(self, token: str) -> AccessToken | None:
        found = await self.inner.verify_token(token)
        if found is None or not found.subject:
            return found
        limits = await self.accounts.quota_of_async(found.subject)
        claims = {k: v for k, v in (found.claims or {}).items() if k not in QUOTA_CLAIMS}
        return found.model_copy(update={"claims": claims | (_claims(limits) if limits else {})})


QUOTA_CLAIMS = ("usd_per_day", "usd_per_month", "calls_per_minute", "jobs")  # what `limits_of` reads


def _claims(limits: Limits) -> dict[str, float | int | None]:
    values = (limits.usd_per_day, limits.usd_per_month, limits.calls_per_minute, limits.jobs)
    return dict(zip(QUOTA_CLAIMS, values, strict=True))


def limits_of(token: AccessToken | None) -> Limits:
    """The quotas a verified token carries (unset ones are None: the defaults apply)."""
    claims = (token.claims or {}) if token is not None else {}

    def number(name: str) -> float | None:  # one of QUOTA_CLAIMS
        value = claims.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    calls, jobs = number("calls_per_minute"), number("jobs")
    return Limits(
        usd_per_day=number("usd_per_day"),
        usd_per_month=number("usd_per_month"),
        calls_per_minute=int(calls) if calls is not None else None,
        jobs=int(jobs) if jobs is not None else None,
    )
