"""The team server's sign-in while its accounts database is away: the OAuth endpoints answer 503
`temporarily_unavailable` (which a client retries) rather than a bare 500, and an access token checked good in the
last OUTAGE_GRACE_S is still accepted, as in the `tokens` mode, unless its grant was ended here. And a secret
replaced rather than rotated is told once, at start-up."""

from __future__ import annotations

import logging

import httpx
import pytest
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl
from starlette.applications import Starlette

from openrouter_research_mcp.jobs.store import StoreUnavailable
from openrouter_research_mcp.remote.auth import OUTAGE_GRACE_S
from openrouter_research_mcp.remote.http import STORE_AWAY, store_away
from openrouter_research_mcp.remote.sealed import Sealer

from . import test_federation as federation
from .test_federation import ISSUER, LOCAL_REDIRECT, SECRET, World
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
        await lite.provider.revoke_token(found)  # cannot reach the store, but this server forgets it at once
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
