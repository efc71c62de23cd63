"""The open sign-in endpoints' bound per address (`remote/throttle.py`), for the addresses one abuser holds many of:
an IPv6 /64 counts as one address, and an IPv4 address written as IPv6 as itself. On a clock the test moves."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from openrouter_research_mcp.remote.throttle import BURST, SignInThrottle, bucket_of


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttled() -> SignInThrottle:
    async def ok(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return SignInThrottle(Starlette(routes=[Route("/register", ok, methods=["POST"])]), clock=Clock())


async def register_from(asgi: SignInThrottle, address: str) -> int:
    transport = httpx.ASGITransport(app=asgi, client=(address, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as http:
        return (await http.post("/register")).status_code


async def test_throttle_counts_an_ipv6_64_as_one_address() -> None:
    asgi = throttled()
    answers = [await register_from(asgi, f"2001:db8:0:7::{i:x}") for i in range(1, BURST + 2)]
    assert answers[:BURST] == [200] * BURST and answers[BURST] == 429  # each a new address, one /64
    assert await register_from(asgi, "2001:db8:0:7:ffff:ffff:ffff:ffff") == 429
    assert await register_from(asgi, "2001:db8:0:8::1") == 200  # the next /64: someone else


async def test_throttle_counts_an_ipv4_address_written_as_ipv6_as_itself() -> None:
    asgi = throttled()
    for _ in range(BURST):
        assert await register_from(asgi, "203.0.113.7") == 200
    assert await register_from(asgi, "::ffff:203.0.113.7") == 429
    assert await register_from(asgi, "203.0.113.8") == 200


def test_throttle_buckets_by_address() -> None:
    assert bucket_of("203.0.113.7") == "203.0.113.7"
    assert bucket_of("[2001:db8::1]") == bucket_of("2001:db8::2") == "2001:db8::/64"
    assert bucket_of("::ffff:203.0.113.7") == "203.0.113.7"
    assert bucket_of("unknown") == "unknown"  # no address (a socket of this machine): one bucket, as before
