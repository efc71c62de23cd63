"""Signing in with OpenRouter: PKCE, the authorization page's address, the code exchange (respx), the fake's
sign-in over loopback, and the laptop's one-shot loopback listener."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from openrouter_research_mcp.errors import AuthError, BadResponseError, UpstreamUnavailableError
from openrouter_research_mcp.openrouter.signin import (
    auth_page_url,
    authorization_url,
    code_challenge,
    exchange_code,
    new_verifier,
)
from openrouter_research_mcp.signin_cli import LoopbackCallback, SignInError, _Handler, read_code

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter
from ..fakes.signin import CODE_TTL
from .helpers import BASE, mock_upstream

# RFC 7636, appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
MINTED = "sk-or-v1-" + "ab" * 32


def test_code_challenge_matches_rfc7636_appendix_b() -> None:
    assert code_challenge(RFC_VERIFIER) == RFC_CHALLENGE


def test_new_verifier_is_fresh_and_within_rfc7636_bounds() -> None:
    verifiers = {new_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    assert all(43 <= len(v) <= 128 and re.fullmatch(r"[A-Za-z0-9._~-]+", v) for v in verifiers)


@pytest.mark.parametrize(
    ("base_url", "auth_url", "page"),
    [
        ("https://openrouter.ai/api/v1", None, "https://openrouter.ai/auth"),
        ("https://openrouter.ai/api/v1/", None, "https://openrouter.ai/auth"),
        ("http://127.0.0.1:8765/api/v1", None, "http://127.0.0.1:8765/auth"),
        ("https://gateway.example/openrouter/api/v1", None, "https://gateway.example/openrouter/auth"),
        ("https://gateway.example/v1", None, "https://gateway.example/auth"),
        ("https://openrouter.ai/api/v1", "https://sso.example/or/auth/", "https://sso.example/or/auth"),
        ("https://openrouter.ai/api/v1", "  ", "https://openrouter.ai/auth"),
    ],
)
def test_auth_page_url_derives_from_base_url_unless_set(base_url: str, auth_url: str | None, page: str) -> None:
    assert auth_page_url(base_url, auth_url) == page


def test_authorization_url_carries_the_challenge_callback_and_label() -> None:
    url = authorization_url(
        "https://openrouter.ai/auth",
        challenge=RFC_CHALLENGE,
        callback_url="http://127.0.0.1:5/cb/x",
        key_label="my laptop",
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://openrouter.ai/auth"
    assert parse_qs(parts.query) == {
        "callback_url": ["http://127.0.0.1:5/cb/x"],
        "code_challenge": [RFC_CHALLENGE],
        "code_challenge_method": ["S256"],
        "key_label": ["my laptop"],
    }
    headless = parse_qs(urlsplit(authorization_url("https://x/auth?a=1", challenge="c", callback_url=None)).query)
    assert headless == {"a": ["1"], "code_challenge": ["c"], "code_challenge_method": ["S256"]}


@pytest.fixture
def respx_signin() -> Iterator[respx.MockRouter]:
    with mock_upstream(base_url=BASE, assert_all_called=True) as router:
        yield router


async def test_exchange_code_posts_code_verifier_and_method(respx_signin: respx.MockRouter) -> None:
    route = respx_signin.post("/auth/keys").mock(return_value=httpx.Response(200, json={"key": MINTED}))
    async with httpx.AsyncClient() as http:
        minted = await exchange_code(http, BASE, " the-code\n", RFC_VERIFIER)
    assert minted.key == MINTED and minted.user_id is None and MINTED not in repr(minted)
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"code": "the-code", "code_verifier": RFC_VERIFIER, "code_challenge_method": "S256"}
    assert "authorization" not in route.calls.last.request.headers  # no key is needed, and none is sent


@pytest.mark.parametrize(
    ("response", "error", "words"),
    [
        (httpx.Response(403, json={"error": {"code": 403, "message": "Invalid code the-code"}}), AuthError, "again"),
        (httpx.Response(400, json={"error": {"message": "bad"}}), AuthError, "refused the sign-in code"),
        (httpx.Response(503, text="down"), UpstreamUnavailableError, "Wait a moment"),
        (httpx.Response(200, json={"nokey": True}), BadResponseError, "without a key"),
        (httpx.Response(200, text="<html>"), BadResponseError, "without a key"),
    ],
)
async def test_exchange_code_errors_say_what_to_do_without_the_code(
    respx_signin: respx.MockRouter, response: httpx.Response, error: type[Exception], words: str
) -> None:
    respx_signin.post("/auth/keys").mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(error) as caught:
            await exchange_code(http, BASE, "the-code", RFC_VERIFIER)
    message = str(caught.value)
    assert words in message and "the-code" not in message and RFC_VERIFIER not in message


async def test_exchange_code_unreachable_and_empty_code(respx_signin: respx.MockRouter) -> None:
    respx_signin.post("/auth/keys").mock(side_effect=httpx.ConnectError("refused"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(UpstreamUnavailableError, match="Could not reach OpenRouter"):
            await exchange_code(http, BASE, "the-code", RFC_VERIFIER)
        with pytest.raises(AuthError, match="No sign-in code"):
            await exchange_code(http, BASE, "  ", RFC_VERIFIER)


# ---------------------------------------------------------------------------------------------- the fake's sign-in


def _page_code(http: httpx.Client, fake: FakeOpenRouter, challenge: str, **extra: str) -> str:
    page = auth_page_url(fake.base_url, None)
    response = http.get(authorization_url(page, challenge=challenge, callback_url=None, **extra))
    assert response.status_code == 200
    found = re.search(r'<code id="code">([^<]+)</code>', response.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def plain_http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, trust_env=False) as http:
        yield http


async def test_fake_signin_mints_a_key_once_that_works_and_can_be_revoked(
    fake_openrouter: FakeOpenRouter, plain_http: httpx.Client
) -> None:
    verifier = new_verifier()
    code = _page_code(plain_http, fake_openrouter, code_challenge(verifier), key_label="laptop")
    async with httpx.AsyncClient(trust_env=False) as http:
        minted = await exchange_code(http, fake_openrouter.base_url, code, verifier)
        with pytest.raises(AuthError):  # single use
            await exchange_code(http, fake_openrouter.base_url, code, verifier)
    key = minted.key
    assert (
        key.startswith("sk-or-v1-") and key != FAKE_KEY and minted.user_id == fake_openrouter.signin.keys[key].user_id
    )
    assert fake_openrouter.signin.keys[key].label == "laptop"
    info = plain_http.get(f"{fake_openrouter.base_url}/key", headers={"Authorization": f"Bearer {key}"})
    assert info.status_code == 200 and info.json()["data"]["limit"] == 10.0
    assert info.json()["data"]["expires_at"].endswith("Z")
    assert fake_openrouter.requests[-1].key == key  # the log says whose key each request used
    fake_openrouter.signin.revoke(key)
    assert (
        plain_http.get(f"{fake_openrouter.base_url}/key", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    )


async def test_fake_signin_refuses_a_wrong_verifier_and_an_expired_code(
    fake_openrouter: FakeOpenRouter, plain_http: httpx.Client
) -> None:
    now = [1000.0]
    fake_openrouter.signin.clock = lambda: now[0]
    verifier = new_verifier()
    wrong = _page_code(plain_http, fake_openrouter, code_challenge(verifier))
    late = _page_code(plain_http, fake_openrouter, code_challenge(verifier))
    async with httpx.AsyncClient(trust_env=False) as http:
        with pytest.raises(AuthError) as caught:
            await exchange_code(http, fake_openrouter.base_url, wrong, new_verifier())
        assert caught.value.status == 403
        now[0] += CODE_TTL + 1
        with pytest.raises(AuthError):
            await exchange_code(http, fake_openrouter.base_url, late, verifier)
    assert fake_openrouter.signin.keys == {}


def test_fake_signin_redirects_only_to_loopback_unless_allowed(
    fake_openrouter: FakeOpenRouter, plain_http: httpx.Client
) -> None:
    page = auth_page_url(fake_openrouter.base_url, None)
    loopback = plain_http.get(authorization_url(page, challenge="c", callback_url="http://localhost:9/cb?s=1"))
    assert loopback.status_code == 302 and re.fullmatch(
        r"http://localhost:9/cb\?s=1&code=code-\S+", loopback.headers["location"]
    )
    public = authorization_url(page, challenge="c", callback_url="https://team.example/callback")
    assert plain_http.get(public).status_code == 400
    fake_openrouter.signin.allow_any_callback = True
    assert plain_http.get(public).headers["location"].startswith("https://team.example/callback?code=")
    assert plain_http.get(page, params={"code_challenge": "c"}).status_code == 400  # S256 only


# ---------------------------------------------------------------------------------------------- loopback listener


def test_loopback_callback_ignores_strangers_and_returns_the_code(plain_http: httpx.Client) -> None:
    callback = LoopbackCallback()
    outcome: list[object] = []

    def wait() -> None:
        try:
            outcome.append(callback.wait(60))
        except SignInError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        base = callback.callback_url.rsplit("/", 1)[0]
        assert plain_http.get(f"{base}/wrong-state?code=evil").status_code == 400
        assert plain_http.get(base.rsplit("/", 1)[0] + "/favicon.ico").status_code == 400
        assert plain_http.get(callback.callback_url).status_code == 400  # the right state, but no code
        assert plain_http.post(callback.callback_url + "?code=evil").status_code == 405
        done = plain_http.get(callback.callback_url + "?code=the-code")
        waiter.join()
    finally:
        callback.close()
    assert done.status_code == 200 and "close this tab" in done.text and done.headers["cache-control"] == "no-store"
    assert outcome == ["the-code"] and callback.refused == 4


def test_loopback_callback_user_declined(plain_http: httpx.Client) -> None:
    outcome: list[BaseException] = []

    def wait() -> None:
        with pytest.raises(SignInError, match="cancelled") as caught:
            callback.wait(60)
        outcome.append(caught.value)

    with LoopbackCallback() as callback:
        waiter = threading.Thread(target=wait)
        waiter.start()
        assert plain_http.get(callback.callback_url + "?error=access_denied").status_code == 400
        waiter.join()
    assert len(outcome) == 1 and "access_denied" in str(outcome[0])


def test_loopback_callback_time_limit() -> None:
    """Nobody comes back: the wait ends at its limit (a short one here; the outcome does not depend on timing)."""
    with LoopbackCallback() as callback, pytest.raises(SignInError, match="within 0.05 s") as caught:
        callback.wait(0.05)
    assert "--headless" in str(caught.value) and "--wait" in str(caught.value)


def test_loopback_callback_a_stalled_connection_does_not_hold_up_the_browser(
    plain_http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that sends nothing (a browser's preconnect) must not delay the real return: were connections
    served one at a time, the GET below would wait out the silent one (made longer than the client's timeout)."""
    monkeypatch.setattr(_Handler, "timeout", 3600)
    with LoopbackCallback() as callback:
        port = urlsplit(callback.callback_url).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port)):  # open, and silent, until the code is back
            outcome: list[str] = []
            waiter = threading.Thread(target=lambda: outcome.append(callback.wait(60)))
            waiter.start()
            assert plain_http.get(callback.callback_url + "?code=c1").status_code == 200
            waiter.join()
    assert outcome == ["c1"]


def test_loopback_callback_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SignInError, match=f"port {port}") as caught:
            LoopbackCallback(port)
    assert "--headless" in str(caught.value) and "--port" in str(caught.value)


@pytest.mark.parametrize(
    ("typed", "code"),
    [("abc-123\n", "abc-123"), ("  http://localhost/?code=xyz&x=1 \n", "xyz"), ("code-1", "code-1")],
)
def test_read_code_takes_the_code_or_the_address(typed: str, code: str) -> None:
    prompted: list[bool] = []
    assert read_code(io.StringIO(typed), lambda: prompted.append(True)) == code and prompted == [True]


@pytest.mark.parametrize("typed", ["", "\n", "   \n"])
def test_read_code_nothing_entered(typed: str) -> None:
    with pytest.raises(SignInError, match="No code was entered"):
        read_code(io.StringIO(typed), lambda: None)
