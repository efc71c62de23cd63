"""The team server's sign-in while its accounts database is away: the OAuth endpoints answer 503
`temporarily_unavailable` (which a client retries) rather than a bare 500, and an access token checked good in the
last OUTAGE_GRACE_S is still accepted, as in the `tokens` mode, unless its grant was ended here. And a secret
replaced rather than rotated is told once, at start-up."""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mcp.server.auth.provider import TokenError
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl
from starlette.applications import Starlette

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.jobs.store import StoreUnavailable
from openrouter_research_mcp.remote.auth import OUTAGE_GRACE_S
from openrouter_research_mcp.remote.federation import OpenRouterSignIn
from openrouter_research_mcp.remote.http import STORE_AWAY, build_http, store_away
from openrouter_research_mcp.remote.sealed import Sealer

from . import test_federation as federation
from .test_federation import ISSUER, LOCAL_REDIRECT, SECRET, World, challenge
from .test_federation_attacks import _away

lite = federation.lite  # its fixture: a sign-in provider on SQLite, against the fake OpenRouter


def oauth_app(world: World) -> Starlette:
    """The SDK's own OAuth routes over our provider, with the server's handler for a database away."""
    routes = create_auth_routes(
        world.provider,
        AnyHttpUrl(ISSUER),
        client_registration_options=ClientRegistrationOptions(enabled=True),
        revocation_options=RevocationOptions(enabled=True),
    )
    return Starlette(routes=routes, exception_handlers={StoreUnavailable: store_away})


async def test_the_oauth_endpoints_answer_503_while_the_database_is_away(
    lite: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await lite.client()
    tokens, _key = await lite.sign_in(client)
    _away(lite, monkeypatch)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=oauth_app(lite)), base_url=ISSUER) as http:
        refresh = await http.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
            },
        )
        register = await http.post("/register", json={"redirect_uris": [LOCAL_REDIRECT], "client_name": "New"})
    for answer in (refresh, register):
        assert answer.status_code == 503 and answer.headers["retry-after"] == "60"
        assert answer.json() == {"error": "temporarily_unavailable", "error_description": STORE_AWAY}
    assert tokens.refresh_token and tokens.refresh_token not in refresh.text


async def test_a_token_checked_lately_is_accepted_while_the_database_is_away(
    lite: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await lite.client()
    kept, _ = await lite.sign_in(client)
    ended, _ = await lite.sign_in(client)
    never, _ = await lite.sign_in(client)
    for tokens in (kept, ended):
        assert await lite.provider.load_access_token(tokens.access_token) is not None  # checked good now
    found = await lite.provider.load_access_token(ended.access_token)
    assert found is not None
    with monkeypatch.context() as away:
        _away(lite, away)
        assert await lite.provider.load_access_token(kept.access_token) is not None
        assert await lite.provider.load_access_token(never.access_token) is None  # never checked: refused
        with pytest.raises(StoreUnavailable):  # cannot reach the store (a 503), but this server forgets it at once
            await lite.provider.revoke_token(found)
        assert await lite.provider.load_access_token(ended.access_token) is None
        lite.clock.now += OUTAGE_GRACE_S
        assert await lite.provider.load_access_token(kept.access_token) is None  # the grace is over
    assert await lite.provider.load_access_token(kept.access_token) is not None  # back: checked again


async def test_a_replaced_secret_is_told_once_at_start_up(lite: World, caplog: pytest.LogCaptureFixture) -> None:
    client = await lite.client()
    await lite.sign_in(client)
    await lite.sign_in(client)
    with caplog.at_level(logging.WARNING, logger="openrouter_research_mcp"):
        await lite.provider.check_secret()  # the secret it was sealed with: nothing to say
        assert not caplog.records
        lite.provider.sealer = Sealer("r" * 40 + "," + SECRET)  # rotated, the old one kept after the new
        await lite.provider.check_secret()
        assert not caplog.records
        lite.provider.sealer = Sealer("r" * 40)  # replaced: the old one is gone
        await lite.provider.check_secret()
    [told] = caplog.records
    assert "3 of the 3 newest stored sign-ins and client registrations do not open" in told.getMessage()
    assert "`new,old`" in told.getMessage() and SECRET not in caplog.text


# ------------------------------------------------------------------ the real app, on a SQLite file that is locked


@pytest.fixture
def served(lite: World) -> Iterator[tuple[httpx.AsyncClient, OpenRouterSignIn]]:
    """The HTTP server's own app (`build_http`), on `lite`'s accounts file, in process; and its provider."""
    settings = load_settings(data_dir=str(lite.path.parent), mcp_auth="openrouter", mcp_key_secret=SECRET)
    server, app = build_http(settings)
    provider = server._auth_server_provider
    assert isinstance(provider, OpenRouterSignIn)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
    yield httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000"), provider
    provider.store.accounts.close()


@contextmanager
def locked(path: Path, *providers: OpenRouterSignIn) -> Iterator[None]:
    """Another process holds the SQLite file's write lock; the providers' connections wait for none of it."""
    for provider in providers:
        provider.store.accounts._conn().execute("PRAGMA busy_timeout = 0")  # no wait: busy at once, as after 30 s
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_locked_sqlite_file_is_an_outage_at_token_and_register_not_a_bare_500(
    lite: World, served: tuple[httpx.AsyncClient, OpenRouterSignIn], caplog: pytest.LogCaptureFixture
) -> None:
    http, provider = served
    client = await lite.client()
    tokens, _key = await lite.sign_in(client)
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
    }
    async with http:
        with caplog.at_level(logging.WARNING), locked(lite.path, provider):
            refused = await http.post("/token", data=refresh)
            register = await http.post("/register", json={"redirect_uris": [LOCAL_REDIRECT], "client_name": "New"})
        for answer in (refused, register):
            assert answer.status_code == 503 and answer.headers["retry-after"] == "60"
            assert answer.json() == {"error": "temporarily_unavailable", "error_description": STORE_AWAY}
        no_traceback(caplog)
        assert "database is locked" in caplog.text and "A request was answered 503" in caplog.text
        assert tokens.refresh_token and tokens.refresh_token not in caplog.text + refused.text
        again = await http.post("/token", data=refresh)  # unlocked: the refresh token was not spent
    assert again.status_code == 200 and again.json()["refresh_token"] != tokens.refresh_token


async def test_authorize_with_the_database_away_says_so_in_one_warning_without_a_traceback(
    served: tuple[httpx.AsyncClient, OpenRouterSignIn],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http, provider = served
    async with http:
        made = await http.post("/register", json={"redirect_uris": [LOCAL_REDIRECT], "client_name": "New"})
        asked = {
            "client_id": made.json()["client_id"],
            "response_type": "code",
            "redirect_uri": LOCAL_REDIRECT,
            "code_challenge": challenge(secrets.token_urlsafe(32)),
            "code_challenge_method": "S256",
            "state": "s1",
        }
        with monkeypatch.context() as away, caplog.at_level(logging.INFO):
            away.setattr(provider.store.accounts, "run", _away_run)
            answer = await http.get("/authorize", params=asked)
    assert answer.status_code == 503 and answer.json()["error_description"] == STORE_AWAY
    no_traceback(caplog)
    [said] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "cannot be reached" in said.getMessage()


async def _away_run(fn: object, *, write: bool = True) -> object:  # noqa: ARG001 - Accounts.run's signature
    """Accounts.run while PostgreSQL is away."""
    raise StoreUnavailable("The accounts database cannot be reached (connection refused).")


# --------------------------------------------------------------- unreadable SQLite, revocation, a spent refresh


async def test_a_sqlite_file_that_cannot_be_read_is_an_outage_for_tokens_and_the_secret_check(
    lite: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = await lite.client()
    kept, _ = await lite.sign_in(client)
    never, _ = await lite.sign_in(client)
    assert await lite.provider.load_access_token(kept.access_token) is not None

    async def broken(fn: object, *, write: bool = True) -> object:  # noqa: ARG001 - what sqlite3 raises
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(lite.accounts, "run", broken)
    with caplog.at_level(logging.INFO):
        assert await lite.provider.load_access_token(kept.access_token) is not None  # checked lately
        assert await lite.provider.load_access_token(never.access_token) is None
        await lite.provider.check_secret()  # start-up goes on: said, not raised
    assert "disk I/O error" in caplog.text and "were not checked against OPENROUTER_MCP_KEY_SECRET" in caplog.text
    no_traceback(caplog)


async def test_revoke_with_the_database_away_answers_503_and_works_once_it_is_back(
    lite: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 7009 §2.2.1: 503 when the server cannot revoke just now; a 200 would leave the grant alive, unsaid."""
    client = await lite.client()
    tokens, _ = await lite.sign_in(client)
    assert await lite.provider.load_access_token(tokens.access_token) is not None  # checked lately: taken, away
    form = {"token": tokens.access_token, "client_id": client.client_id, "client_secret": client.client_secret}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=oauth_app(lite)), base_url=ISSUER) as http:
        with monkeypatch.context() as away:
            _away(lite, away, after=1)  # the client is found; ending the grant is not possible
            refused = await http.post("/revoke", data=form)
        assert refused.status_code == 503 and refused.json()["error_description"] == STORE_AWAY
        assert tokens.refresh_token and await lite.provider.load_refresh_token(client, tokens.refresh_token)
        revoked = await http.post("/revoke", data=form)  # the client retries
    assert revoked.status_code == 200
    assert await lite.provider.load_refresh_token(client, tokens.refresh_token) is None


async def test_new_tokens_are_answered_even_if_the_database_fails_once_the_refresh_token_is_spent(
    lite: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spent, then a 503: the client's retry would be a replay, which ends the sign-in."""
    client = await lite.client()
    tokens, _ = await lite.sign_in(client)
    assert tokens.refresh_token
    refresh = await lite.provider.load_refresh_token(client, tokens.refresh_token)
    assert refresh is not None
    with monkeypatch.context() as away:
        _away(lite, away, after=1)  # `issue` works; what follows it does not
        newer = await lite.provider.exchange_refresh_token(client, refresh, [])
    assert await lite.provider.load_access_token(newer.access_token) is not None


async def test_a_refresh_is_refused_once_the_stored_key_no_longer_opens(
    lite: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A secret replaced: new tokens would each be refused at /mcp, and the client would refresh again and again;
    refused, its client signs the person in again."""
    client = await lite.client()
    tokens, _ = await lite.sign_in(client)
    assert tokens.refresh_token
    lite.provider.sealer = Sealer("r" * 40)
    caplog.set_level(logging.WARNING)
    loaded = await lite.provider.load_refresh_token(client, tokens.refresh_token)
    assert loaded is not None  # (so /revoke still ends it)
    refused: TokenError | None = None
    try:  # (not pytest.raises: the SDK's TokenError is a frozen dataclass, whose traceback cannot be set again)
        await lite.provider.exchange_refresh_token(client, loaded, [])
    except TokenError as exc:
        refused = exc
    assert refused is not None and refused.error == "invalid_grant"
    assert "sign in with OpenRouter again" in str(refused.error_description)
    assert "they must sign in again" in caplog.text and SECRET not in caplog.text
    lite.provider.sealer = Sealer(SECRET)  # the operator puts the old secret back: nothing was spent or ended
    again = await lite.provider.load_refresh_token(client, tokens.refresh_token)
    assert again is not None and await lite.provider.exchange_refresh_token(client, again, [])
