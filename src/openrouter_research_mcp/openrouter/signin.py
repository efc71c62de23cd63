"""Signing a user in with OpenRouter (OAuth with PKCE, RFC 7636): the verifier and its S256 challenge, the address of
the authorization page, and the exchange of the one-time code for a user key (`POST /auth/keys`).

Only the HTTP side lives here; the laptop's loopback listener and prompt are in `signin_cli.py`, the team server's
callback in `remote/`. Nothing here logs or puts in a message the code, the verifier or the key.

```
verifier = new_verifier()
page = auth_page_url(settings.base_url, settings.auth_url)
url = authorization_url(page, challenge=code_challenge(verifier), callback_url="http://127.0.0.1:8123/callback")
# ... the user consents, the browser arrives at callback_url?code=CODE ...
minted = await exchange_code(http, settings.base_url, code, verifier)  # .key, .user_id
```
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .._constants import KEYS_URL
from .._logging import scrub
from ..errors import AuthError, BadResponseError, RequestError, UpstreamTimeoutError, UpstreamUnavailableError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "KEY_SHAPE",
    "MintedKey",
    "auth_page_url",
    "authorization_url",
    "code_challenge",
    "exchange_code",
    "new_verifier",
]

# What an OpenRouter user id may look like to be taken as one (the team server makes its principal of it).
USER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")
# What may be taken as a key (from the exchange, or the key store): one token of visible ASCII, so it can go in an
# Authorization header as it is (`sk-or-v1-` and 64 hex digits on OpenRouter; a gateway's may look otherwise).
KEY_SHAPE = re.compile(r"[\x21-\x7e]{8,1000}")


@dataclass(frozen=True)
class MintedKey:
    """What `POST /auth/keys` answered: the user's new key, and the OpenRouter user it belongs to (when named)."""

    key: str = field(repr=False)
    user_id: str | None = None


# RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~]. 32 random bytes make 43 base64url characters (256 bits).
VERIFIER_BYTES = 32


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_verifier() -> str:
    """A fresh PKCE code verifier: 43 URL-safe characters from the OS's secure random source."""
    return _b64url(secrets.token_bytes(VERIFIER_BYTES))


def code_challenge(verifier: str) -> str:
    """The S256 challenge of `verifier`: BASE64URL(SHA-256(verifier)) without padding (RFC 7636 §4.2)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def auth_page_url(base_url: str, auth_url: str | None) -> str:
    """The authorization page: `auth_url` when set (OPENROUTER_AUTH_URL), else derived from the API's base URL,
    `https://openrouter.ai/api/v1` → `https://openrouter.ai/auth` (a path before `/api/v1` is kept)."""
    if auth_url and auth_url.strip():
        return auth_url.strip().rstrip("/")
    parts = urlsplit(base_url.strip().rstrip("/"))
    path = parts.path.rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if path.endswith(suffix):
            path = path.removesuffix(suffix)
            break
    else:
        path = ""  # an API address without /api: the page sits at the host's root
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/auth", "", ""))


def authorization_url(page: str, *, challenge: str, callback_url: str | None, key_label: str | None = None) -> str:
    """The address to send the user to. Without `callback_url` the page shows the code to copy (headless)."""
    query: dict[str, str] = {}
    if callback_url:
        query["callback_url"] = callback_url
    query["code_challenge"] = challenge
    query["code_challenge_method"] = "S256"
    if key_label and key_label.strip():
        query["key_label"] = key_label.strip()
    return f"{page}{'&' if '?' in page else '?'}{urlencode(query)}"


def _upstream_message(response: httpx.Response, *hidden: str) -> str:
    """The error message OpenRouter sent, short, with the code and verifier blanked should it echo them."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict):
        error = body.get("error")
        inner = error.get("message") if isinstance(error, dict) else error or body.get("message")
        message = str(inner or "")
    message = (message or response.reason_phrase or "no message").strip()
    for secret in hidden:  # before it is cut short, or a secret at the cut would be left in part
        if secret:
            message = message.replace(secret, "[redacted]")
    return scrub(message)[:200]  # and anything shaped like a key or a token of ours


async def exchange_code(http: httpx.AsyncClient, base_url: str, code: str, verifier: str) -> MintedKey:
    """Trade the one-time `code` and the `verifier` it was asked for with for a user key (`sk-or-v1-...`).

    Raises AuthError when OpenRouter refuses the code (used, expired, or asked for with another verifier),
    UpstreamUnavailableError / UpstreamTimeoutError when it cannot be reached, BadResponseError when the answer
    carries no key. No message contains the code, the verifier or the key."""
    import httpx

    code = code.strip()
    if not code:
        raise AuthError("No sign-in code was given. Run the sign-in again and paste the code the page shows.")
    url = f"{base_url.rstrip('/')}/auth/keys"
    body = {"code": code, "code_verifier": verifier, "code_challenge_method": "S256"}
    try:
        response = await http.post(url, json=body)
    except httpx.TimeoutException:
        raise UpstreamTimeoutError(
            "OpenRouter did not answer the sign-in in time. Check your connection and sign in again."
        ) from None
    except httpx.TransportError as exc:
        raise UpstreamUnavailableError(
            f"Could not reach OpenRouter to finish the sign-in ({type(exc).__name__}). Check your connection "
            "(and OPENROUTER_BASE_URL) and sign in again."
        ) from None
    status = response.status_code
    if status >= 400:
        upstream = _upstream_message(response, code, verifier)
        if status in (400, 401, 403, 404, 409, 410):
            raise AuthError(
                f"OpenRouter refused the sign-in code ({status}: {upstream}). A code works once, for about 10 "
                "minutes, and only with the sign-in that asked for it: sign in again to get a new one.",
                status=status,
            )
        if status == 429 or status >= 500:
            raise UpstreamUnavailableError(
                f"OpenRouter could not finish the sign-in ({status}: {upstream}). Wait a moment and sign in again.",
                status=status,
            )
        raise RequestError(
            f"OpenRouter refused the sign-in ({status}: {upstream}). Sign in again, or create a key at {KEYS_URL} "
            "and set OPENROUTER_API_KEY.",
            status=status,
        )
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    key = payload.get("key") if isinstance(payload, dict) else None
    if not isinstance(key, str) or not key.strip():
        raise BadResponseError(
            f"OpenRouter answered the sign-in without a key (HTTP {status}). Sign in again, or create a key at "
            f"{KEYS_URL} and set OPENROUTER_API_KEY."
        )
    if not KEY_SHAPE.fullmatch(key.strip()):  # stored, it would break (or split) every request's headers
        raise BadResponseError(
            f"OpenRouter answered the sign-in with something that is not a key (HTTP {status}), so nothing was "
            f"stored. Sign in again, or create a key at {KEYS_URL} and set OPENROUTER_API_KEY."
        )
    user = payload.get("user_id")
    return MintedKey(key.strip(), user if isinstance(user, str) and USER_ID.fullmatch(user) else None)
