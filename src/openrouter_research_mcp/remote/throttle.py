"""Sign-in requests bounded per address: with `OPENROUTER_MCP_AUTH=openrouter` anyone may call `/register` (RFC
7591 dynamic registration) and `/authorize` without a token, each a row in the accounts database. So one address
gets a bucket of BURST requests to those two, refilled at PER_MINUTE; past it, 429 with `Retry-After`, and nothing
is stored. A person signs in once a month (refresh tokens last 30 days); a team behind one address shares a bucket,
which is why it is roomy. The address is the one uvicorn reports: the peer's, or the `X-Forwarded-For` of a proxy
it trusts (`FORWARDED_ALLOW_IPS`, 127.0.0.1 by default). An IPv6 address counts by its /64 (`IPV6_PREFIX`): one
home or one server is given a whole /64, so counting each of its addresses would be no bound at all; an IPv4 address
written as IPv6 (`::ffff:203.0.113.7`) counts as itself.

In memory, per process: each replica bounds what reaches it. At most MAX_ADDRESSES buckets are kept; full ones
are forgotten first (a full bucket is what a new address gets anyway).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from .. import _metrics

__all__ = ["BURST", "IPV6_PREFIX", "PATHS", "PER_MINUTE", "SignInThrottle", "bucket_of"]

log = logging.getLogger(__name__)

PATHS = frozenset({"/register", "/authorize"})
BURST = 30
PER_MINUTE = 30.0
MAX_ADDRESSES = 100_000
IPV6_PREFIX = 64


def bucket_of(address: str) -> str:
    """The bucket an address counts in: itself for IPv4, its /64 for IPv6, and as given when it is no address."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


class SignInThrottle:
    """ASGI middleware: requests to PATHS beyond an address's bucket get 429 (see the module docstring)."""

    def __init__(self, app: ASGIApp, clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.clock = app, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens left, when counted)

    def _take(self, address: str) -> float:
        """0 when `address` may go on (one token taken), else the seconds until it may."""
        now, rate = self.clock(), PER_MINUTE / 60
        left, then = self._buckets.get(address, (float(BURST), now))
        left = min(float(BURST), left + max(0.0, now - then) * rate)
        if left < 1:
            self._buckets[address] = (left, now)
            return (1 - left) / rate
        if address not in self._buckets and len(self._buckets) >= MAX_ADDRESSES:
            self._forget_full(now, rate)
        self._buckets[address] = (left - 1, now)
        return 0.0

    def _forget_full(self, now: float, rate: float) -> None:
        self._buckets = {a: (n, t) for a, (n, t) in self._buckets.items() if n + (now - t) * rate < BURST}
        if len(self._buckets) >= MAX_ADDRESSES:  # all still counting: the oldest half go
            kept = sorted(self._buckets.items(), key=lambda item: item[1][1])[len(self._buckets) // 2 :]
            self._buckets = dict(kept)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = self._take(bucket_of(address))
        if not wait:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        _metrics.signin("throttled")
        log.warning("too many sign-in requests from %s: %s refused for %d s", address, scope["path"], seconds)
        body = json.dumps(
            {
                "error": "temporarily_unavailable",
                "error_description": f"Too many sign-in requests from your address; try again in {seconds} s.",
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(seconds).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
