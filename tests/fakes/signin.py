"""OpenRouter's sign-in (OAuth with PKCE) on the fake: the authorization page and the code exchange, and the keys
they mint. `FakeOpenRouter.signin` is one `FakeSignIn`; the handler routes `GET /auth` and `POST /api/v1/auth/keys`
here and asks it whether a bearer key is good.

- `GET /auth?callback_url=U&code_challenge=C&code_challenge_method=S256[&key_label=L]` stands in for the page a
  user consents on, and consents at once: a 302 to `U?code=CODE` (`&code=` when U has a query). As upstream, only a
  `localhost` / `127.0.0.1` callback is accepted, unless `allow_any_callback` is set (then any http(s) URL: a team
  server's public callback). Without `callback_url`: an HTML page showing the code as `<code id="code">CODE</code>`
  (headless sign-in). Only `S256` is accepted, so tests prove the client sends it. As on OpenRouter, a browser stays
  signed in: its first visit makes a new user and sets a `fake_openrouter_user` cookie; later visits with it sign in
  the same user again (their keys share a `user_id`).
- `POST /api/v1/auth/keys` `{"code", "code_verifier", "code_challenge_method": "S256"}` → `{"key": "sk-or-v1-…",
  "user_id": …}`. A code works once (the first exchange uses it up, right verifier or wrong), for `CODE_TTL` seconds
  on `clock`, only with the verifier whose challenge it was issued for: anything else is a 403 JSON error (400 when
  a field is missing). No key is needed to call it.
- A minted key is good for every other endpoint until `revoke(key)` or its expiry (then 401); `GET /key` reports its
  own `limit` (`key_limit`), `usage`, and `expires_at` (`key_ttl` after minting; None: never). `Recorded.key` says
  which key each request used, so a test can prove whose account a call was billed to.

```
fake.signin.allow_any_callback = True          # a team server's https callback
code = fake.signin.issue(code_challenge(v))    # what the page would hand out, without HTTP
key = fake.signin.mint_key()                   # a key as if signed in, no exchange
fake.signin.revoke(key); fake.signin.keys[key].label
fake.signin.clock = lambda: now + 601          # codes (and keys past key_ttl) expire
```
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CODE_TTL", "FakeSignIn", "MintedKey", "Reply"]

CODE_TTL = 600.0  # seconds a code stays valid ("about 10 minutes")
KEY_TTL = 7 * 86400.0  # the expiry OpenRouter's own hosted MCP server gives the keys it mints
PAGE_PATH, EXCHANGE_PATH = "/auth", "/auth/keys"  # as the handler sees them (relative to /api/v1 where under it)
USER_COOKIE = "fake_openrouter_user"  # who this browser is signed in to the fake as


@dataclass(frozen=True)
class Reply:
    """What the handler sends back."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Code:
    challenge: str
    label: str | None
    issued: float
    used: bool = False
    user_id: str | None = None


@dataclass
class MintedKey:
    """A key the sign-in made: its label, limit, expiry (epoch seconds, or None) and whether it was revoked."""

    label: str | None
    limit: float | None
    expires: float | None
    revoked: bool = False
    user_id: str = "user_fake"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _json(status: int, payload: Any) -> Reply:
    import json

    return Reply(status, json.dumps(payload).encode())


def _error(status: int, message: str) -> Reply:
    return _json(status, {"error": {"code": status, "message": message}})


def _page(status: int, title: str, text: str) -> Reply:
    body = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{text}"
    return Reply(status, body.encode(), "text/html; charset=utf-8")


class FakeSignIn:
    """Codes issued and keys minted by the fake's sign-in; see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.allow_any_callback = False
        self.key_limit: float | None = 10.0  # the $10 default cap of keys minted this way
        self.key_ttl: float | None = KEY_TTL
        self.keys: dict[str, MintedKey] = {}
        self.exchanges = 0  # POST /auth/keys calls answered with a key
        self._codes: dict[str, _Code] = {}
        self._users = itertools.count(1)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------- for tests

    def issue(self, challenge: str, *, label: str | None = None, user_id: str | None = None) -> str:
        """A fresh code bound to `challenge` (what the page hands out on consent), for `user_id` (None: a new user)."""
        code = f"code-{secrets.token_urlsafe(18)}"
        with self._lock:
            self._codes[code] = _Code(challenge, label, self.clock(), user_id=user_id)
        return code

    def new_user(self) -> str:
        return f"user_signin_{next(self._users)}"

    def mint_key(self, label: str | None = None, user_id: str | None = None) -> str:
        """A new key, as a finished sign-in makes one, for `user_id` (None: a new user)."""
        key = f"sk-or-v1-{secrets.token_hex(32)}"
        now = self.clock()
        with self._lock:
            self.keys[key] = MintedKey(
                label,
                self.key_limit,
                None if self.key_ttl is None else now + self.key_ttl,
                user_id=user_id or self.new_user(),
            )
        return key

    def revoke(self, key: str) -> None:
        """The key stops working (401) from the next request on."""
        with self._lock:
            self.keys[key].revoked = True

    def accepts(self, key: str) -> bool:
        """Whether `key` is a minted key still good now."""
        with self._lock:
            minted = self.keys.get(key)
        return minted is not None and not minted.revoked and (minted.expires is None or self.clock() < minted.expires)

    def key_info(self, key: str) -> dict[str, Any] | None:
        """The fields of `GET /key` that differ for a minted key (None for any other key)."""
        with self._lock:
            minted = self.keys.get(key)
        if minted is None:
            return None
        expires = None if minted.expires is None else datetime.fromtimestamp(minted.expires, UTC)
        return {
            "label": f"{key[:12]}...{key[-3:]}",
            "limit": minted.limit,
            "limit_remaining": minted.limit,
            "usage": 0.0,
            "usage_daily": 0.0,
            "usage_weekly": 0.0,
            "usage_monthly": 0.0,
            "expires_at": None if expires is None else expires.isoformat().replace("+00:00", "Z"),
        }

    # ------------------------------------------------------------------------------------------------ HTTP

    def handles(self, method: str, path: str) -> bool:
        """Whether a request is the sign-in's to answer."""
        return (method, path) in (("GET", PAGE_PATH), ("POST", EXCHANGE_PATH))

    def respond(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, cookie: str | None = None
    ) -> Reply:
        """Answer a request `handles` took (`cookie`: its Cookie header)."""
        if method == "GET" and path == PAGE_PATH:
            jar = SimpleCookie(cookie or "")
            user = jar[USER_COOKIE].value if USER_COOKIE in jar else None
            return self._authorize({name: values[0] for name, values in query.items() if values}, user)
        return self._exchange(body)

    def _callback_ok(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        return self.allow_any_callback or parts.hostname in ("localhost", "127.0.0.1")

    def _authorize(self, query: dict[str, str], user: str | None) -> Reply:
        challenge, method = query.get("code_challenge", ""), query.get("code_challenge_method", "")
        if not challenge or method != "S256":
            return _page(400, "Bad sign-in request", "<p>Send code_challenge and code_challenge_method=S256.</p>")
        callback = query.get("callback_url")
        if callback is not None and not self._callback_ok(callback):
            return _page(400, "Bad sign-in request", "<p>callback_url must be on localhost or 127.0.0.1.</p>")
        user = user or self.new_user()  # this browser's OpenRouter user, signed in from now on
        code = self.issue(challenge, label=query.get("key_label"), user_id=user)
        remembered = {"Set-Cookie": f"{USER_COOKIE}={user}; Path=/; HttpOnly"}
        if callback is None:
            shown = f'<p>Paste this code where you started:</p><code id="code">{code}</code>'
            return Reply(200, _page(200, "Your sign-in code", shown).body, "text/html; charset=utf-8", remembered)
        joiner = "&" if urlsplit(callback).query else "?"
        return Reply(302, b"", "text/plain", {"Location": f"{callback}{joiner}code={code}", **remembered})

    def _exchange(self, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("code"), str):
            return _error(400, "code: Required")
        if body.get("code_challenge_method") != "S256" or not isinstance(body.get("code_verifier"), str):
            return _error(400, "code_verifier and code_challenge_method S256 are required for this code")
        with self._lock:
            found = self._codes.get(body["code"])
            fresh = found is not None and not found.used and self.clock() - found.issued < CODE_TTL
            if found is not None:
                found.used = True  # one attempt per code, right or wrong, as a careful server does
        if found is None or not fresh:
            return _error(403, "Invalid code: it was used already, has expired or does not exist")
        if _challenge(body["code_verifier"]) != found.challenge:
            return _error(403, "Invalid code_verifier for this code")
        key = self.mint_key(found.label, found.user_id)
        with self._lock:
            self.exchanges += 1
            user = self.keys[key].user_id
        return _json(200, {"key": key, "user_id": user})
