"""Each user brings their own OpenRouter account (`OPENROUTER_MCP_AUTH=openrouter`): this server is the OAuth 2.1
authorization server its MCP clients discover (the SDK's `OAuthAuthorizationServerProvider`, with dynamic client
registration and revocation), and it federates the sign-in itself to OpenRouter's PKCE flow (`openrouter/signin.py`).

```
client ── /authorize (PKCE S256) ──▶ us: a sign-in in progress, under a random flow id
browser ── /openrouter/signin/FLOW ──▶ us: bound to this browser by a cookie (a consent page first, for a client
                                        whose redirect URI is not loopback: `redirects.py`), then sent on to
browser ── openrouter.ai/auth?callback_url=…/openrouter/callback/FLOW&code_challenge=(ours) ──▶ consent
browser ── /openrouter/callback/FLOW?code=… ──▶ us: same browser? exchange the code (POST /auth/keys, our verifier)
                                        for the user's key, sealed at rest (`sealed.py`); our own code
browser ── client's redirect_uri?code=(ours)&state=…&iss=… ──▶ client ── /token (PKCE checked by the SDK) ──▶ us
client ── /mcp with our access token ──▶ us: calls use, and are billed to, that user's own key
```

- The principal is `openrouter:` + the OpenRouter user id the code exchange names, so a person's work is theirs
  whichever client they sign in from, and again after a new sign-in; OpenRouter knows who they are, we do not need
  to. When the exchange names no user, a random id is made: that sign-in is a person of its own.
- Our codes (`CODE_TTL_S`), access tokens (`ACCESS_TTL_S`) and refresh tokens (`REFRESH_TTL_S`, rotated on every
  use) are random; only their SHA-256 hashes are stored (`jobs/signins.py`). A code or refresh token presented a
  second time ends its grant (RFC 9700: someone has a copy).
- Every request to `/mcp` looks its token up, with the grant and its key, so `/revoke` (which ends the grant and
  deletes the stored key) takes effect at the next request, on every replica.
- When OpenRouter refuses a user's key (401: revoked, deleted or expired), the call says so and the grant ends, so
  their client's next request gets our 401 and its OAuth client signs them in again; 402 and a key over its limit
  are said with what to do. Other users are untouched: each request uses its own caller's key only.
- The key is never returned to a client, never put in a message, never logged; the access token carries it to the
  request's caller in a field excluded from dumps and hidden from `repr`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable
from typing import ClassVar
from urllib.parse import urlsplit

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    IdentityAssertionParams,
    RefreshToken,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl, Field, SecretStr

from .. import _metrics
from .._constants import CREDITS_URL, KEYS_URL
from ..config import Settings
from ..errors import AuthError, CreditsError, ModerationError, OpenRouterError
from ..jobs.accounts import Accounts, hash_token
from ..jobs.signins import Pending, SignIns
from ..jobs.store import StoreUnavailable
from ..openrouter import signin
from .auth import QUOTA_CLAIMS, Quiet, RecentlyGood, refused
from .redirects import LoopbackPorts, registered
from .sealed import Sealer

__all__ = [
    "ACCESS_TTL_S",
    "CALLBACK_PATH",
    "CODE_PREFIX",
    "CODE_TTL_S",
    "PENDING_TTL_S",
    "PRINCIPAL",
    "REFRESH_TTL_S",
    "SIGNIN_PATH",
    "OpenRouterSignIn",
    "SignedInToken",
]

log = logging.getLogger(__name__)

PRINCIPAL = "openrouter:"
PENDING_TTL_S = 600.0  # from our /authorize to OpenRouter's callback: OpenRouter's code lives about 10 minutes
CODE_TTL_S = 300.0
ACCESS_TTL_S = 3600
REFRESH_TTL_S = 30 * 86400
SIGNIN_PATH = "/openrouter/signin/"
CALLBACK_PATH = "/openrouter/callback/"
MAX_TOKEN_CHARS = 512
ACCESS_PREFIX, REFRESH_PREFIX, CODE_PREFIX = "orm_at_", "orm_rt_", "orm_code_"  # `orm_`: scrubbed from every log
MAX_STATE_CHARS = 1000  # a client's `state` (and its scopes), kept with the sign-in in progress
MAX_PENDING = 20_000  # sign-ins in progress at once (each lives PENDING_TTL_S): the table stays bounded
MAX_UNUSED_CLIENTS = 10_000  # registered clients with no sign-in, kept: beyond it, the oldest such are forgotten
SECRET_SAMPLE = 50  # of each of sign-ins and registrations, checked at start-up against the secret
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # BASE64URL(SHA-256(verifier)), unpadded: 43 characters

SHUT = "does not open with OPENROUTER_MCP_KEY_SECRET (was the secret replaced without keeping the old one after it?)"
KEY_GONE = (
    "OpenRouter no longer accepts the key made when you signed in to this server (401: it was revoked, deleted or "
    "has expired). That sign-in has been ended here, so your MCP client will ask you to sign in with OpenRouter "
    "again at its next request; if it does not, reconnect (re-authenticate) this server in your client's MCP "
    "settings, e.g. `/mcp` in Claude Code."
)
KEY_SPENT = (
    " The key is the one made when you signed in to this server with OpenRouter, and it has a spending limit of its "
    f"own: add credits at {CREDITS_URL} or raise that key's limit at {KEYS_URL}, or sign in again (reconnect this "
    "server in your MCP client) to make a new key."
)


class SignedInCode(Quiet, AuthorizationCode):
    grant_id: str


class SignedInRefresh(Quiet, RefreshToken):
    grant_id: str
    key_opens: bool = Field(default=True, exclude=True)  # False: the secret that sealed its key is gone


class IssuedTokens(Quiet, OAuthToken):
    """What /token answers; its tokens never show in a repr or str."""

    HIDDEN: ClassVar[frozenset[str]] = frozenset({"access_token", "refresh_token"})


class SignedInToken(Quiet, AccessToken):
    """An access token of ours, verified: with its grant, and the user's OpenRouter key (never dumped or shown)."""

    grant_id: str = Field(exclude=True)
    openrouter_key: SecretStr = Field(exclude=True, repr=False)


def _scopes(text: str | None) -> list[str]:
    return text.split() if text else []


class OpenRouterSignIn:
    """The SDK's `OAuthAuthorizationServerProvider` over the accounts database (see the module docstring).

    `issuer` is this authorization server's issuer, as its metadata spells it (the public URL's origin); `resource`
    the MCP endpoint's URL (RFC 8707). The browser's steps between `/authorize` and our code are `signin_pages.py`'s."""

    def __init__(
        self,
        settings: Settings,
        accounts: Accounts,
        sealer: Sealer,
        *,
        issuer: str,
        resource: str,
    ) -> None:
        self.settings, self.sealer = settings, sealer
        self.store = SignIns(accounts)
        self.issuer, self.resource = issuer, resource
        self.base = issuer.rstrip("/")
        self.key_label = f"{settings.app_title} ({urlsplit(issuer).netloc})"
        self._ending: set[asyncio.Task[None]] = set()
        # Access tokens checked good lately, accepted while the database is away (as in the `tokens` mode); a grant
        # ended here drops its own.
        self._good: RecentlyGood[SignedInToken] = RecentlyGood(self._now)

    def _now(self) -> float:
        return self.store.now

    async def check_secret(self) -> None:
        """Once the server serves: one warning when stored sign-ins or client registrations do not open with
        OPENROUTER_MCP_KEY_SECRET (a secret replaced, not rotated), rather than one per person as they come back."""
        try:
            sample = await self.store.sealed_sample(SECRET_SAMPLE)
        except StoreUnavailable as exc:
            log.info("%s The stored sign-ins were not checked against OPENROUTER_MCP_KEY_SECRET.", exc.message)
            return
        shut = sum(1 for row, sealed in sample if self.sealer.open(row, sealed) is None)
        if shut:
            log.warning(
                "%d of the %d newest stored sign-ins and client registrations do not open with "
                "OPENROUTER_MCP_KEY_SECRET: was it replaced without keeping the old secret after it (`new,old`)? "
                "Those people must sign in again, and their clients register again.",
                shut,
                len(sample),
            )

    # ------------------------------------------------------------------------------------ clients (RFC 7591)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if not client_id or len(client_id) > 200:
            return None
        sealed = await self.store.client(client_id)
        info = self.sealer.open(client_id, sealed) if sealed else None  # (a confidential client's secret is in it)
        if info is None:
            if sealed:
                log.warning("the registration of MCP client %s %s: it must register again", client_id, SHUT)
            return None
        resealed = self.sealer.reseal(sealed) if sealed else None
        if resealed:  # OPENROUTER_MCP_KEY_SECRET was rotated: sealed again under its first value
            await self.store.reseal_client(client_id, resealed)
        return LoopbackPorts.model_validate_json(info)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        info = registered(client_info)  # or RegistrationError
        await self.store.save_client(
            client_info.client_id, self.sealer.seal(client_info.client_id, info), most_unused=MAX_UNUSED_CLIENTS
        )

    # ---------------------------------------------------------------------------------------- /authorize

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Keep the sign-in in progress, and send the browser to our sign-in page (which binds it to the browser)."""
        if params.resource is not None and params.resource.rstrip("/") != self.resource.rstrip("/"):
            raise AuthorizeError("invalid_target", f"This server signs in for {self.resource} only.")
        if not S256_CHALLENGE.fullmatch(params.code_challenge):
            raise AuthorizeError(
                "invalid_request", "code_challenge must be an S256 challenge (43 base64url characters)."
            )
        if len(params.state or "") > MAX_STATE_CHARS or len(" ".join(params.scopes or [])) > MAX_STATE_CHARS:
            raise AuthorizeError(
                "invalid_request", f"state and scope may be at most {MAX_STATE_CHARS} characters long each."
            )
        flow = secrets.token_urlsafe(32)
        flow_hash = hash_token(flow)
        pending = Pending(
            flow_hash=flow_hash,
            client_id=client.client_id,
            redirect_uri=str(params.redirect_uri),
            redirect_explicit=params.redirect_uri_provided_explicitly,
            code_challenge=params.code_challenge,
            state=params.state,
            scopes=" ".join(params.scopes) if params.scopes else None,
            resource=self.resource,
            verifier=self.sealer.seal(flow_hash, signin.new_verifier()),
            expires=self._now() + PENDING_TTL_S,
        )
        try:
            kept = await self.store.add_pending(pending, most=MAX_PENDING)
        except StoreUnavailable as exc:
            log.warning("%s A sign-in could not be started.", exc.message)
            raise AuthorizeError(
                "temporarily_unavailable", "The server cannot reach its database just now; sign in again in a minute."
            ) from None
        if not kept:
            log.warning("a sign-in was refused: %d sign-ins are in progress already (the most kept)", MAX_PENDING)
            raise AuthorizeError(
                "temporarily_unavailable",
                "Too many sign-ins are in progress on this server; try again in a few minutes.",
            )
        _metrics.signin("started")
        return f"{self.base}{SIGNIN_PATH}{flow}"

    # -------------------------------------------------------------------------------------------- /token

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> SignedInCode | None:
        found = await self.store.code(authorization_code) if len(authorization_code) <= MAX_TOKEN_CHARS else None
        if found is None or found.client_id != client.client_id:
            return None
        if found.used:  # RFC 6749 §4.1.2: what was issued for a code used twice is revoked
            await self._end(found.grant_id, "its authorization code was presented twice")
            return None
        if found.expires < self._now():
            return None
        return SignedInCode(
            code=authorization_code,
            scopes=_scopes(found.scopes),
            expires_at=found.expires,
            client_id=found.client_id,
            code_challenge=found.code_challenge,
            redirect_uri=AnyUrl(found.redirect_uri),
            redirect_uri_provided_explicitly=found.redirect_explicit,
            resource=found.resource,
            grant_id=found.grant_id,
        )

    async def exchange_authorization_code(
        self,
        client: OAuthClientInformationFull,  # noqa: ARG002 - the SDK checked it is the code's
        authorization_code: SignedInCode,
    ) -> OAuthToken:
        spent = ("code", hash_token(authorization_code.code))
        return await self._issue(authorization_code.grant_id, spent, authorization_code.scopes)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> SignedInRefresh | None:
        if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > MAX_TOKEN_CHARS:
            return None
        found = await self.store.refresh(refresh_token)
        if found is None or found.client_id != client.client_id:
            return None
        if found.used:  # a rotated refresh token, presented again: someone has a copy
            await self._end(found.grant_id, "a rotated refresh token was presented again")
            return None
        if found.expires < self._now():
            return None
        return SignedInRefresh(
            token=refresh_token,
            client_id=found.client_id,
            scopes=_scopes(found.scopes),
            expires_at=int(found.expires),
            resource=found.resource,
            grant_id=found.grant_id,
            key_opens=self.sealer.open(found.grant_id, found.sealed_key) is not None,
        )

    async def exchange_refresh_token(
        self,
        client: OAuthClientInformationFull,  # noqa: ARG002 - the SDK checked it is the token's
        refresh_token: SignedInRefresh,
        scopes: list[str],
    ) -> OAuthToken:
        if not refresh_token.key_opens:  # new tokens would each be refused at /mcp, and refreshed again, and again
            log.warning(
                "a refresh was refused: the stored OpenRouter key of a sign-in %s; they must sign in again", SHUT
            )
            raise TokenError("invalid_grant", "This sign-in can no longer be used here; sign in with OpenRouter again.")
        return await self._issue(refresh_token.grant_id, ("refresh", hash_token(refresh_token.token)), scopes)

    async def exchange_identity_assertion(
        self,
        client: OAuthClientInformationFull,  # noqa: ARG002 - the SDK's signature
        params: IdentityAssertionParams,  # noqa: ARG002
    ) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "Sign in with OpenRouter: no other grant is taken here.")

    async def _issue(self, grant_id: str, spent: tuple[str, str], scopes: list[str]) -> OAuthToken:
        access, refresh = ACCESS_PREFIX + secrets.token_urlsafe(32), REFRESH_PREFIX + secrets.token_urlsafe(32)
        now = self._now()
        issued = await self.store.issue(
            grant_id,
            spent=spent,
            access=(hash_token(access), now + ACCESS_TTL_S),
            refresh=(hash_token(refresh), now + REFRESH_TTL_S),
        )
        if not issued:  # two requests raced with one code or refresh token
            await self._end(grant_id, "one code or refresh token was used by two requests")
            raise TokenError("invalid_grant", "This code or refresh token was used already; sign in again.")
        try:  # the code or refresh token is spent: a failure now must not lose the new tokens (a retry is a replay)
            grant = await self.store.grant(grant_id)
            resealed = self.sealer.reseal(grant.sealed_key) if grant else None
            if resealed:  # OPENROUTER_MCP_KEY_SECRET was rotated: sealed again under its first value
                await self.store.reseal(grant_id, resealed)
        except StoreUnavailable as exc:
            log.warning(
                "%s A sign-in's key was not sealed again under the first secret; it will be next time.", exc.message
            )
        return IssuedTokens(
            access_token=access,
            expires_in=ACCESS_TTL_S,
            refresh_token=refresh,
            scope=" ".join(scopes) if scopes else None,
        )

    # ------------------------------------------------------------------------------ every request, /revoke

    async def load_access_token(self, token: str) -> SignedInToken | None:
        if not token.startswith(ACCESS_PREFIX) or len(token) > MAX_TOKEN_CHARS:
            refused("malformed")
            return None
        digest = hash_token(token)
        try:
            found = await self.store.access(token)
        except StoreUnavailable as exc:
            recent = self._good.get(digest)
            if recent is not None and self._now() < (recent.expires_at or 0):
                return recent
            log.warning("%s A sign-in's access token could not be checked and was refused.", exc.message)
            refused("unavailable")
            return None
        if found is None:
            self._good.forget(digest)
            refused("unknown_token")
            return None
        grant = found.grant
        key = self.sealer.open(grant.id, grant.sealed_key)
        if key is None:
            log.warning("the stored OpenRouter key of %s %s: they must sign in again", grant.principal, SHUT)
            refused("sealed_key")
            return None
        checked = SignedInToken(
            token=token,
            client_id=grant.client_id,
            scopes=_scopes(grant.scopes),
            expires_at=int(found.expires),
            resource=self.resource,
            subject=grant.principal,
            claims=dict(zip(QUOTA_CLAIMS, found.quotas, strict=True)) if found.quotas else None,
            grant_id=grant.id,
            openrouter_key=SecretStr(key),
        )
        self._good.keep(digest, checked)
        return checked

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        """End the token's grant. With the store away, StoreUnavailable: a 503 (`http.store_away`), which RFC 7009
        §2.2.1 has the client retry, rather than a 200 for a grant that lives on in the database."""
        grant_id = getattr(token, "grant_id", None)
        if isinstance(grant_id, str):
            _metrics.signin("revoked")
            await self._end(grant_id, "its client revoked it", strict=True)

    async def _end(self, grant_id: str, why: str, *, strict: bool = False) -> None:
        self._good.forget_where(lambda token: token.grant_id == grant_id)  # even if the store is away
        try:
            if await self.store.end(grant_id):
                log.info("a sign-in ended, with its stored OpenRouter key: %s", why)
        except StoreUnavailable as exc:
            if strict:  # said by the caller
                raise
            log.warning("%s A sign-in could not be ended (%s).", exc.message, why)

    # --------------------------------------------------------------------------- a user's key refused upstream

    def key_refused(self, token: SignedInToken) -> Callable[[OpenRouterError], str | None]:
        """What a caller signed in as `token` is told when OpenRouter refuses their key (None: the error's own
        message); a 401 also ends their grant, so their client signs them in again."""

        def told(exc: OpenRouterError) -> str | None:
            if isinstance(exc, AuthError) and exc.status == 401:
                task = asyncio.get_running_loop().create_task(self._end(token.grant_id, "OpenRouter refused its key"))
                self._ending.add(task)
                task.add_done_callback(self._ending.discard)
                _metrics.signin("key_refused")
                return KEY_GONE
            if isinstance(exc, CreditsError) or (isinstance(exc, ModerationError) and "limit" in exc.message.lower()):
                return exc.message + KEY_SPENT
            return None

        return told
