"""The team server as an OAuth 2.1 resource server, over real HTTP on loopback, against a test issuer the test
starts (keys made now, JWKS on loopback): the SDK's client with an issuer's token, RFC 9728 metadata, 401 and 403
with their WWW-Authenticate, quotas per subject, one subject's work invisible to another, key rotation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..fakes.issuer import AUDIENCE, FakeIssuer
from ..fakes.openrouter import FakeOpenRouter
from ..support import result_text
from .test_http_e2e import HttpServer, cli, env_for, http_server

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture
def oauth(
    fake_openrouter: FakeOpenRouter, tmp_path: Path, issuer: FakeIssuer
) -> Iterator[tuple[HttpServer, dict[str, str]]]:
    env = env_for(
        fake_openrouter,
        tmp_path,
        OPENROUTER_MCP_AUTH="oauth",
        OPENROUTER_MCP_OAUTH_ISSUER=issuer.issuer,
        OPENROUTER_MCP_OAUTH_AUDIENCE=AUDIENCE,
        OPENROUTER_MCP_OAUTH_SCOPES="research",
    )
    with http_server(env, tmp_path) as server:
        yield server, env


async def test_oauth_an_issuers_token_calls_tools_as_its_subject(
    oauth: tuple[HttpServer, dict[str, str]], issuer: FakeIssuer
) -> None:
    server, env = oauth
    alice, bob = issuer.mint(), issuer.mint({"sub": "bob"})
    args = {"prompts": ["Is 17 prime?"], "models": ["openai/gpt-4o-mini", "openai/gpt-4o"]}
    async with server.client(alice) as client:
        asked = await client.call_tool("ask", {"prompt": "What causes tides?"})
        done = await client.call_tool("benchmark_models", args)
    job = (done.structured_content or {})["benchmark_id"]
    async with server.client(bob) as client:
        theirs = await client.call_tool("get_benchmark", {"benchmark_id": job})
        listing = await client.read_resource("benchmark://reports")
    assert not asked.is_error and not done.is_error, result_text(asked) + result_text(done)
    assert theirs.is_error and job not in json.dumps(listing.model_dump())
    assert "oauth:alice" in server.stderr  # the call log names the subject
    assert alice not in server.stderr and bob not in server.stderr
    quota = cli(env, "quota", "set", "alice", "--usd-per-day", "0.0000001")
    assert quota.returncode == 0, quota.stderr
    async with server.client(alice) as client:  # the subject's quota applies from its next request
        refused = await client.call_tool("ask", {"prompt": "What causes tides?", "model": "openai/gpt-4o-mini"})
    assert refused.is_error and "more than is left of your daily quota" in result_text(refused)
    assert "oauth:alice" in cli(env, "quota", "list").stdout


async def test_oauth_refusals_say_what_to_do(oauth: tuple[HttpServer, dict[str, str]], issuer: FakeIssuer) -> None:
    server, _ = oauth
    now = time.time()
    tokens = {
        "missing": None,
        "malformed": "not.a.jwt",
        "expired": issuer.mint({"exp": int(now) - 3600, "iat": int(now) - 7200}),
        "not yet valid": issuer.mint({"nbf": int(now) + 3600}),
        "wrong issuer": issuer.mint({"iss": "https://elsewhere.example"}),
        "wrong audience": issuer.mint({"aud": "https://other.example/mcp"}),
    }
    async with httpx.AsyncClient() as http:
        answers = {
            name: await http.post(
                server.url, json=PING, headers={**HEADERS, **({"Authorization": f"Bearer {t}"} if t else {})}
            )
            for name, t in tokens.items()
        }
        scopeless = await http.post(
            server.url, json=PING, headers={**HEADERS, "Authorization": f"Bearer {issuer.mint({'scope': 'other'})}"}
        )
        metadata = await http.get(f"http://127.0.0.1:{server.port}/.well-known/oauth-protected-resource/mcp")
        scraped = (await http.get(f"http://127.0.0.1:{server.port}/metrics")).text
    for name, answer in answers.items():
        assert answer.status_code == 401, name
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer") and "resource_metadata=" in challenge, (name, challenge)
    assert scopeless.status_code == 403 and 'error="insufficient_scope"' in scopeless.headers["www-authenticate"]
    found = metadata.json()
    assert metadata.status_code == 200 and [a.rstrip("/") for a in found["authorization_servers"]] == [issuer.issuer]
    assert found["scopes_supported"] == ["research"] and found["resource"].endswith("/mcp")
    for reason in ("missing", "malformed", "expired", "not_yet_valid", "wrong_issuer", "wrong_audience"):
        assert f'openrouter_mcp_auth_failures_total{{reason="{reason}"}} 1.0' in scraped, (reason, scraped)
    assert 'openrouter_mcp_auth_failures_total{reason="insufficient_scope"} 1.0' in scraped


async def test_oauth_a_rotated_key_is_taken_from_the_jwks(
    oauth: tuple[HttpServer, dict[str, str]], issuer: FakeIssuer
) -> None:
    server, _ = oauth
    async with server.client(issuer.mint()) as client:
        assert not (await client.call_tool("list_models", {"limit": 1})).is_error
    fetched = issuer.jwks_fetches
    issuer.rotate()  # a new key, with a kid the server has not seen
    async with server.client(issuer.mint()) as client:
        assert not (await client.call_tool("list_models", {"limit": 1})).is_error
    assert issuer.jwks_fetches == fetched + 1
