"""Signing users in with their own OpenRouter account (`remote/federation.py`, `remote/signin_pages.py`,
`jobs/signins.py`, `remote/sealed.py`), without our HTTP server: the provider's methods and the browser's steps
called directly, on SQLite and on a real PostgreSQL, against the fake OpenRouter's sign-in on loopback, on a clock
the tests move. Codes, tokens and sign-ins expire on it; replays end grants; a sign-in is bound to one browser; the
key is sealed at rest, and never shown."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from mcp.server.auth.provider import AuthorizationParams, AuthorizeError, RegistrationError
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.errors import AuthError, ConfigError, CreditsError, ModerationError
from openrouter_research_mcp.jobs.accounts import Accounts, Limits
from openrouter_research_mcp.remote.federation import (
    ACCESS_TTL_S,
    CODE_TTL_S,
    PENDING_TTL_S,
    REFRESH_TTL_S,
    OpenRouterSignIn,
    SignedInRefresh,
    SignedInToken,
)
from openrouter_research_mcp.remote.http import signing_in
from openrouter_research_mcp.remote.redirects import needs_consent, redirect_refusal
from openrouter_research_mcp.remote.sealed import Sealer
from openrouter_research_mcp.remote.signin_pages import OTHER_BROWSER, UNKNOWN, BrowserSignIn, Consent, SignInRefused

from ..fakes.openrouter import FakeOpenRouter
from ..support import eventually

SECRET = "a passphrase that is long enough to be a secret surely"
ISSUER = "http://127.0.0.1:8000"
RESOURCE = f"{ISSUER}/mcp"
LOCAL_REDIRECT = "http://127.0.0.1:3030/callback"


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A provider and the browser's steps on one accounts database, against the fake OpenRouter."""

    def __init__(self, fake: FakeOpenRouter, path: Path, url: str | None, clock: Clock) -> None:
        self.fake, self.path, self.url, self.clock = fake, path, url, clock
        self.settings = load_settings(base_url=fake.base_url, data_dir=str(path.parent), mcp_auth="openrouter")
        self.accounts = Accounts(path, clock=clock, url=url)
        self.provider = OpenRouterSignIn(self.settings, self.accounts, Sealer(SECRET), issuer=ISSUER, resource=RESOURCE)
        self.browser = BrowserSignIn(self.provider)

    def replica(self) -> World:
        """Another server on the same database."""
        return World(self.fake, self.path, self.url, self.clock)

    async def client(self, redirect: str = LOCAL_REDIRECT, name: str = "Test client") -> OAuthClientInformationFull:
        info = OAuthClientInformationFull(
            client_id=secrets.token_hex(8),
            client_secret=secrets.token_hex(16),
            client_name=name,
            redirect_uris=[AnyUrl(redirect)],
            token_endpoint_auth_method="client_secret_post",
            grant_types=["authorization_code", "refresh_token"],
        )
        await self.provider.register_client(info)
        return info

    async def authorize(
        self, client: OAuthClientInformationFull, verifier: str, *, state: str = "st8", resource: str | None = RESOURCE
    ) -> str:
        """Our /authorize: the flow id of the sign-in in progress."""
        assert client.redirect_uris
        params = AuthorizationParams(
            state=state,
            scopes=None,
            code_challenge=challenge(verifier),
            redirect_uri=client.redirect_uris[0],
            redirect_uri_provided_explicitly=True,
            resource=resource,
        )
        url = await self.provider.authorize(client, params)
        assert url.startswith(f"{ISSUER}/openrouter/signin/")
        return url.rsplit("/", 1)[1]

    def consents(self, openrouter_page: str) -> str:
        """What OpenRouter's page hands the callback when the user consents: a code for the page's challenge."""
        asked = query(openrouter_page)
        assert asked["code_challenge_method"] == "S256"
        return self.fake.signin.issue(asked["code_challenge"], label=asked.get("key_label"))

    async def code_for(self, client: OAuthClientInformationFull, verifier: str, state: str = "st8") -> str:
        """The whole browser part of a sign-in: our code, from the client's redirect URI."""
        flow = await self.authorize(client, verifier, state=state)
        cookie, page = await self.browser.start(flow, None)
        assert isinstance(page, str)
        back = await self.browser.finish(flow, cookie, self.consents(page), None)
        assert back.startswith(LOCAL_REDIRECT) and query(back)["state"] == state and query(back)["iss"] == ISSUER
        return query(back)["code"]

    async def tokens(self, client: OAuthClientInformationFull, code: str, verifier: str) -> OAuthToken:
        """/token for `code`, as the SDK's handler does it (PKCE checked, then the exchange)."""
        loaded = await self.provider.load_authorization_code(client, code)
        assert loaded is not None and loaded.code_challenge == challenge(verifier)
        return await self.provider.exchange_authorization_code(client, loaded)

    async def refresh_token(self, client: OAuthClientInformationFull, tokens: OAuthToken) -> SignedInRefresh:
        """`tokens`' refresh token, loaded as the SDK's /token handler loads it."""
        assert tokens.refresh_token
        loaded = await self.provider.load_refresh_token(client, tokens.refresh_token)
        assert loaded is not None
        return loaded

    async def sign_in(self, client: OAuthClientInformationFull | None = None) -> tuple[OAuthToken, str]:
        """A full sign-in: our tokens, and the OpenRouter key the fake minted for it."""
        client = client or await self.client()
        verifier = secrets.token_urlsafe(32)
        minted = set(self.fake.signin.keys)
        tokens = await self.tokens(client, await self.code_for(client, verifier), verifier)
        [key] = set(self.fake.signin.keys) - minted
        return tokens, key

    def stored(self) -> bytes:
        if self.url is None:
            wal = Path(f"{self.path}-wal")
            return self.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        import psycopg

        with psycopg.connect(self.url) as conn:
            rows = [conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("signin_grants", "signin_pending")]
        return repr(rows).encode()


@pytest.fixture(params=["sqlite", "postgres"])
async def world(
    request: pytest.FixtureRequest, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> AsyncIterator[World]:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    made = World(fake_openrouter, tmp_path / "data" / "accounts.db", url, Clock())
    yield made
    made.accounts.close()


@pytest.fixture
async def lite(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[World]:
    made = World(fake_openrouter, tmp_path / "data" / "accounts.db", None, Clock())
    yield made
    made.accounts.close()


# ------------------------------------------------------------------------------------------------- sealing


def test_sealer_takes_a_fernet_key_or_a_long_passphrase_and_binds_each_value_to_its_row() -> None:
    for secret in (Fernet.generate_key().decode(), SECRET):
        sealer = Sealer(secret)
        sealed = sealer.seal("grant-1", "sk-or-v1-abc")
        assert "sk-or-v1-abc" not in sealed and sealer.open("grant-1", sealed) == "sk-or-v1-abc"
        assert sealer.open("grant-2", sealed) is None  # moved to another row: opens to nothing
        assert sealer.open("grant-1", sealed[:-4] + "AAAA") is None  # tampered
    for bad in ("", " , ", "short"):
        with pytest.raises(ConfigError, match="OPENROUTER_MCP_KEY_SECRET"):
            Sealer(bad)


def test_sealer_rotates_new_secret_first_old_ones_still_open() -> None:
    old, new = Sealer(SECRET), Sealer(f"{'n' * 40},{SECRET}")
    sealed = old.seal("g", "sk-or-v1-key")
    assert new.open("g", sealed) == "sk-or-v1-key" and Sealer("n" * 40).open("g", sealed) is None
    resealed = new.reseal(sealed)
    assert resealed is not None and Sealer("n" * 40).open("g", resealed) == "sk-or-v1-key"
    assert new.reseal(resealed) is None  # sealed under the first already: nothing to do


def test_signing_in_needs_the_secret_and_https_beyond_loopback(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path), mcp_auth="openrouter")
    with pytest.raises(ConfigError, match="needs OPENROUTER_MCP_KEY_SECRET"):
        signing_in(settings, RESOURCE)
    settings = load_settings(data_dir=str(tmp_path), mcp_auth="openrouter", mcp_key_secret=SECRET)
    with pytest.raises(ConfigError, match="needs https"):
        signing_in(settings, "http://research.example.com/mcp")
    provider, auth = signing_in(settings, "https://research.example.com/mcp")
    assert str(auth.issuer_url) == provider.issuer == "https://research.example.com"
    assert auth.client_registration_options and auth.client_registration_options.enabled
    assert auth.revocation_options and auth.revocation_options.enabled and auth.validate_token_resource
    provider.store.accounts.close()


# ------------------------------------------------------------------------------------- the whole sign-in


async def test_federation_a_sign_in_gives_tokens_that_carry_the_users_own_key(world: World) -> None:
    tokens, key = await world.sign_in()
    assert tokens.refresh_token and tokens.expires_in == ACCESS_TTL_S
    found = await world.provider.load_access_token(tokens.access_token)
    assert isinstance(found, SignedInToken) and found.openrouter_key.get_secret_value() == key
    assert found.subject == f"openrouter:{world.fake.signin.keys[key].user_id}" and found.resource == RESOURCE
    assert key not in repr(found) and key not in found.model_dump_json() and key not in str(found.model_dump())
    assert world.fake.signin.keys[key].label == f"openrouter-research-mcp ({urlsplit(ISSUER).netloc})"
    stored = world.stored()
    assert key.encode() not in stored and tokens.access_token.encode() not in stored
    assert tokens.refresh_token.encode() not in stored


async def test_federation_a_replica_sees_the_sign_in_and_a_revocation_at_once(world: World) -> None:
    tokens, _ = await world.sign_in()
    other = world.replica()
    try:
        found = await other.provider.load_access_token(tokens.access_token)
        assert found is not None
        await world.provider.revoke_token(found)
        assert await other.provider.load_access_token(tokens.access_token) is None
        assert await world.provider.load_access_token(tokens.access_token) is None
        assert await world.accounts.run(_grants, write=False) == []  # the stored key went with the grant
    finally:
        other.accounts.close()


def _grants(db: Any) -> list[Any]:
    return list(db.execute("SELECT id FROM signin_grants").fetchall())


async def test_federation_refresh_rotates_both_tokens_and_a_reused_refresh_token_ends_the_grant(world: World) -> None:
    client = await world.client()
    first, _ = await world.sign_in(client)
    old = await world.refresh_token(client, first)
    second = await world.provider.exchange_refresh_token(client, old, [])
    assert second.access_token != first.access_token and second.refresh_token != first.refresh_token
    assert await world.provider.load_access_token(first.access_token) is None  # rotated: the old one ends
    assert await world.provider.load_access_token(second.access_token) is not None
    assert first.refresh_token and await world.provider.load_refresh_token(client, first.refresh_token) is None
    assert await world.provider.load_access_token(second.access_token) is None  # ...and the grant ended


async def test_federation_a_refresh_token_of_another_client_is_none_of_its_own(world: World) -> None:
    first, _ = await world.sign_in()
    assert first.refresh_token
    assert await world.provider.load_refresh_token(await world.client(), first.refresh_token) is None


async def test_federation_our_code_works_once_and_a_replay_ends_what_it_gave(world: World) -> None:
    client = await world.client()
    verifier = secrets.token_urlsafe(32)
    code = await world.code_for(client, verifier)
    tokens = await world.tokens(client, code, verifier)
    assert await world.provider.load_authorization_code(client, code) is None
    assert await world.provider.load_access_token(tokens.access_token) is None
    other = await world.client()
    assert await world.provider.load_authorization_code(other, await world.code_for(client, verifier)) is None


async def test_federation_two_token_requests_racing_with_one_code_get_one_answer(world: World) -> None:
    client = await world.client()
    verifier = secrets.token_urlsafe(32)
    loaded = await world.provider.load_authorization_code(client, await world.code_for(client, verifier))
    assert loaded is not None
    results = await asyncio.gather(
        world.provider.exchange_authorization_code(client, loaded),
        world.provider.exchange_authorization_code(client, loaded),
        return_exceptions=True,
    )
    assert sorted("OAuthToken" if isinstance(r, OAuthToken) else type(r).__name__ for r in results) == [
        "OAuthToken",
        "TokenError",
    ]
    [won] = [r for r in results if isinstance(r, OAuthToken)]
    assert await world.provider.load_access_token(won.access_token) is None  # the replay ended the grant


async def test_federation_everything_expires_on_the_clock(world: World) -> None:
    client = await world.client()
    verifier = secrets.token_urlsafe(32)
    flow = await world.authorize(client, verifier)
    world.clock.now += PENDING_TTL_S + 1
    with pytest.raises(SignInRefused, match="expired"):
        await world.browser.start(flow, None)
    code = await world.code_for(client, verifier)
    world.clock.now += CODE_TTL_S + 1
    assert await world.provider.load_authorization_code(client, code) is None
    tokens, _ = await world.sign_in(client)
    assert tokens.refresh_token
    world.clock.now += ACCESS_TTL_S + 1
    assert await world.provider.load_access_token(tokens.access_token) is None
    assert await world.provider.load_refresh_token(client, tokens.refresh_token) is not None
    world.clock.now += REFRESH_TTL_S
    assert await world.provider.load_refresh_token(client, tokens.refresh_token) is None


# ------------------------------------------------------------------------------------- what is refused


async def test_federation_authorize_refuses_another_resource_and_a_challenge_that_is_no_s256(world: World) -> None:
    client = await world.client()
    with pytest.raises(AuthorizeError) as wrong:
        await world.authorize(client, "v" * 43, resource="https://elsewhere.example/mcp")
    assert wrong.value.error == "invalid_target"
    plain = AuthorizationParams(
        state=None,
        scopes=None,
        code_challenge="too-short-to-be-s256",
        redirect_uri=AnyUrl(LOCAL_REDIRECT),
        redirect_uri_provided_explicitly=True,
    )
    with pytest.raises(AuthorizeError) as short:
        await world.provider.authorize(client, plain)
    assert short.value.error == "invalid_request"


@pytest.mark.parametrize(
    ("uri", "refused"),
    [
        ("http://127.0.0.1:3030/cb", False),
        ("http://localhost/cb", False),
        ("https://claude.ai/api/mcp/auth_callback", False),
        ("cursor://anysphere.cursor-retrieval/oauth/callback", False),
        ("http://evil.example/cb", True),
        ("javascript:alert(1)", True),
        ("https://app.example/cb#frag", True),
        ("data:text/html,hi", True),
    ],
)
def test_redirects_what_may_be_registered(uri: str, refused: bool) -> None:
    assert (redirect_refusal(uri) is not None) == refused


def test_redirects_all_but_this_machine_need_consent() -> None:
    assert needs_consent("https://claude.ai/api/mcp/auth_callback")
    assert needs_consent("cursor://x/cb")  # an app's scheme goes to whichever program claims it (a browser, too)
    assert not needs_consent("http://127.0.0.1:9/cb") and not needs_consent("https://localhost:8443/cb")


async def test_federation_registration_refuses_a_redirect_that_could_leak_a_code(lite: World) -> None:
    with pytest.raises(RegistrationError) as caught:
        await lite.client(redirect="http://evil.example/cb")
    assert caught.value.error == "invalid_redirect_uri"


async def test_federation_a_client_is_kept_sealed_and_read_back_whole(lite: World) -> None:
    client = await lite.client()
    found = await lite.provider.get_client(client.client_id)
    assert found is not None and found.client_secret == client.client_secret
    assert found.redirect_uris == client.redirect_uris and await lite.provider.get_client("nobody") is None
    assert client.client_secret and client.client_secret.encode() not in lite.stored()


async def test_federation_a_sign_in_is_bound_to_the_browser_that_opened_it(world: World) -> None:
    client = await world.client()
    flow = await world.authorize(client, secrets.token_urlsafe(32))
    cookie, page = await world.browser.start(flow, None)
    assert isinstance(page, str)
    assert (await world.browser.start(flow, cookie))[0] == cookie  # a reload in the same browser goes on
    with pytest.raises(SignInRefused) as elsewhere:
        await world.browser.start(flow, None)
    assert elsewhere.value.message == OTHER_BROWSER
    code = world.consents(page)
    with pytest.raises(SignInRefused) as stolen:  # the callback in another browser: no cookie, or another one
        await world.browser.finish(flow, "another-browser", code, None)
    assert stolen.value.message == OTHER_BROWSER
    assert (await world.browser.finish(flow, cookie, code, None)).startswith(LOCAL_REDIRECT)
    with pytest.raises(SignInRefused) as again:  # OpenRouter's callback replayed
        await world.browser.finish(flow, cookie, code, None)
    assert again.value.message == UNKNOWN


async def test_federation_a_tampered_flow_is_unknown(lite: World) -> None:
    flow = await lite.authorize(await lite.client(), secrets.token_urlsafe(32))
    for tampered in (flow[:-1] + ("A" if flow[-1] != "A" else "B"), "", "x" * 5000):
        with pytest.raises(SignInRefused) as caught:
            await lite.browser.start(tampered, None)
        assert caught.value.message == UNKNOWN


async def test_federation_an_openrouter_code_replayed_into_another_sign_in_is_refused_upstream(world: World) -> None:
    client = await world.client()
    flow_a = await world.authorize(client, secrets.token_urlsafe(32))
    cookie_a, page_a = await world.browser.start(flow_a, None)
    assert isinstance(page_a, str)
    code = world.consents(page_a)
    await world.browser.finish(flow_a, cookie_a, code, None)
    flow_b = await world.authorize(client, secrets.token_urlsafe(32))
    cookie_b, _ = await world.browser.start(flow_b, None)
    back = await world.browser.finish(flow_b, cookie_b, code, None)
    assert query(back)["error"] == "access_denied" and "code" not in query(back)
    assert "sign in again" in query(back)["error_description"] and code not in back
    fresh = world.consents(page_a)  # a new code, for A's challenge: B's verifier is not the one it asks for
    flow_c = await world.authorize(client, secrets.token_urlsafe(32))
    cookie_c, _ = await world.browser.start(flow_c, None)
    assert query(await world.browser.finish(flow_c, cookie_c, fresh, None))["error"] == "access_denied"


async def test_federation_a_consent_comes_first_for_a_remote_https_client(lite: World) -> None:
    client = await lite.client(redirect="https://app.example/oauth/callback", name="<b>Example</b> app")
    flow = await lite.authorize(client, secrets.token_urlsafe(32))
    cookie, then = await lite.browser.start(flow, None)
    assert isinstance(then, Consent) and then.client_name == "<b>Example</b> app"
    assert then.redirect_host == "app.example"
    with pytest.raises(SignInRefused):  # posted from another site: the browser's cookie is not sent
        await lite.browser.consent(flow, None, allow=True)
    page = await lite.browser.consent(flow, cookie, allow=True)
    assert page.startswith(lite.fake.base_url.removesuffix("/api/v1") + "/auth?")
    denied = await lite.browser.consent(flow, cookie, allow=False)
    assert denied.startswith("https://app.example/oauth/callback?") and query(denied)["error"] == "access_denied"
    with pytest.raises(SignInRefused):
        await lite.browser.consent(flow, cookie, allow=True)


async def test_federation_the_user_id_names_the_person_and_without_one_each_sign_in_is_its_own(lite: World) -> None:
    answers = iter([{"key": "sk-or-v1-one", "user_id": "user_42"}, {"key": "sk-or-v1-two", "user_id": "user_42"}])
    answers = iter([*answers, {"key": "sk-or-v1-three"}, {"key": "sk-or-v1-four", "user_id": "bad id!"}])

    def openrouter(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/auth/keys") and json.loads(request.content)["code_challenge_method"]
        return httpx.Response(200, json=next(answers))

    browser = BrowserSignIn(lite.provider, httpx.MockTransport(openrouter))
    principals = []
    for _ in range(4):
        client = await lite.client()
        flow = await lite.authorize(client, secrets.token_urlsafe(32))
        cookie, _ = await browser.start(flow, None)
        code = query(await browser.finish(flow, cookie, "a-code", None))["code"]
        loaded = await lite.provider.load_authorization_code(client, code)
        assert loaded is not None
        token = await lite.provider.exchange_authorization_code(client, loaded)
        found = await lite.provider.load_access_token(token.access_token)
        assert found is not None and found.subject
        principals.append(found.subject)
    assert principals[0] == principals[1] == "openrouter:user_42"
    assert principals[2].startswith("openrouter:signin-") and principals[3].startswith("openrouter:signin-")
    assert principals[2] != principals[3]


async def test_federation_a_denied_or_abandoned_sign_in_goes_back_with_access_denied(lite: World) -> None:
    flow = await lite.authorize(await lite.client(), secrets.token_urlsafe(32), state="s1")
    cookie, _ = await lite.browser.start(flow, None)
    back = await lite.browser.finish(flow, cookie, None, "access_denied")
    assert query(back) == {
        "error": "access_denied",
        "error_description": "The sign-in on OpenRouter ended.",
        "state": "s1",
        "iss": ISSUER,
    }


async def test_federation_a_secret_replaced_without_the_old_one_means_signing_in_again(lite: World) -> None:
    tokens, _ = await lite.sign_in()
    lite.provider.sealer = Sealer("another secret entirely and long enough to count")
    assert await lite.provider.load_access_token(tokens.access_token) is None


async def test_federation_a_rotated_secret_reseals_the_key_at_the_next_refresh(lite: World) -> None:
    client = await lite.client()
    tokens, key = await lite.sign_in(client)
    assert tokens.refresh_token
    lite.provider.sealer = Sealer(f"{'n' * 40},{SECRET}")
    refresh = await lite.provider.load_refresh_token(client, tokens.refresh_token)
    assert refresh is not None
    newer = await lite.provider.exchange_refresh_token(client, refresh, [])
    lite.provider.sealer = Sealer("n" * 40)  # the old secret is gone now
    found = await lite.provider.load_access_token(newer.access_token)
    assert found is not None and found.openrouter_key.get_secret_value() == key


async def test_federation_quotas_set_for_the_person_travel_with_their_token(world: World) -> None:
    tokens, key = await world.sign_in()
    principal = f"openrouter:{world.fake.signin.keys[key].user_id}"
    world.accounts.set_quota(principal, Limits(calls_per_minute=7, jobs=1))
    found = await world.provider.load_access_token(tokens.access_token)
    assert found is not None and found.claims is not None
    assert found.claims["calls_per_minute"] == 7 and found.claims["jobs"] == 1


async def test_federation_the_stored_key_is_sealed_in_the_sqlite_file(lite: World) -> None:
    _, key = await lite.sign_in()
    rows = sqlite3.connect(lite.path).execute("SELECT sealed_key FROM signin_grants").fetchall()
    assert len(rows) == 1 and key not in rows[0][0] and key.encode() not in lite.stored()


# ---------------------------------------------------------------------------------- a key refused upstream


async def test_federation_a_key_openrouter_refuses_ends_that_sign_in_only(lite: World) -> None:
    alice, _ = await lite.sign_in()
    bob, _ = await lite.sign_in()
    found = await lite.provider.load_access_token(alice.access_token)
    assert found is not None
    told: Callable[..., str | None] = lite.provider.key_refused(found)
    assert told(CreditsError("OpenRouter says the account lacks credits (402: x).", status=402)) is not None
    limit = told(ModerationError("The request was blocked by moderation (403: Key limit exceeded).", status=403))
    assert limit is not None and "raise that key's limit" in limit
    assert told(ModerationError("The request was blocked by moderation (403: flagged).", status=403)) is None
    assert await lite.provider.load_access_token(alice.access_token) is not None  # 402 and 403: the grant stays
    gone = told(AuthError("OpenRouter rejected the API key (401: User not found.).", status=401))
    assert gone is not None and "sign in with OpenRouter again" in gone

    async def ended() -> bool:  # the grant is ended in the background: wait for that state, not for a time
        return await lite.provider.load_access_token(alice.access_token) is None

    await eventually(ended, what="the refused key's grant ended")
    assert await lite.provider.load_access_token(bob.access_token) is not None
