"""Each user brings their own OpenRouter account (`OPENROUTER_MCP_AUTH=openrouter`): the real server over HTTP on
loopback is the authorization server its clients discover, and signs each user in with the fake OpenRouter's PKCE
flow. The SDK's own OAuth client (`OAuthClientProvider`) registers, signs in and calls tools; its "browser" is
`Browser` below, which follows the redirects (keeping cookies) through our /authorize, our sign-in page, the fake's
consent page and our callback, and stops at the client's redirect URI. Whose key paid is read from the fake's log.
No test waits for time to pass: expiry is tested in `tests/unit/test_federation.py` on a clock the test moves."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter
from ..support import resource_text, result_text
from .test_http_e2e import HttpServer, env_for, http_server

SECRET = "an operator secret for the tests that is long enough"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class Memory:
    """The SDK's `TokenStorage`, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """Plays the user's browser: follows each redirect, keeping cookies, and stops at `redirect_uri`."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.http = httpx.AsyncClient()
        self.landed: list[str] = []  # every arrival at the client's redirect URI
        self.pages: list[httpx.Response] = []  # every page that was no redirect

    async def follow(self, url: str) -> str | None:
        """Where the redirects from `url` end at the client (None: on a page of their own, kept in `pages`)."""
        for _ in range(10):
            if url.startswith(self.redirect_uri):
                self.landed.append(url)
                return url
            response = await self.http.get(url)
            if response.status_code not in (302, 303):
                self.pages.append(response)
                return None
            url = urljoin(url, response.headers["location"])
        raise AssertionError("more than 10 redirects")

    async def open(self, url: str) -> None:  # the SDK client's redirect_handler
        assert await self.follow(url) is not None, self.pages[-1].text

    async def callback(self) -> AuthorizationCodeResult:  # ... and its callback_handler
        arrived = query(self.landed[-1])
        return AuthorizationCodeResult(code=arrived.get("code", ""), state=arrived.get("state"), iss=arrived.get("iss"))


class User:
    """One person with an MCP client that signs in through the server, and the browser it opens."""

    def __init__(self, server: HttpServer, browser: Browser) -> None:
        self.server, self.browser = server, browser
        self.redirect_uri = browser.redirect_uri
        self.storage = Memory()

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        metadata = OAuthClientMetadata(
            client_name="e2e client",
            redirect_uris=[AnyUrl(self.redirect_uri)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        )
        oauth = OAuthClientProvider(self.server.url, metadata, self.storage, self.browser.open, self.browser.callback)
        async with create_mcp_http_client(auth=oauth) as http:
            async with Client(streamable_http_client(self.server.url, http_client=http)) as client:
                yield client

    @property
    def access_token(self) -> str:
        assert self.storage.tokens is not None
        return self.storage.tokens.access_token

    def form(self, **fields: str) -> dict[str, str]:
        """A token or revocation request's form, with this client's credentials."""
        info = self.storage.client_info
        assert info is not None and info.client_secret
        return {"client_id": info.client_id, "client_secret": info.client_secret, **fields}


class People:
    """Makes users and browsers for a test, and closes their browsers after it."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.browsers: list[Browser] = []

    def browser(self, redirect_uri: str) -> Browser:
        self.browsers.append(Browser(redirect_uri))
        return self.browsers[-1]

    def user(self, port: int) -> User:
        return User(self.server, self.browser(f"http://localhost:{port}/callback"))


@pytest.fixture
async def people(signin_server: HttpServer) -> AsyncIterator[People]:
    made = People(signin_server)
    yield made
    for browser in made.browsers:
        await browser.http.aclose()


@pytest.fixture
def signin_server(
    request: pytest.FixtureRequest, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> Iterator[HttpServer]:
    """The server signing users in; with the operator's key too, unless the test's parameter is "keyless"."""
    env = env_for(fake_openrouter, tmp_path, OPENROUTER_MCP_AUTH="openrouter", OPENROUTER_MCP_KEY_SECRET=SECRET)
    if getattr(request, "param", None) == "keyless":
        del env["OPENROUTER_API_KEY"]
    with http_server(env, tmp_path) as server:
        yield server


def stored(tmp_path: Path) -> bytes:
    db = tmp_path / "data" / "accounts.db"
    wal = Path(f"{db}-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def mcp_status(server: HttpServer, token: str) -> int:
    async with httpx.AsyncClient() as http:
        answer = await http.post(server.url, json=PING, headers={**HEADERS, "Authorization": f"Bearer {token}"})
    return answer.status_code


async def test_federation_e2e_a_user_signs_in_is_billed_to_their_own_key_refreshes_and_revokes(
    signin_server: HttpServer, people: People, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    server, alice = signin_server, people.user(3031)
    async with alice.client() as client:
        asked = await client.call_tool("ask", {"prompt": "What causes tides?"})
        usage = await client.read_resource("openrouter://usage")
    assert not asked.is_error, result_text(asked)
    [key] = fake_openrouter.signin.keys  # the one key the sign-in minted
    assert fake_openrouter.signin.keys[key].label and fake_openrouter.signin.exchanges == 1
    assert fake_openrouter.chat_requests()[-1].key == key  # billed to alice's own account
    assert all(r.key != FAKE_KEY for r in fake_openrouter.chat_requests())  # never to the operator's
    principal = f"openrouter:{fake_openrouter.signin.keys[key].user_id}"
    assert f"by {principal}" in server.stderr
    assert '"key": "own"' in resource_text(usage)  # whose key pays, as the caller sees it
    shown = asked.model_dump_json() + usage.model_dump_json() + server.stderr
    assert key not in shown and alice.access_token not in shown
    assert key.encode() not in stored(tmp_path) and alice.access_token.encode() not in stored(tmp_path)

    old = alice.storage.tokens
    assert old is not None and old.refresh_token
    async with httpx.AsyncClient() as http:  # the client refreshes (what the SDK sends when its token expires)
        refreshed = await http.post(
            f"http://127.0.0.1:{server.port}/token",
            data=alice.form(grant_type="refresh_token", refresh_token=old.refresh_token),
        )
        assert refreshed.status_code == 200, refreshed.text
        new = OAuthToken.model_validate(refreshed.json())
        again = await http.post(
            f"http://127.0.0.1:{server.port}/token",
            data=alice.form(grant_type="refresh_token", refresh_token=old.refresh_token),
        )
    assert new.refresh_token and new.refresh_token != old.refresh_token and new.access_token != old.access_token
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # rotated: the old one is spent
    assert await mcp_status(server, old.access_token) == 401
    assert await mcp_status(server, new.access_token) == 401  # the replay ended the grant: sign in again
    async with alice.client() as client:  # the SDK client, refused, signs in again by itself
        assert not (await client.call_tool("ask", {"prompt": "Why is the sky blue?"})).is_error
    assert len(alice.browser.landed) == 2 and fake_openrouter.signin.exchanges == 2

    async with httpx.AsyncClient() as http:  # /revoke: at once, the stored key with it
        revoked = await http.post(f"http://127.0.0.1:{server.port}/revoke", data=alice.form(token=alice.access_token))
    assert revoked.status_code == 200
    assert await mcp_status(server, alice.access_token) == 401
    assert alice.access_token not in server.stderr


@pytest.mark.parametrize("signin_server", ["keyless"], indirect=True)  # the operator needs no key of their own
async def test_federation_e2e_two_users_pay_each_for_their_own_and_a_revoked_key_says_how_to_reconnect(
    people: People, fake_openrouter: FakeOpenRouter
) -> None:
    alice, bob = people.user(3032), people.user(3033)
    keys: dict[str, str] = {}
    for name, user in (("alice", alice), ("bob", bob)):
        before = set(fake_openrouter.signin.keys)
        async with user.client() as client:
            assert not (await client.call_tool("ask", {"prompt": f"Hello from {name}"})).is_error
        [keys[name]] = set(fake_openrouter.signin.keys) - before
        assert fake_openrouter.chat_requests()[-1].key == keys[name]
    async with alice.client() as client:
        assert not (await client.call_tool("ask", {"prompt": "Alice again"})).is_error
    assert fake_openrouter.chat_requests()[-1].key == keys["alice"]
    assert {r.key for r in fake_openrouter.chat_requests()} == {keys["alice"], keys["bob"]}
    asked_by = {r.key: r.body["messages"][-1]["content"] for r in fake_openrouter.chat_requests()}
    assert "bob" not in str(asked_by[keys["alice"]]) and "alice" not in str(asked_by[keys["bob"]])

    fake_openrouter.signin.revoke(keys["alice"])  # alice deletes the key in her OpenRouter settings
    async with alice.client() as client:
        refused = await client.call_tool("ask", {"prompt": "Still there?"})
    async with bob.client() as client:
        fine = await client.call_tool("ask", {"prompt": "And me?"})
    assert refused.is_error and "sign in with OpenRouter again" in result_text(refused)
    assert keys["alice"] not in result_text(refused)
    assert not fine.is_error and fake_openrouter.chat_requests()[-1].key == keys["bob"]
    assert len(bob.browser.landed) == 1  # bob never had to sign in again
    async with alice.client() as client:  # her client is refused by us now, and signs her in again
        back = await client.call_tool("ask", {"prompt": "Back again"})
    assert not back.is_error and len(alice.browser.landed) == 2
    assert fake_openrouter.chat_requests()[-1].key not in (keys["alice"], keys["bob"])  # her new key


async def test_federation_e2e_tampering_replays_wrong_redirects_and_pkce_downgrades_are_refused(
    signin_server: HttpServer, people: People, fake_openrouter: FakeOpenRouter
) -> None:
    base = f"http://127.0.0.1:{signin_server.port}"
    redirect = "http://localhost:3034/callback"
    async with httpx.AsyncClient() as http:
        meta = (await http.get(f"{base}/.well-known/oauth-authorization-server")).json()
        resource = (await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")).json()
        made = await http.post(
            f"{base}/register",
            json={"redirect_uris": [redirect], "client_name": "raw", "grant_types": ["authorization_code"]},
        )
        evil = await http.post(f"{base}/register", json={"redirect_uris": ["http://evil.example/cb"]})
    assert meta["issuer"] == base and meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["registration_endpoint"] == f"{base}/register" and meta["revocation_endpoint"] == f"{base}/revoke"
    assert [s.rstrip("/") for s in resource["authorization_servers"]] == [base]
    assert made.status_code == 201 and evil.status_code == 400 and evil.json()["error"] == "invalid_redirect_uri"
    client = made.json()
    verifier = secrets.token_urlsafe(32)
    asked = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": redirect,
        "state": "s-42",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }

    def authorize(**changes: str | None) -> str:
        params = {k: v for k, v in {**asked, **changes}.items() if v is not None}
        return f"{base}/authorize?{urlencode(params)}"

    browser = people.browser(redirect)
    for downgrade in ({"code_challenge": None}, {"code_challenge_method": "plain"}):
        landed = await browser.follow(authorize(**downgrade))
        assert landed and query(landed)["error"] == "invalid_request" and "code" not in query(landed)
    for wrong in (f"{redirect}/x", "http://localhost:3035/callback", "https://evil.example/callback"):
        assert await browser.follow(authorize(redirect_uri=wrong)) is None
        refused = browser.pages[-1]  # answered at /authorize itself: nothing is sent to an unregistered URI
        assert refused.status_code == 400 and refused.url.path == "/authorize"
        assert refused.json()["error"] == "invalid_request" and "not registered" in refused.json()["error_description"]
    for tampered in ("/openrouter/signin/not-a-flow", "/openrouter/callback/not-a-flow?code=x"):
        assert await browser.follow(f"{base}{tampered}") is None and browser.pages[-1].status_code == 400
        assert "unknown" in browser.pages[-1].text

    # A whole sign-in by hand, stopping at OpenRouter's callback, to replay it.
    async with httpx.AsyncClient() as http:
        ours = (await browser.http.get(authorize())).headers["location"]
        to_openrouter = (await browser.http.get(ours)).headers["location"]
        callback = (await http.get(to_openrouter)).headers["location"]  # the fake consents
        assert callback.startswith(f"{base}/openrouter/callback/") and "code=" in callback
        elsewhere = await http.get(callback)  # OpenRouter's code, in a browser without the sign-in's cookie
        assert elsewhere.status_code == 400 and "another browser" in elsewhere.text
        landed = await browser.follow(callback)
        assert landed and query(landed)["state"] == "s-42" and query(landed)["iss"] == base
        replayed = await browser.http.get(callback)  # OpenRouter's callback again
        assert replayed.status_code == 400 and "code" not in replayed.headers.get("location", "")
        code = query(landed)["code"]
        token = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
        creds = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
        wrong_pkce = await http.post(f"{base}/token", data={**token, **creds, "code_verifier": "x" * 43})
        first = await http.post(f"{base}/token", data={**token, **creds, "code_verifier": verifier})
        second = await http.post(f"{base}/token", data={**token, **creds, "code_verifier": verifier})
    assert wrong_pkce.status_code == 400 and wrong_pkce.json()["error"] == "invalid_grant"
    assert first.status_code == 200, first.text
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert await mcp_status(signin_server, first.json()["access_token"]) == 401  # a replayed code ends the grant

    # OpenRouter's code from one sign-in, slipped into another: OpenRouter refuses it (PKCE, and used once).
    other = people.browser(redirect)
    ours = (await other.http.get(authorize())).headers["location"]
    flow_b = (await other.http.get(ours)).headers["location"]
    stolen = urljoin(callback, urlsplit(query(flow_b)["callback_url"]).path) + "?" + urlsplit(callback).query
    landed = await other.follow(stolen)
    assert landed and query(landed)["error"] == "access_denied" and "code" not in query(landed)
    for page in [p for p in browser.pages + other.pages if p.url.path.startswith("/openrouter/")]:  # ours
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert all(k not in signin_server.stderr for k in fake_openrouter.signin.keys)


async def test_federation_e2e_a_remote_web_client_gets_a_consent_page_first(
    signin_server: HttpServer, people: People
) -> None:
    base = f"http://127.0.0.1:{signin_server.port}"
    redirect = "https://app.example/oauth/callback"
    async with httpx.AsyncClient() as http:
        client: dict[str, Any] = (
            await http.post(f"{base}/register", json={"redirect_uris": [redirect], "client_name": "<i>Web</i> app"})
        ).json()
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": redirect,
        "code_challenge": challenge("v" * 43),
        "state": "w",
    }
    browser = people.browser(redirect)
    assert await browser.follow(f"{base}/authorize?{urlencode(params)}") is None
    page = browser.pages[-1]
    assert page.status_code == 200 and "&lt;i&gt;Web&lt;/i&gt; app" in page.text and "app.example" in page.text
    action = f"{base}{urlsplit(str(page.url)).path}"
    async with httpx.AsyncClient() as forged:  # a form posted from another site carries no cookie of ours
        assert (await forged.post(action, data={"decision": "allow"})).status_code == 400
    assert (await browser.http.post(action, data={"decision": "allow"})).status_code == 400  # not from our page
    mine = dict(re.findall(r'name="(browser)" value="([^"]+)"', page.text))
    denied = await browser.http.post(action, data={"decision": "deny", **mine})
    assert denied.status_code == 303 and query(denied.headers["location"])["error"] == "access_denied"


async def test_federation_e2e_a_loopback_ip_redirect_uri_takes_another_port_at_authorize(
    signin_server: HttpServer, people: People
) -> None:
    base = f"http://127.0.0.1:{signin_server.port}"
    registered, asked = "http://127.0.0.1:3036/callback", "http://127.0.0.1:45678/callback"
    async with httpx.AsyncClient() as http:
        client = (await http.post(f"{base}/register", json={"redirect_uris": [registered]})).json()
    verifier = secrets.token_urlsafe(32)
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": asked,  # RFC 8252 §7.3: the port the app got from the OS just now
        "code_challenge": challenge(verifier),
        "state": "p",
    }
    browser = people.browser(asked)
    landed = await browser.follow(f"{base}/authorize?{urlencode(params)}")
    assert landed and query(landed)["state"] == "p", browser.pages and browser.pages[-1].text
    creds = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    token = {"grant_type": "authorization_code", "code": query(landed)["code"], "code_verifier": verifier}
    async with httpx.AsyncClient() as http:
        elsewhere = await http.post(f"{base}/token", data={**token, **creds, "redirect_uri": registered})
        got = await http.post(f"{base}/token", data={**token, **creds, "redirect_uri": asked})
    assert elsewhere.status_code == 400 and "redirect_uri" in elsewhere.json()["error_description"]
    assert got.status_code == 200, got.text
    assert await mcp_status(signin_server, got.json()["access_token"]) != 401  # taken (a bare ping: no session)
