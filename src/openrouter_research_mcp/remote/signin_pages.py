"""The browser's side of signing in with OpenRouter (`federation.py`): between our `/authorize` and our code, as
Starlette routes on the HTTP server: our sign-in page, a consent page for a client whose redirect URI is not
loopback http(s) on this machine (`redirects.py`), and OpenRouter's callback, where the user's key is had for
OpenRouter's code.

Each sign-in in progress is bound to the browser that opened our sign-in page by a cookie of its own
(`orm_signin_…`: HttpOnly, SameSite=Lax, Secure over https, scoped to `/openrouter/`, for as long as the sign-in
may take). A consent answer or a callback without that cookie is refused (and a consent answer must also carry its
value in the form, as our page does), so a link to OpenRouter's page taken from someone's sign-in, or a form posted
from another site, gets nobody a sign-in. The pages say what went wrong and
what to do in words for people; none shows a code, a key or a token, none may be framed, and none leaks its URL in a
`Referer`.
"""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx
from mcp.server.auth.provider import construct_redirect_uri
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .. import _metrics
from .._constants import KEYS_URL
from ..errors import AuthError, OpenRouterError
from ..jobs.accounts import hash_token
from ..jobs.signins import Grant, Pending
from ..jobs.store import StoreUnavailable
from ..openrouter import signin
from .federation import CALLBACK_PATH, CODE_PREFIX, CODE_TTL_S, PENDING_TTL_S, PRINCIPAL, SIGNIN_PATH, OpenRouterSignIn
from .redirects import needs_consent, shown

__all__ = ["BrowserSignIn", "Consent", "SignInRefused", "signin_routes"]

log = logging.getLogger(__name__)

EXCHANGE_TIMEOUT_S = 30.0
COOKIE_PREFIX = "orm_signin_"
MAX_FLOW_CHARS = 100
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
}
STYLE = "body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em}button{font:inherit}"

UNKNOWN = (
    "This sign-in link is unknown, was used already or has expired (a sign-in must be finished within "
    f"{int(PENDING_TTL_S // 60)} minutes). Start again from your MCP client."
)
STORE_AWAY = (
    "This server cannot reach its database just now, so the sign-in cannot go on. Wait a minute and start again "
    "from your MCP client (reconnect this server in its MCP settings); if it keeps happening, tell the server's "
    "operator."
)
KEY_UNUSED = (
    " OpenRouter made a key for this sign-in (labelled “{label}”) that this server could not keep and will never "
    f"use: you may delete it at {KEYS_URL}."
)
OTHER_BROWSER = (
    "This sign-in was started in another browser, or this browser did not keep its cookie. Finish it in the "
    "browser your MCP client opened, or start again from your MCP client."
)

Handler = Callable[[Request], Awaitable[Response]]


class SignInRefused(Exception):
    """A step of the browser's sign-in that cannot go on; the message is for the person in the browser."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Consent:
    """What the consent page shows before a client with a remote redirect URI is sent on to OpenRouter."""

    def __init__(self, client_name: str, redirect_host: str) -> None:
        self.client_name, self.redirect_host = client_name, redirect_host


class BrowserSignIn:
    """The browser's steps, on `provider`'s store; `transport` replaces the network for the code exchange."""

    def __init__(self, provider: OpenRouterSignIn, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.provider, self.store, self.sealer = provider, provider.store, provider.sealer
        self.settings, self.transport = provider.settings, transport

    async def start(self, flow: str, cookie: str | None) -> tuple[str, str | Consent]:
        """Bind the sign-in to this browser (or find it bound to it already, on a reload): the cookie to set, and
        where to go next, OpenRouter's page, or the consent page first."""
        browser = cookie or secrets.token_urlsafe(32)
        pending = await self.store.bind(flow, browser)
        if pending is None:
            pending = await self.store.pending(flow)
            if pending is None:
                raise SignInRefused(UNKNOWN)
            if cookie is None or pending.browser != hash_token(cookie):
                raise SignInRefused(OTHER_BROWSER)
        if needs_consent(pending.redirect_uri):
            client = await self.provider.get_client(pending.client_id)
            name = (client.client_name if client else None) or "An application"
            return browser, Consent(name, shown(pending.redirect_uri))
        return browser, self._openrouter_page(flow, pending)

    async def consent(self, flow: str, cookie: str | None, allow: bool) -> str:
        """The answer on the consent page: on to OpenRouter, or back to the client with `access_denied`."""
        pending = await self.store.pending(flow)
        if pending is None:
            raise SignInRefused(UNKNOWN)
        if cookie is None or pending.browser != hash_token(cookie):
            raise SignInRefused(OTHER_BROWSER)
        if allow:
            return self._openrouter_page(flow, pending)
        taken = await self.store.take(flow, cookie)
        if taken is None:
            raise SignInRefused(UNKNOWN)
        return self._back(taken, error="access_denied", error_description="You did not allow the sign-in.")

    async def finish(self, flow: str, cookie: str | None, code: str | None, error: str | None) -> str:
        """OpenRouter's callback: the user's key for OpenRouter's code, sealed and kept; our code to the client."""
        pending = await self.store.take(flow, cookie) if cookie else None
        if pending is None:
            raise SignInRefused(OTHER_BROWSER if await self.store.pending(flow) else UNKNOWN)
        if error or not code:
            _metrics.signin("declined")
            return self._back(pending, error="access_denied", error_description="The sign-in on OpenRouter ended.")
        verifier = self.sealer.open(pending.flow_hash, pending.verifier)
        if verifier is None:
            _metrics.signin("failed")
            return self._back(pending, error="server_error", error_description="Start the sign-in again.")
        try:
            key, user = await self._exchange(code, verifier)
        except AuthError as exc:
            _metrics.signin("declined")
            return self._back(pending, error="access_denied", error_description=exc.message)
        except OpenRouterError as exc:
            _metrics.signin("failed")
            return self._back(pending, error="temporarily_unavailable", error_description=exc.message)
        grant_id = secrets.token_urlsafe(18)
        principal = PRINCIPAL + (user or f"signin-{secrets.token_hex(16)}")
        ours = CODE_PREFIX + secrets.token_urlsafe(32)
        expires = self.store.now + CODE_TTL_S
        sealed = self.sealer.seal(grant_id, key)
        grant = Grant(grant_id, principal, pending.client_id, pending.scopes, pending.resource, sealed, expires)
        try:
            await self.store.add_grant(grant, ours, pending, expires)
        except StoreUnavailable as exc:  # the key is made, and cannot be kept: say so, and where to delete it
            log.warning("%s The sign-in of %s was lost after OpenRouter made its key.", exc.message, principal)
            _metrics.signin("failed")
            raise SignInRefused(STORE_AWAY + KEY_UNUSED.format(label=self.provider.key_label)) from None
        _metrics.signin("signed_in")
        log.info("%s signed in with OpenRouter (client %s)", principal, pending.client_id)
        return self._back(pending, code=ours)

    def _openrouter_page(self, flow: str, pending: Pending) -> str:
        verifier = self.sealer.open(pending.flow_hash, pending.verifier)
        if verifier is None:
            raise SignInRefused(UNKNOWN)
        page = signin.auth_page_url(self.settings.base_url, self.settings.auth_url)
        callback = f"{self.provider.base}{CALLBACK_PATH}{flow}"
        return signin.authorization_url(
            page, challenge=signin.code_challenge(verifier), callback_url=callback, key_label=self.provider.key_label
        )

    def _back(self, pending: Pending, **params: str) -> str:
        """The client's redirect URI with `params`, its state, and our issuer (RFC 9207)."""
        return construct_redirect_uri(pending.redirect_uri, **params, state=pending.state, iss=self.provider.issuer)

    async def _exchange(self, code: str, verifier: str) -> tuple[str, str | None]:
        """The user's key for OpenRouter's code, and the OpenRouter user id the same answer names (if it does)."""
        async with httpx.AsyncClient(timeout=EXCHANGE_TIMEOUT_S, transport=self.transport) as http:
            minted = await signin.exchange_code(http, self.settings.base_url, code, verifier)
        return minted.key, minted.user_id


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (
        f'<!doctype html><html lang="en"><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style><h1>{html.escape(title)}</h1>{body}</html>"
    )
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def _refused(exc: SignInRefused) -> HTMLResponse:
    if not exc.message.startswith(STORE_AWAY):  # (counted as failed where it was raised)
        _metrics.signin("refused")
    return _page("This sign-in cannot go on", f"<p>{html.escape(exc.message)}</p>", status=400)


def _store_away(exc: StoreUnavailable) -> HTMLResponse:
    log.warning("%s A sign-in in a browser could not go on.", exc.message)
    return _page("This sign-in cannot go on just now", f"<p>{html.escape(STORE_AWAY)}</p>", status=503)


def _consent_page(consent: Consent, action: str, server: str, browser: str) -> HTMLResponse:
    name, host = html.escape(consent.client_name), html.escape(consent.redirect_host)
    body = (
        f"<p>An application that calls itself <strong>{name}</strong> asks to use this research server "
        f"(<code>{html.escape(server)}</code>) with the OpenRouter account you are about to sign in with: its "
        f"calls will be billed to that account. Your sign-in will be sent to <strong>{host}</strong>.</p>"
        "<p>Go on only if you started this yourself, from that application.</p>"
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="browser" value="{html.escape(browser)}">'  # and in the cookie: double submit
        '<button name="decision" value="allow">Continue to OpenRouter</button> '
        '<button name="decision" value="deny">Cancel</button></form>'
    )
    return _page("Sign in with OpenRouter", body)


def signin_routes(
    provider: OpenRouterSignIn, transport: httpx.AsyncBaseTransport | None = None
) -> list[tuple[str, list[str], Handler]]:
    """(path, methods, handler) for each route of the browser's sign-in."""
    steps = BrowserSignIn(provider, transport)
    issuer = urlsplit(provider.base)
    cookie_path = f"{issuer.path.rstrip('/')}/openrouter/"
    secure = issuer.scheme == "https"

    def flow_of(request: Request) -> tuple[str, str, str | None]:
        flow = str(request.path_params.get("flow", ""))
        if not flow or len(flow) > MAX_FLOW_CHARS:
            flow = "-"  # no flow of ours: found nowhere
        name = COOKIE_PREFIX + hash_token(flow)[:16]
        return flow, name, request.cookies.get(name)

    async def start(request: Request) -> Response:
        flow, name, cookie = flow_of(request)
        try:
            browser, then = await steps.start(flow, cookie)
        except SignInRefused as exc:
            return _refused(exc)
        except StoreUnavailable as exc:
            return _store_away(exc)
        if isinstance(then, Consent):
            action = f"{provider.base}{SIGNIN_PATH}{flow}"
            response: Response = _consent_page(then, action, provider.resource, browser)
        else:
            response = RedirectResponse(then, status_code=302, headers=HEADERS)
        response.set_cookie(
            name, browser, max_age=int(PENDING_TTL_S), path=cookie_path, secure=secure, httponly=True, samesite="lax"
        )
        return response

    async def consent(request: Request) -> Response:
        flow, _, cookie = flow_of(request)
        form = await request.form()
        if cookie is not None and form.get("browser") != cookie:  # not posted from our page in this browser
            cookie = None
        try:
            then = await steps.consent(flow, cookie, allow=form.get("decision") == "allow")
        except SignInRefused as exc:
            return _refused(exc)
        except StoreUnavailable as exc:
            return _store_away(exc)
        return RedirectResponse(then, status_code=303, headers=HEADERS)

    async def callback(request: Request) -> Response:
        flow, name, cookie = flow_of(request)
        code, error = request.query_params.get("code"), request.query_params.get("error")
        try:
            then = await steps.finish(flow, cookie, code, error)
        except SignInRefused as exc:
            return _refused(exc)
        except StoreUnavailable as exc:
            return _store_away(exc)
        response = RedirectResponse(then, status_code=302, headers=HEADERS)
        response.delete_cookie(name, path=cookie_path, secure=secure, httponly=True, samesite="lax")
        return response

    return [
        (SIGNIN_PATH + "{flow}", ["GET"], start),
        (SIGNIN_PATH + "{flow}", ["POST"], consent),
        (CALLBACK_PATH + "{flow}", ["GET"], callback),
    ]
