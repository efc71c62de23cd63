"""OAuth 2.1 access tokens for a team server, checked through the SDK's `TokenVerifier`: this server is a resource
server, and an outside authorization server (Keycloak, Auth0, Entra ID, ...) issues the tokens, as signed JWTs.

Why each rule (this is where a forged token would get in):
- Keys come only from the issuer's JWKS: the configured `jwks_url`, or the `jwks_uri` of its RFC 8414 / OpenID
  metadata, which must name our issuer. Never from the token (`jwk`, `jku` and `x5u` headers are ignored), and only
  over https (plain http on loopback only, for tests).
- The algorithm comes from an allow-list of asymmetric ones and must fit the key picked by `kid` (kty, curve, and
  the JWK's own `alg`): never `none`, never HS*, since the classic key-confusion attack signs HS256 with the
  issuer's *public* key as the HMAC secret.
- The JWKS is held in memory, fetched on first use (concurrent first calls share one fetch), and fetched again when a
  token names a `kid` it lacks, so key rotation works, but at most once per REFETCH_INTERVAL_S (and not for that
  long after a fetch failed): a flood of random kids cannot make us hammer the issuer. After JWKS_MAX_AGE_S it is
  fetched again, in the background, while calls go on with the keys held (an issuer that is slow or away never
  stalls them): a key the issuer withdrew stops working once that fetch lands; if it fails the keys held are kept.
- Claims: `iss` is our issuer and `aud` holds our audience (RFC 8707: this server's resource URL), so a token issued
  for another service is no key to this one; `exp` is required and it, `nbf` and `iat` are checked with leeway
  against the injected clock; `sub` is required and becomes the caller's principal, `oauth:<sub>`.
- Scopes are *not* enforced here. The token comes back with its real scopes and the SDK's `RequireAuthMiddleware`
  answers 403 `insufficient_scope` when `AuthSettings.required_scopes` (set it to `OAuthConfig.scopes`) are missing;
  a refusal here would be a 401 `invalid_token`, telling the client to fetch the same token again instead of asking
  for more scope.
- `AccessToken.claims` holds identity only (iss, sub, aud, client_id, jti), never quota claims: an issuer's token
  does not grant itself a budget (`limits_of` finds none, so the defaults for OAuth callers apply).
- A refusal returns None, logs one INFO line with a reason code from REFUSALS and passes that code to `on_refusal`
  (for metrics). Nothing logged contains the token or any part of it; nothing here raises.

Wiring: `AuthSettings(issuer_url=config.issuer, resource_server_url=config.audience, required_scopes=
list(config.scopes), validate_token_resource=True)`; `AccessToken.resource` is the audience, so the SDK's own
resource check agrees with ours when the audience is the server's URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from jwt.types import Options
from mcp.server.auth.provider import AccessToken

from ..jobs.accounts import OAUTH_PRINCIPAL
from .auth import QuietAccessToken

__all__ = [
    "ALLOWED_ALGORITHMS",
    "REFUSALS",
    "DiscoveryError",
    "JwtVerifier",
    "OAuthConfig",
    "discover",
]

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 8192  # longer is no access token: refused without parsing
FETCH_TIMEOUT_S = 5.0
REFETCH_INTERVAL_S = 30.0  # at most one JWKS fetch for unknown kids, and none after a failure, in this many seconds
JWKS_MAX_AGE_S = 3600.0
MAX_DOCUMENT_BYTES = 1 << 20  # metadata and JWKS documents; larger is no honest issuer's
OAUTH_METADATA = "/.well-known/oauth-authorization-server"
OIDC_METADATA = "/.well-known/openid-configuration"

# Algorithm -> the JWK key type it needs, and the curves allowed (None: any; RSA has none).
_KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    **{f"{family}{bits}": ("RSA", None) for family in ("RS", "PS") for bits in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
ALLOWED_ALGORITHMS = frozenset(_KEY_TYPES)

# Reason codes, for logs and metrics. malformed: not a JWS, or a claim of the wrong type; no_kid: no kid, and not
# exactly one key fits; key_mismatch: the kid's key does not fit the algorithm; bad_key: a JWK that makes no key, or
# too weak a key; not_yet_valid: nbf or iat in the future.
REFUSALS: tuple[str, ...] = tuple(
    "missing oversized malformed alg_not_allowed unknown_kid no_kid key_mismatch bad_key bad_signature "
    "jwks_unavailable wrong_issuer wrong_audience no_expiry expired not_yet_valid no_subject".split()
)

# Signature only: time claims are checked against our clock, iss/aud/sub by us with reason codes of their own.
_DECODE_OPTIONS: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_iss": False,
    "verify_aud": False,
    "verify_sub": False,
    "enforce_minimum_key_length": True,
}


@dataclass(frozen=True)
class OAuthConfig:
    """Which tokens this resource server accepts."""

    issuer: str  # compared exactly, one trailing slash aside
    audience: str  # must be in the token's `aud` (RFC 8707: this server's resource URL)
    scopes: tuple[str, ...]  # required; enforced by the SDK (AuthSettings.required_scopes), see the module docstring
    jwks_url: str | None = None  # None: discovered from the issuer's metadata
    leeway_s: float = 30.0


class DiscoveryError(Exception):
    """The issuer's metadata or JWKS could not be fetched, or did not check out."""


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _same_url(a: str, b: str) -> bool:
    return a == b or a.removesuffix("/") == b.removesuffix("/")


def _secure(url: str) -> bool:
    """https, or http to this machine (a test issuer)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


async def _get_json(http: httpx.AsyncClient, url: str) -> Any:
    """GET a JSON document of at most MAX_DOCUMENT_BYTES."""
    if not _secure(url):
        raise DiscoveryError(f"{url} is neither https nor loopback")
    body = bytearray()
    try:
        async with http.stream("GET", url, timeout=FETCH_TIMEOUT_S, headers={"Accept": "application/json"}) as answer:
            if answer.status_code != 200:
                raise DiscoveryError(f"{url} answered HTTP {answer.status_code}")
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise DiscoveryError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"{url} could not be fetched ({type(exc).__name__})") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise DiscoveryError(f"{url} did not answer JSON") from exc


async def discover(config: OAuthConfig, http: httpx.AsyncClient) -> str:
    """The issuer's `jwks_uri`, from its RFC 8414 metadata or else its OpenID configuration (which must name it)."""
    issuer = config.issuer.removesuffix("/")
    parts = urlsplit(issuer)
    if parts.query or parts.fragment:
        raise DiscoveryError(f"the issuer {config.issuer} has a query or fragment, which RFC 8414 forbids")
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path
    if path:  # RFC 8414 §3.1 inserts the well-known part before the path; OpenID appends it
        candidates = [origin + OAUTH_METADATA + path, origin + OIDC_METADATA + path, issuer + OIDC_METADATA]
    else:
        candidates = [origin + OAUTH_METADATA, origin + OIDC_METADATA]
    failures = []
    for url in candidates:
        try:
            metadata = await _get_json(http, url)
        except DiscoveryError as exc:
            failures.append(str(exc))
            continue
        if not isinstance(metadata, dict):
            failures.append(f"{url} is not a metadata object")
            continue
        named = metadata.get("issuer")
        if not isinstance(named, str) or not _same_url(named, config.issuer):
            # RFC 8414 §3.3: metadata naming another issuer must not be used (a misconfiguration or an attack).
            raise DiscoveryError(f"{url} names the issuer {named!r}, not {config.issuer}")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _secure(jwks_uri):
            raise DiscoveryError(f"{url} gives no https jwks_uri")
        return jwks_uri
    raise DiscoveryError("no metadata for the issuer: " + "; ".join(failures))


def _fits(jwk: dict[str, Any], alg: str) -> bool:
    """Whether the JWK may verify a signature made with `alg`."""
    if jwk.get("use", "sig") != "sig":
        return False
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return False
    if "alg" in jwk and jwk["alg"] != alg:
        return False
    kty, curves = _KEY_TYPES[alg]
    return jwk.get("kty") == kty and (curves is None or jwk.get("crv") in curves)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _scopes(payload: dict[str, Any]) -> list[str]:
    """Scopes from `scope` (RFC 9068: space-separated) and `scp` (a list, or space-separated)."""
    found: list[str] = []
    for name in ("scope", "scp"):
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            items = value.split()
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [item for item in value if item]
        else:
            raise _Refused("malformed")
        found.extend(item for item in items if item not in found)
    return found


class JwtVerifier:
    """The SDK's `TokenVerifier` for JWT access tokens from one issuer; see the module docstring."""

    def __init__(
        self,
        config: OAuthConfig,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        on_refusal: Callable[[str], None] | None = None,
    ) -> None:
        """`http` None: an own client, closed by `aclose`. `clock` gives the time claims and refetches are judged by.
        `on_refusal` is called with the reason code (one of REFUSALS) of every refusal."""
        self.config = config
        self._http = http
        self._owns_http = http is None
        self._clock = clock
        self._on_refusal = on_refusal
        self._lock = asyncio.Lock()
        self._jwks_url = config.jwks_url
        self._jwks: list[dict[str, Any]] | None = None
        self._keys: dict[tuple[int, str], jwt.PyJWK] = {}  # (index in _jwks, alg) -> the key built
        self._generation = 0  # how many times the JWKS was loaded
        self._loaded_at: float | None = None
        self._failed_at: float | None = None  # the last fetch that failed: none is tried again for a while
        self._refetched_at: float | None = None  # the last fetch made for an unknown kid: the same
        self._behind: asyncio.Task[None] | None = None  # a fetch of keys grown old, while the old ones serve

    @property
    def refreshing(self) -> bool:
        """Whether keys grown old are being fetched again in the background."""
        return self._behind is not None and not self._behind.done()

    async def refreshed(self) -> None:
        """Wait for a background fetch of the keys, if one is under way."""
        if self._behind is not None:
            await asyncio.shield(self._behind)

    async def aclose(self) -> None:
        """Stop a background fetch, and close the HTTP client if this verifier made it."""
        if self._behind is not None:
            self._behind.cancel()
            await asyncio.wait([self._behind])
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def verify_token(self, token: str) -> AccessToken | None:
        """The verified token, or None (logged with its reason code, which goes to `on_refusal`)."""
        try:
            return await self._verify(token)
        except _Refused as refusal:
            log.info("an OAuth access token was refused: %s", refusal.reason)
            if self._on_refusal is not None:
                self._on_refusal(refusal.reason)
            return None

    async def _verify(self, token: str) -> AccessToken:
        if not token:
            raise _Refused("missing")
        if len(token) > MAX_TOKEN_CHARS:
            raise _Refused("oversized")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _Refused("malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise _Refused("alg_not_allowed")
        key = await self._key_for(header.get("kid"), alg)
        try:
            payload = jwt.decode(token, key, algorithms=[alg], options=_DECODE_OPTIONS)
        except jwt.InvalidSignatureError:
            raise _Refused("bad_signature") from None
        except jwt.InvalidKeyError:
            raise _Refused("bad_key") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _Refused("malformed") from None
        return self._access_token(token, payload)

    def _access_token(self, token: str, payload: dict[str, Any]) -> AccessToken:
        config, now = self.config, self._clock()
        issuer = payload.get("iss")
        if not isinstance(issuer, str) or not _same_url(issuer, config.issuer):
            raise _Refused("wrong_issuer")
        aud = payload.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(entry, str) and _same_url(entry, config.audience) for entry in audiences):
            raise _Refused("wrong_audience")
        times: dict[str, float] = {}
        for name in ("exp", "nbf", "iat"):
            if name in payload:
                value = _number(payload[name])
                if value is None:
                    raise _Refused("malformed")
                times[name] = value
        if "exp" not in times:
            raise _Refused("no_expiry")
        exp = times["exp"]
        if now >= exp + config.leeway_s:
            raise _Refused("expired")
        if max(times.get("nbf", -math.inf), times.get("iat", -math.inf)) > now + config.leeway_s:
            raise _Refused("not_yet_valid")
        subject = payload.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _Refused("no_subject")
        scopes = _scopes(payload)
        client_id = next(
            (v for v in (payload.get("azp"), payload.get("client_id")) if isinstance(v, str) and v), subject
        )
        claims: dict[str, Any] = {"iss": config.issuer, "sub": subject, "aud": audiences, "client_id": client_id}
        if isinstance(payload.get("jti"), str):
            claims["jti"] = payload["jti"]
        return QuietAccessToken(
            token=token,
            client_id=client_id,
            scopes=scopes,
            # The SDK refuses a token past `expires_at` by the wall clock, without leeway: the leeway given here
            # to a clock a little behind the issuer's would be taken back there.
            expires_at=math.ceil(exp + config.leeway_s),
            resource=config.audience,
            subject=OAUTH_PRINCIPAL + subject,
            claims=claims,
        )

    # ------------------------------------------------------------------------------------------------ keys

    async def _key_for(self, kid: Any, alg: str) -> jwt.PyJWK:
        if self._jwks is None:
            await self._refresh(self._generation)
        elif self._stale() and not self.refreshing:
            self._behind = asyncio.get_running_loop().create_task(self._refresh(self._generation))
        if self._jwks is None:
            raise _Refused("jwks_unavailable")
        if kid is None:
            fitting = [index for index, jwk in enumerate(self._jwks) if _fits(jwk, alg)]
            if len(fitting) != 1:
                raise _Refused("no_kid")
            return self._build(fitting[0], alg)
        key = self._pick(kid, alg)
        if key is None:  # perhaps a key the issuer added since: look again, if we have not just looked
            seen = self._generation
            await self._refresh(seen, unknown_kid=True)
            key = self._pick(kid, alg) if self._generation != seen else None
        if key is None:
            raise _Refused("unknown_kid")
        return key

    def _pick(self, kid: Any, alg: str) -> jwt.PyJWK | None:
        """The key named `kid` that fits `alg`; None if no key has that kid."""
        assert self._jwks is not None
        named = [index for index, jwk in enumerate(self._jwks) if jwk.get("kid") == kid]
        for index in named:
            if _fits(self._jwks[index], alg):
                return self._build(index, alg)
        if named:
            raise _Refused("key_mismatch")
        return None

    def _build(self, index: int, alg: str) -> jwt.PyJWK:
        assert self._jwks is not None
        key = self._keys.get((index, alg))
        if key is None:
            try:
                key = jwt.PyJWK(self._jwks[index], algorithm=alg)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                raise _Refused("bad_key") from None
            self._keys[(index, alg)] = key
        return key

    def _stale(self) -> bool:
        return self._loaded_at is not None and not 0 <= self._clock() - self._loaded_at < JWKS_MAX_AGE_S

    async def _refresh(self, seen: int, *, unknown_kid: bool = False) -> None:
        """Fetch the JWKS, unless another call did since generation `seen`, a fetch failed within
        REFETCH_INTERVAL_S, or (for an unknown kid) one was made for an unknown kid within it. So a key rotated in
        just after start-up is found at once, and a flood of made-up kids costs the issuer one fetch per interval."""

        def recent(then: float | None) -> bool:
            return then is not None and 0 <= now - then < REFETCH_INTERVAL_S

        async with self._lock:
            now = self._clock()
            if self._generation != seen or recent(self._failed_at) or (unknown_kid and recent(self._refetched_at)):
                return
            if unknown_kid:
                self._refetched_at = now
            try:
                jwks = await self._fetch()
            except DiscoveryError as exc:
                self._failed_at = now
                log.warning("the OAuth issuer's keys could not be fetched: %s", exc)
                return
            self._jwks, self._keys, self._loaded_at = jwks, {}, now
            self._generation += 1

    async def _fetch(self) -> list[dict[str, Any]]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=FETCH_TIMEOUT_S)
        if self._jwks_url is None:
            self._jwks_url = await discover(self.config, self._http)
        document = await _get_json(self._http, self._jwks_url)
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise DiscoveryError(f"{self._jwks_url} is not a JWK set")
        return [key for key in keys if isinstance(key, dict)]
