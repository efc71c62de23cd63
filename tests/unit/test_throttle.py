"""`remote/throttle.py`: the open sign-in endpoints bounded per address, on a clock the test moves."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from openrouter_research_mcp.remote import throttle
from openrouter_research_mcp.remote.throttle import BURST, PER_MINUTE, SignInThrottle


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def app() -> tuple[SignInThrottle, list[str], Clock]:
    reached: list[str] = []

    async def ok(request: Request) -> PlainTextResponse:
        reached.append(request.url.path)
        return PlainTextResponse("ok")

    routes = [Route(path, ok, methods=["GET", "POST"]) for path in ("/register", "/authorize", "/mcp", "/token")]
    clock = Clock()
    return SignInThrottle(Starlette(routes=routes), clock=clock), reached, clock


def client(asgi: SignInThrottle, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi, client=(address, 5000)), base_url="http://s")


async def test_an_address_past_its_bucket_gets_429_and_others_go_on() -> None:
    asgi, reached, clock = app()
    async with client(asgi, "203.0.113.7") as abuser, client(asgi, "198.51.100.1") as other:
        answers = [await abuser.post("/register") for _ in range(BURST)]
        assert {a.status_code for a in answers} == {200} and len(reached) == BURST
        refused = await abuser.get("/authorize")  # one bucket for both paths
        assert refused.status_code == 429 and len(reached) == BURST  # nothing reached the app
        assert refused.headers["retry-after"] == str(round(60 / PER_MINUTE))
        assert "Too many sign-in requests from your address" in refused.json()["error_description"]
        assert (await abuser.post("/token")).status_code == 200 and (await abuser.post("/mcp")).status_code == 200
        assert (await other.post("/register")).status_code == 200  # another address: its own bucket
        clock.now += 60 / PER_MINUTE  # one request's worth comes back
        assert (await abuser.get("/authorize")).status_code == 200
        assert (await abuser.get("/authorize")).status_code == 429
        clock.now += 3600  # refilled to the burst, no more
        assert [(await abuser.post("/register")).status_code for _ in range(BURST + 1)][-2:] == [200, 429]


async def test_the_buckets_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Addresses beyond MAX_ADDRESSES: full buckets are forgotten first, then the oldest half."""
    monkeypatch.setattr(throttle, "MAX_ADDRESSES", 4)
    asgi, _reached, clock = app()
    for i in range(25):
        async with client(asgi, f"192.0.2.{i}") as one:
            assert (await one.post("/register")).status_code == 200
        clock.now += 0.001
        assert len(asgi._buckets) <= 4
