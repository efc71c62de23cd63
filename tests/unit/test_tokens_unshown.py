"""No bearer token, refresh token or code shows in the repr or str of the models that carry them (a log line, a
traceback's locals, an assertion's message): the SDK's own models print them whole."""

from __future__ import annotations

import secrets
from pathlib import Path

from openrouter_research_mcp.jobs.accounts import Accounts
from openrouter_research_mcp.remote.auth import TokenTable

from ..fakes.issuer import FakeIssuer
from . import test_federation as federation
from .test_federation import World, challenge
from .test_oauth import Verifier

lite = federation.lite  # its fixture: a sign-in provider on SQLite, against the fake OpenRouter


def shown(value: object) -> str:
    return repr(value) + str(value) + f"{value!r}"


async def test_a_bearer_token_of_the_tokens_mode_never_shows(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "accounts.db")
    try:
        token = accounts.add_token("alice")
        found = await TokenTable(accounts).verify_token(token)
        assert found is not None and found.token == token and found.subject == "token:alice"
        assert token not in shown(found) and "***" in repr(found)
    finally:
        accounts.close()


async def test_an_oauth_access_token_never_shows() -> None:
    import httpx

    with FakeIssuer() as issuer:
        async with httpx.AsyncClient() as http:
            verifier = Verifier(issuer, http)
            token = issuer.mint()
            found = await verifier.jwt.verify_token(token)
            await verifier.jwt.aclose()
    assert found is not None and found.token == token and token not in shown(found)


async def test_our_codes_access_and_refresh_tokens_never_show(lite: World) -> None:
    client = await lite.client()
    verifier = secrets.token_urlsafe(32)
    code = await lite.code_for(client, verifier)
    loaded = await lite.provider.load_authorization_code(client, code)
    assert loaded is not None and loaded.code_challenge == challenge(verifier) and code not in shown(loaded)
    tokens = await lite.provider.exchange_authorization_code(client, loaded)
    access = await lite.provider.load_access_token(tokens.access_token)
    assert access is not None and tokens.access_token not in shown(access)
    assert tokens.refresh_token
    refresh = await lite.provider.load_refresh_token(client, tokens.refresh_token)
    assert refresh is not None and tokens.refresh_token not in shown(refresh)
