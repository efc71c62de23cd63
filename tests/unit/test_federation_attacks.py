"""Signing in with OpenRouter, attacked (`remote/federation.py`, `remote/signin_pages.py`, `remote/redirects.py`,
`jobs/signins.py`, `openrouter/signin.py`): app schemes that open a browser on a remote site, user names in redirect
URIs, registrations and sign-ins in progress without end, a rotated secret and the registered clients, the database
away in the middle of a sign-in, OpenRouter echoing secrets in its errors, loopback ports (RFC 8252 §7.3), and
refreshes racing. Same worlds as `test_federation.py`: the provider and the browser's steps called directly."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

import httpx
import pytest
from mcp.server.auth.provider import AuthorizationParams, AuthorizeError, RegistrationError
from mcp.shared.auth import InvalidRedirectUriError, OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl
from starlette.applications import Starlette
from starlette.routing import Route

from openrouter_research_mcp.jobs.store import StoreUnavailable
from openrouter_research_mcp.remote import federation
from openrouter_research_mcp.remote.redirects import needs_consent, redirect_refusal, shown
from openrouter_research_mcp.remote.sealed import Sealer
from openrouter_research_mcp.remote.signin_pages import BrowserSignIn, Consent, SignInRefused, signin_routes

from .test_federation import ISSUER, LOCAL_REDIRECT, SECRET, World, challenge, lite, query, world

__all__ = ["lite", "world"]  # the fixtures, used by name

# ------------------------------------------------------------------------------------ redirect URIs


@pytest.mark.parametrize(
    "uri",
    [
        "microsoft-edge:https://evil.example/cb",  # Windows: opens the URL in Edge
        "x-safari-https://evil.example/cb",  # iOS: opens https://evil.example/cb in Safari
        "googlechromes://evil.example/cb",  # iOS: the same in Chrome
        "cursor://anysphere.cursor-retrieval/oauth/callback",
    ],
)
def test_federation_an_app_scheme_may_reach_a_remote_site_so_it_needs_consent(uri: str) -> None:
    assert redirect_refusal(uri) is None and needs_consent(uri)
    assert shown(uri) == uri  # the page names the whole URI (no host of its own to name)


@pytest.mark.parametrize("uri", ["https://claude.ai@evil.example/cb", "https://claude.ai:x@evil.example/cb"])
def test_federation_a_redirect_uri_with_a_user_name_is_refused(uri: str) -> None:
    assert redirect_refusal(uri) is not None and "@" in str(redirect_refusal(uri))


async def test_federation_a_browser_scheme_client_gets_the_consent_page_naming_where_it_goes(lite: World) -> None:
    client = await lite.client(redirect="microsoft-edge:https://evil.example/cb", name="Cursor")
    flow = await lite.authorize(client, secrets.token_urlsafe(32))
    _, then = await lite.browser.start(flow, None)
    assert isinstance(then, Consent) and then.redirect_host == "microsoft-edge:https://evil.example/cb"
    web = await lite.client(redirect="https://app.example:8443/cb?x=1")
    _, page = await lite.browser.start(await lite.authorize(web, secrets.token_urlsafe(32)), None)
    assert isinstance(page, Consent) and page.redirect_host == "app.example:8443"


async def test_federation_a_loopback_ip_redirect_takes_any_port_and_nothing_else_changes(lite: World) -> None:
    client = await lite.client()  # http://127.0.0.1:3030/callback
    found = await lite.provider.get_client(client.client_id)
    assert found is not None
    assert str(found.validate_redirect_uri(AnyUrl("http://127.0.0.1:51234/callback"))).endswith(":51234/callback")
    for wrong in (
        "http://127.0.0.1:51234/other",
        "http://127.0.0.1:51234/callback?x=1",
        "http://localhost:3030/callback",
        "https://127.0.0.1:3030/callback",
        "http://u@127.0.0.1:51234/callback",
    ):
        with pytest.raises(InvalidRedirectUriError):
            found.validate_redirect_uri(AnyUrl(wrong))
    verifier = secrets.token_urlsafe(32)
    params = AuthorizationParams(
        state="p",
        scopes=None,
        code_challenge=challenge(verifier),
        redirect_uri=AnyUrl("http://127.0.0.1:51234/callback"),
        redirect_uri_provided_explicitly=True,
    )
    flow = (await lite.provider.authorize(found, params)).rsplit("/", 1)[1]
    cookie, page = await lite.browser.start(flow, None)
    assert isinstance(page, str)  # loopback: no consent page
    back = await lite.browser.finish(flow, cookie, lite.consents(page), None)
    assert back.startswith("http://127.0.0.1:51234/callback?")
    loaded = await lite.provider.load_authorization_code(found, query(back)["code"])
    assert loaded is not None and str(loaded.redirect_uri) == "http://127.0.0.1:51234/callback"


# ------------------------------------------------------------------------------- growth without end


def _info(redirects: list[str], **extra: Any) -> OAuthClientInformationFull:
    return OAuthClientInformationFull(
        client_id=secrets.token_hex(8),
        redirect_uris=[AnyUrl(u) for u in redirects],
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        **extra,
    )


def _count(table: str) -> Any:
    return lambda db: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


async def test_federation_registration_is_bounded_in_size_and_in_clients_never_used(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RegistrationError) as huge:
        await world.provider.register_client(_info([LOCAL_REDIRECT], client_name="x" * 100_000))
    assert huge.value.error == "invalid_client_metadata" and "at most" in str(huge.value.error_description)
    with pytest.raises(RegistrationError) as many:
        await world.provider.register_client(_info([f"http://127.0.0.1:{p}/cb" for p in range(1000, 1100)]))
    assert many.value.error == "invalid_redirect_uri"
    monkeypatch.setattr(federation, "MAX_UNUSED_CLIENTS", 3)
    signed_in = await world.client()
    await world.sign_in(signed_in)  # has a grant: kept
    waiting = await world.client()
    await world.authorize(waiting, secrets.token_urlsafe(32))  # a sign-in in progress: kept
    unused = []
    for _ in range(6):
        world.clock.now += 1
        unused.append(await world.client())
    assert await world.accounts.run(_count("signin_clients"), write=False) == 2 + 3
    assert await world.provider.get_client(signed_in.client_id) is not None
    assert await world.provider.get_client(waiting.client_id) is not None
    kept = [c for c in unused if await world.provider.get_client(c.client_id) is not None]
    assert kept == unused[-3:]  # the newest unused ones


async def test_federation_sign_ins_in_progress_are_bounded_in_size_and_number(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await world.client()
    with pytest.raises(AuthorizeError) as huge:
        await world.authorize(client, secrets.token_urlsafe(32), state="s" * 100_000)
    assert huge.value.error == "invalid_request"
    monkeypatch.setattr(federation, "MAX_PENDING", 2)
    await world.authorize(client, secrets.token_urlsafe(32))
    await world.authorize(client, secrets.token_urlsafe(32))
    with pytest.raises(AuthorizeError) as full:
        await world.authorize(client, secrets.token_urlsafe(32))
    assert full.value.error == "temporarily_unavailable" and "try again" in str(full.value.error_description)
    world.clock.now += federation.PENDING_TTL_S + 1  # those expire, and room is made
    await world.authorize(client, secrets.token_urlsafe(32))
    assert await world.accounts.run(_count("signin_pending"), write=False) == 1


# ------------------------------------------------------------------------------------ secret rotation


async def test_federation_a_rotated_secret_reseals_the_registered_clients_too(lite: World) -> None:
    client = await lite.client()
    lite.provider.sealer = Sealer(f"{'n' * 40},{SECRET}")
    assert await lite.provider.get_client(client.client_id) is not None  # opened under the old one: resealed
    lite.provider.sealer = Sealer("n" * 40)  # the old secret is gone now
    found = await lite.provider.get_client(client.client_id)
    assert found is not None and found.client_secret == client.client_secret


# ---------------------------------------------------------------------------------- the database away


def _away(world: World, monkeypatch: pytest.MonkeyPatch, after: int = 0) -> None:
    """The accounts database is unreachable from its `after`+1-th use on."""
    real, calls = world.accounts.run, [0]

    async def run(fn: Any, *, write: bool = True) -> Any:
        calls[0] += 1
        if calls[0] > after:
            raise StoreUnavailable("The accounts database cannot be reached (connection refused).")
        return await real(fn, write=write)

    monkeypatch.setattr(world.accounts, "run", run)


async def test_federation_the_database_away_mid_sign_in_gives_pages_for_people(
    lite: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = await lite.client()
    flow = await lite.authorize(client, secrets.token_urlsafe(32))
    app = Starlette(routes=[Route(p, h, methods=m) for p, m, h in signin_routes(lite.provider)])
    with monkeypatch.context() as away:
        _away(lite, away)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
            page = await http.get(f"/openrouter/signin/{flow}")
        assert page.status_code == 503 and "cannot reach its database" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        with pytest.raises(AuthorizeError) as started:
            await lite.authorize(client, secrets.token_urlsafe(32))
        assert started.value.error == "temporarily_unavailable"

    cookie, openrouter = await lite.browser.start(flow, None)  # back; then away once OpenRouter made the key
    assert isinstance(openrouter, str)
    code = lite.consents(openrouter)
    minted = set(lite.fake.signin.keys)
    _away(lite, monkeypatch, after=1)  # `take` works; keeping the grant does not
    with caplog.at_level(logging.INFO), pytest.raises(SignInRefused) as lost:
        await lite.browser.finish(flow, cookie, code, None)
    [key] = set(lite.fake.signin.keys) - minted
    assert "cannot reach its database" in lost.value.message and lite.provider.key_label in lost.value.message
    assert "delete it at" in lost.value.message and key not in lost.value.message and key not in caplog.text
    assert code not in caplog.text and code not in lost.value.message


# --------------------------------------------------------------------------- OpenRouter echoing secrets


async def test_federation_openrouter_echoing_the_code_verifier_or_a_key_in_an_error_leaks_none_of_them(
    lite: World,
) -> None:
    seen: dict[str, str] = {}

    def openrouter(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.update(body)
        padding = "x" * (200 - 12)  # the code straddles the 200 characters a message is cut to
        message = f"{padding} {body['code']} {body['code_verifier']} sk-or-v1-{'a' * 64} orm_at_{'b' * 40}"
        return httpx.Response(403, json={"error": {"message": message}})

    browser = BrowserSignIn(lite.provider, httpx.MockTransport(openrouter))
    flow = await lite.authorize(await lite.client(), secrets.token_urlsafe(32))
    cookie, _ = await browser.start(flow, None)
    code = "code-" + secrets.token_urlsafe(24)
    back = await browser.finish(flow, cookie, code, None)
    told = query(back)["error_description"]
    assert query(back)["error"] == "access_denied" and "sign in again" in told
    for secret in (code, seen["code_verifier"], "sk-or-v1-aaaaaaaa", "orm_at_bbbbbbbb"):
        assert secret[:10] not in told and secret[:10] not in back


# ------------------------------------------------------------------------------------------- races


async def test_federation_two_refreshes_racing_with_one_refresh_token_end_the_grant(world: World) -> None:
    client = await world.client()
    tokens, _ = await world.sign_in(client)
    loaded = await world.refresh_token(client, tokens)
    results = await asyncio.gather(
        world.provider.exchange_refresh_token(client, loaded, []),
        world.provider.exchange_refresh_token(client, loaded, []),
        return_exceptions=True,
    )
    assert sorted("OAuthToken" if isinstance(r, OAuthToken) else type(r).__name__ for r in results) == [
        "OAuthToken",
        "TokenError",
    ]
    [won] = [r for r in results if isinstance(r, OAuthToken)]
    assert await world.provider.load_access_token(won.access_token) is None
    assert won.refresh_token and await world.provider.load_refresh_token(client, won.refresh_token) is None


async def test_federation_a_revocation_racing_requests_leaves_no_request_after_it_with_the_key(world: World) -> None:
    tokens, _ = await world.sign_in()
    found = await world.provider.load_access_token(tokens.access_token)
    assert found is not None
    loads = [world.provider.load_access_token(tokens.access_token) for _ in range(8)]
    await asyncio.gather(world.provider.revoke_token(found), *loads)
    assert await world.provider.load_access_token(tokens.access_token) is None
    assert await world.accounts.run(_count("signin_grants"), write=False) == 0


# ------------------------------------------------------------------------------------ secrets in a repr


async def test_federation_the_tokens_answered_and_a_client_secret_never_show_in_a_repr(lite: World) -> None:
    """What /token answers, and a registered client as we load it, may end up in a log line or a traceback's
    locals: the SDK's own models print their tokens and the client's secret whole."""
    client = await lite.client()
    tokens, _ = await lite.sign_in(client)
    assert tokens.refresh_token and client.client_secret
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret not in repr(tokens) + str(tokens) and secret in tokens.model_dump_json()  # still sent
    loaded = await lite.provider.get_client(client.client_id)
    assert loaded is not None and loaded.client_secret == client.client_secret
    assert client.client_secret not in repr(loaded) + str(loaded) + f"{[loaded]}" and "***" in repr(loaded)
