"""OAuth access tokens (remote/oauth.py) verified against a real issuer on loopback (`tests/fakes/issuer.py`): what is
accepted, each refusal with its reason code, the JWKS cache (rotation, floods, concurrency, outages), discovery, and
the SDK's middleware turning a token without a required scope into a 403."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from openrouter_research_mcp.remote.auth import limits_of
from openrouter_research_mcp.remote.oauth import (
    JWKS_MAX_AGE_S,
    REFETCH_INTERVAL_S,
    REFUSALS,
    JwtVerifier,
    OAuthConfig,
)

from ..fakes.issuer import AUDIENCE, SUBJECT, FakeIssuer, SigningKey, b64url
from ..support import eventually


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Verifier:
    """A JwtVerifier against the fake issuer, with the reason codes of its refusals."""

    def __init__(self, issuer: FakeIssuer, http: httpx.AsyncClient, **config: Any) -> None:
        self.clock = Clock()
        self.reasons: list[str] = []
        settings: dict[str, Any] = {
            "issuer": issuer.issuer,
            "audience": AUDIENCE,
            "scopes": ("research",),
            "jwks_url": issuer.jwks_url,
        }
        self.config = OAuthConfig(**{**settings, **config})
        self.jwt = JwtVerifier(self.config, http, clock=self.clock, on_refusal=self.reasons.append)

    async def refused(self, token: str) -> str:
        """The reason code of a refusal (the test fails if the token is accepted)."""
        before = len(self.reasons)
        assert await self.jwt.verify_token(token) is None
        assert len(self.reasons) == before + 1 and self.reasons[-1] in REFUSALS
        return self.reasons[-1]


@pytest.fixture
def fake_issuer() -> Iterator[FakeIssuer]:
    """A fake authorization server on 127.0.0.1 with an RSA and an EC key; its own bugs fail the test."""
    with FakeIssuer() as issuer:
        yield issuer
    assert not issuer.errors


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def verifier(fake_issuer: FakeIssuer, http: httpx.AsyncClient) -> AsyncIterator[Verifier]:
    made = Verifier(fake_issuer, http)
    yield made
    await made.jwt.aclose()  # a background fetch a failed test left does not outlive it


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(b64url(json.dumps(part).encode()) for part in (header, payload)) + "." + b64url(signature)


# ------------------------------------------------------------------------------------------------ accepted


@pytest.mark.parametrize("key", ["rsa", "ec"])
async def test_oauth_accepts_a_valid_token(fake_issuer: FakeIssuer, verifier: Verifier, key: str) -> None:
    token = fake_issuer.mint(key=getattr(fake_issuer, key), now=verifier.clock.now)
    accepted = await verifier.jwt.verify_token(token)
    assert accepted is not None and accepted.token == token
    assert accepted.subject == f"oauth:{SUBJECT}" and accepted.client_id == "team-client"
    assert accepted.scopes == ["research"] and accepted.resource == AUDIENCE
    assert (
        accepted.expires_at == int(verifier.clock.now) + 300 + 30
    )  # exp and the leeway (the SDK checks it without leeway)
    assert accepted.claims is not None and accepted.claims["iss"] == fake_issuer.issuer
    assert limits_of(accepted).usd_per_day is None  # quotas never come from the token


async def test_oauth_accepts_eddsa_and_a_listed_audience(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    key = fake_issuer.rotate("EdDSA")
    token = fake_issuer.mint({"aud": ["https://other.example.test", AUDIENCE + "/"]}, key=key)
    assert await verifier.jwt.verify_token(token) is not None


async def test_oauth_quota_claims_in_a_token_are_dropped(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    accepted = await verifier.jwt.verify_token(fake_issuer.mint({"usd_per_day": 1e9, "jobs": 99}))
    assert accepted is not None and limits_of(accepted).usd_per_day is None and limits_of(accepted).jobs is None


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": None, "scp": ["research", "admin"]}, ["research", "admin"]),
        ({"scope": None, "scp": "research admin"}, ["research", "admin"]),
        ({"scope": "read", "scp": ["read", "research"]}, ["read", "research"]),
    ],
)
async def test_oauth_scopes_from_scope_or_scp(
    fake_issuer: FakeIssuer, verifier: Verifier, claims: dict[str, Any], scopes: list[str]
) -> None:
    accepted = await verifier.jwt.verify_token(fake_issuer.mint(claims))
    assert accepted is not None and accepted.scopes == scopes


async def test_oauth_missing_scope_is_left_to_the_sdk(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    # The verifier returns the token with its real scopes; the SDK's middleware answers 403 (the next test).
    accepted = await verifier.jwt.verify_token(fake_issuer.mint({"scope": "read"}))
    assert accepted is not None and accepted.scopes == ["read"] and verifier.reasons == []


async def test_oauth_sdk_middleware_answers_401_and_403(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    metadata = build_resource_metadata_url(AnyHttpUrl(AUDIENCE))
    backend = BearerAuthBackend(verifier.jwt, resource_server_url=AnyHttpUrl(AUDIENCE))
    app = Starlette(
        routes=[Route("/mcp", endpoint=RequireAuthMiddleware(ok, ["research"], metadata))],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://mcp.example.test") as client:

        async def post(token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await client.post("/mcp", headers=headers)

        good, narrow = await post(fake_issuer.mint()), await post(fake_issuer.mint({"scope": "read"}))
        bad, none = await post(fake_issuer.mint({"aud": "https://other.example.test"})), await post(None)
    assert good.status_code == 200
    assert narrow.status_code == 403 and narrow.json()["error"] == "insufficient_scope"
    assert narrow.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", error_description="Required scope: research", '
        f'resource_metadata="{metadata}"'
    )
    for refused in (bad, none):
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
        assert refused.headers["www-authenticate"] == (
            f'Bearer error="invalid_token", error_description="Authentication required", resource_metadata="{metadata}"'
        )
    assert verifier.reasons == ["wrong_audience"]


# ------------------------------------------------------------------------------------------------ refused


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "missing"),
        ("x" * 8193, "oversized"),
        ("not-a-jwt", "malformed"),
        ("a.b.c", "malformed"),
        ("!!!.###.$$$", "malformed"),
        (b64url(b"\xff\xfe garbage") + ".e30.", "malformed"),
        (b64url(b'["alg", "RS256"]') + ".e30.", "malformed"),
    ],
)
async def test_oauth_refuses_what_is_no_jwt(
    fake_issuer: FakeIssuer, verifier: Verifier, token: str, reason: str
) -> None:
    assert await verifier.refused(token) == reason
    assert fake_issuer.jwks_fetches == 0  # refused before any key was needed


async def test_oauth_refuses_a_signed_garbage_payload(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    # The signature is checked first, so only the issuer could make one: still refused, never an exception.
    key = fake_issuer.rsa
    infinite = json.dumps({**fake_issuer.claims(), "exp": float("inf")}).encode()  # json.loads takes Infinity
    for payload in (b"not json", b"[1, 2]", infinite):
        token = jwt.PyJWS().encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})
        assert await verifier.refused(token) == "malformed"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.example.test"}, "wrong_issuer"),
        ({"iss": None}, "wrong_issuer"),
        ({"aud": "https://other.example.test/mcp"}, "wrong_audience"),
        ({"aud": ["https://other.example.test/mcp"]}, "wrong_audience"),
        ({"aud": None}, "wrong_audience"),
        ({"exp": None}, "no_expiry"),
        ({"exp": "tomorrow"}, "malformed"),
        ({"sub": None}, "no_subject"),
        ({"sub": ""}, "no_subject"),
        ({"sub": 42}, "no_subject"),
        ({"scope": 7}, "malformed"),
    ],
)
async def test_oauth_refuses_bad_claims(
    fake_issuer: FakeIssuer, verifier: Verifier, claims: dict[str, Any], reason: str
) -> None:
    assert await verifier.refused(fake_issuer.mint(claims)) == reason


async def test_oauth_tolerates_one_trailing_slash_on_the_issuer(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    assert await verifier.jwt.verify_token(fake_issuer.mint({"iss": fake_issuer.issuer + "/"})) is not None
    assert await verifier.refused(fake_issuer.mint({"iss": fake_issuer.issuer + "//"})) == "wrong_issuer"


async def test_oauth_expiry_with_leeway(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    token = fake_issuer.mint(now=verifier.clock.now)
    verifier.clock.now += 300 + 29  # expired 29 s ago, within the 30 s leeway
    assert await verifier.jwt.verify_token(token) is not None
    verifier.clock.now += 2
    assert await verifier.refused(token) == "expired"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_oauth_refuses_a_token_not_yet_valid(fake_issuer: FakeIssuer, verifier: Verifier, claim: str) -> None:
    now = verifier.clock.now
    assert await verifier.jwt.verify_token(fake_issuer.mint({claim: int(now) + 29})) is not None
    assert await verifier.refused(fake_issuer.mint({claim: int(now) + 31})) == "not_yet_valid"


async def test_oauth_refuses_alg_none(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    claims = fake_issuer.claims()
    for alg in ("none", "None", "NONE"):
        assert await verifier.refused(forge({"alg": alg, "typ": "JWT"}, claims)) == "alg_not_allowed"
    assert await verifier.refused(forge({"typ": "JWT"}, claims)) == "alg_not_allowed"
    assert await verifier.refused(forge({"alg": ["RS256"], "kid": fake_issuer.rsa.kid}, claims)) == "alg_not_allowed"


async def test_oauth_refuses_hs256_signed_with_the_public_key(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    # The key-confusion attack: HMAC with the issuer's public key (which anyone can fetch) as the secret.
    for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        header = {"alg": alg, "typ": "JWT", "kid": fake_issuer.rsa.kid}
        unsigned = forge(header, fake_issuer.claims()).removesuffix(".")
        signature = hmac.new(fake_issuer.rsa.public_pem(), unsigned.encode(), digest).digest()
        assert await verifier.refused(f"{unsigned}.{b64url(signature)}") == "alg_not_allowed"


async def test_oauth_refuses_a_signature_by_another_key(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    impostor = SigningKey.generate("RS256", kid=fake_issuer.rsa.kid)  # a published kid, an unpublished key
    assert await verifier.refused(fake_issuer.mint(key=impostor)) == "bad_signature"
    header, payload, _ = fake_issuer.mint().split(".")
    _, _, other = fake_issuer.mint({"sub": "mallory"}).split(".")
    assert await verifier.refused(f"{header}.{payload}.{other}") == "bad_signature"


async def test_oauth_refuses_an_algorithm_the_key_does_not_fit(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    ec_as_rsa = fake_issuer.mint(key=fake_issuer.ec, headers={"kid": fake_issuer.rsa.kid})
    assert await verifier.refused(ec_as_rsa) == "key_mismatch"
    ps_with_rs_key = fake_issuer.mint(alg="PS256")  # the JWK says alg RS256
    assert await verifier.refused(ps_with_rs_key) == "key_mismatch"


async def test_oauth_refuses_a_weak_key(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    weak = SigningKey.generate("RS256", rsa_bits=1024)
    fake_issuer.keys.append(weak)
    assert await verifier.refused(fake_issuer.mint(key=weak)) == "bad_key"


async def test_oauth_token_without_kid(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    assert await verifier.jwt.verify_token(fake_issuer.mint(headers={"kid": None})) is not None  # one RSA key
    fake_issuer.rotate()
    verifier.clock.now += JWKS_MAX_AGE_S  # the keys are fetched again: now two RSA keys
    await verifier.jwt.verify_token(fake_issuer.mint(headers={"kid": None}))  # judged by the old keys; starts the fetch
    await verifier.jwt.refreshed()
    assert await verifier.refused(fake_issuer.mint(headers={"kid": None})) == "no_kid"


async def test_oauth_skips_a_key_not_for_signatures(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    fake_issuer.rsa.jwk["use"] = "enc"
    assert await verifier.refused(fake_issuer.mint()) == "key_mismatch"


# ------------------------------------------------------------------------------------------------ the JWKS cache


async def test_oauth_fetches_the_jwks_once(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    for key in (fake_issuer.rsa, fake_issuer.ec, fake_issuer.rsa):
        assert await verifier.jwt.verify_token(fake_issuer.mint(key=key)) is not None
    assert fake_issuer.jwks_fetches == 1
    verifier.clock.now += JWKS_MAX_AGE_S  # old keys are fetched again, so a withdrawn key stops working
    withdrawn = fake_issuer.keys.pop()  # the EC key
    assert await verifier.jwt.verify_token(fake_issuer.mint(key=withdrawn, now=verifier.clock.now)) is not None
    await verifier.jwt.refreshed()
    assert fake_issuer.jwks_fetches == 2
    assert await verifier.refused(fake_issuer.mint(key=withdrawn, now=verifier.clock.now)) == "unknown_kid"
    assert await verifier.jwt.verify_token(fake_issuer.mint(now=verifier.clock.now)) is not None


async def test_oauth_old_keys_are_fetched_again_without_stalling_any_call(
    fake_issuer: FakeIssuer, verifier: Verifier
) -> None:
    """Once the keys are JWKS_MAX_AGE_S old, calls go on with them while one fetch runs in the background: an
    issuer that is slow, or away, holds up no call."""
    assert await verifier.jwt.verify_token(fake_issuer.mint()) is not None
    fake_issuer.jwks_gate = threading.Event()  # the issuer answers its JWKS only when the test says
    verifier.clock.now += JWKS_MAX_AGE_S
    try:
        for _ in range(3):
            assert await verifier.jwt.verify_token(fake_issuer.mint(now=verifier.clock.now)) is not None
            assert verifier.jwt.refreshing  # answered while the fetch is still waiting on the issuer
        await eventually(lambda: fake_issuer.jwks_fetches == 2, what="the background fetch reaching the issuer")
    finally:
        fake_issuer.jwks_gate.set()
    await verifier.jwt.refreshed()
    assert not verifier.jwt.refreshing and fake_issuer.jwks_fetches == 2  # one fetch for all three calls


async def test_oauth_key_rotation_and_a_flood_of_unknown_kids(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    assert await verifier.jwt.verify_token(fake_issuer.mint()) is not None
    new = fake_issuer.rotate()  # at once after the first fetch: the first fetch is no reason to wait
    assert await verifier.jwt.verify_token(fake_issuer.mint(key=new)) is not None
    assert fake_issuer.jwks_fetches == 2  # one refetch found the new key
    newer = fake_issuer.rotate()
    assert await verifier.refused(fake_issuer.mint(key=newer)) == "unknown_kid"  # a second one waits its turn
    assert fake_issuer.jwks_fetches == 2
    verifier.clock.now += REFETCH_INTERVAL_S
    assert await verifier.jwt.verify_token(fake_issuer.mint(key=newer, now=verifier.clock.now)) is not None
    assert fake_issuer.jwks_fetches == 3
    verifier.clock.now += REFETCH_INTERVAL_S
    flood = [fake_issuer.mint(headers={"kid": secrets.token_hex(8)}) for _ in range(20)]
    assert [await verifier.refused(token) for token in flood] == ["unknown_kid"] * 20
    assert fake_issuer.jwks_fetches == 4  # at most one refetch for the whole flood
    assert await verifier.jwt.verify_token(fake_issuer.mint(key=new)) is not None  # known keys still work


async def test_oauth_concurrent_first_calls_share_one_fetch(fake_issuer: FakeIssuer, verifier: Verifier) -> None:
    fake_issuer.jwks_latency = 0.05
    tokens = [fake_issuer.mint(key=key) for key in (fake_issuer.rsa, fake_issuer.ec) * 5]
    accepted = await asyncio.gather(*(verifier.jwt.verify_token(token) for token in tokens))
    assert all(token is not None for token in accepted) and fake_issuer.jwks_fetches == 1


@pytest.mark.parametrize(
    "breakage", [{"jwks_status": 503}, {"jwks_body": {"keys": "none"}}, {"jwks_body": b"<html>"}, {"jwks_body": []}]
)
async def test_oauth_refuses_while_the_jwks_is_unavailable(
    fake_issuer: FakeIssuer, verifier: Verifier, breakage: dict[str, Any]
) -> None:
    for name, value in breakage.items():
        setattr(fake_issuer, name, value)
    assert await verifier.refused(fake_issuer.mint()) == "jwks_unavailable"
    assert await verifier.refused(fake_issuer.mint()) == "jwks_unavailable"
    assert fake_issuer.jwks_fetches == 1  # a failing issuer is not asked again at once
    fake_issuer.jwks_status, fake_issuer.jwks_body = 200, None
    verifier.clock.now += REFETCH_INTERVAL_S
    assert await verifier.jwt.verify_token(fake_issuer.mint()) is not None


async def test_oauth_refuses_when_the_issuer_is_unreachable(fake_issuer: FakeIssuer, http: httpx.AsyncClient) -> None:
    token, verifier = fake_issuer.mint(), Verifier(fake_issuer, http)
    fake_issuer.stop()  # connections refused from now on
    assert await verifier.refused(token) == "jwks_unavailable"


async def test_oauth_refuses_a_jwks_url_without_tls(fake_issuer: FakeIssuer, http: httpx.AsyncClient) -> None:
    verifier = Verifier(fake_issuer, http, jwks_url="http://auth.example.test/jwks")
    assert await verifier.refused(fake_issuer.mint()) == "jwks_unavailable"


# ------------------------------------------------------------------------------------------------ discovery


@pytest.mark.parametrize("path", ["", "/realms/team"])
@pytest.mark.parametrize("served", ["oauth", "oidc"])
async def test_oauth_discovers_the_jwks(http: httpx.AsyncClient, path: str, served: str) -> None:
    with FakeIssuer(path=path) as issuer:
        issuer.serve_oauth_metadata = served == "oauth"
        verifier = Verifier(issuer, http, jwks_url=None)
        assert await verifier.jwt.verify_token(issuer.mint()) is not None
        assert await verifier.jwt.verify_token(issuer.mint(key=issuer.ec)) is not None
        first = f"/.well-known/oauth-authorization-server{path}"
        assert issuer.requests[0] == first and issuer.jwks_fetches == 1
        assert len(issuer.requests) == (2 if served == "oauth" else 3)  # metadata looked up once, then the keys


async def test_oauth_refuses_metadata_naming_another_issuer(fake_issuer: FakeIssuer, http: httpx.AsyncClient) -> None:
    fake_issuer.metadata_issuer = "https://evil.example.test"
    verifier = Verifier(fake_issuer, http, jwks_url=None)
    assert await verifier.refused(fake_issuer.mint()) == "jwks_unavailable"
    assert fake_issuer.jwks_fetches == 0


async def test_oauth_refuses_when_no_metadata_is_served(fake_issuer: FakeIssuer, http: httpx.AsyncClient) -> None:
    fake_issuer.serve_oauth_metadata = fake_issuer.serve_oidc_metadata = False
    verifier = Verifier(fake_issuer, http, jwks_url=None)
    assert await verifier.refused(fake_issuer.mint()) == "jwks_unavailable"


# ------------------------------------------------------------------------------------------------ logging


async def test_oauth_never_logs_the_token(
    fake_issuer: FakeIssuer, verifier: Verifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [
        fake_issuer.mint({"aud": "https://other.example.test"}),
        fake_issuer.mint({"exp": int(time.time()) - 3600}),
        fake_issuer.mint(key=SigningKey.generate("ES256", kid=fake_issuer.ec.kid)),
        fake_issuer.mint(headers={"kid": "unknown"}),
        "garbage." + fake_issuer.mint().split(".")[1] + ".x",
    ]
    for token in tokens:
        assert await verifier.jwt.verify_token(token) is None
    assert verifier.reasons == ["wrong_audience", "expired", "bad_signature", "unknown_kid", "malformed"]
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == len(tokens)
    for token in tokens:
        for part in token.split("."):
            assert len(part) < 8 or part not in caplog.text
