"""The upstream connections: several small httpx pools behind one transport.

httpcore's pool re-examines every connection it holds whenever a request arrives or a response ends (each idle
connection with a `poll` system call, and a count over all connections for each one), so its cost per request
grows with the connections it holds. One pool of 64 connections under 200 concurrent calls spent about two thirds
of the server's CPU choosing connections (`bench/remote.py`, profiled). Here each request goes to the least busy
of `shards` pools of `per_shard` connections: the same number of connections upstream, an eighth of the work per
request. Imported on first use, like httpx itself (`client._httpx`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

__all__ = ["KEEPALIVE", "PER_SHARD", "SHARDS", "ShardedTransport"]

SHARDS, PER_SHARD, KEEPALIVE = 8, 8, 4  # 64 connections upstream at most, 32 kept open while idle


class ShardedTransport(httpx.AsyncBaseTransport):
    """`shards` pools of at most `per_shard` connections; a request goes to the pool with the fewest requests in
    flight (the first of them, so sequential calls reuse one warm connection), and counts as in flight until its
    response is closed."""

    def __init__(self, shards: int, per_shard: int, keepalive_per_shard: int) -> None:
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=keepalive_per_shard)
        self.pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(max(1, shards))]
        self.busy = [0] * len(self.pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1
        try:
            response = await self.pools[index].handle_async_request(request)
        except BaseException:
            self.busy[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)  # an async transport's body
        response.stream = _Held(response.stream, self, index)
        return response

    def release(self, index: int) -> None:
        self.busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


class _Held(httpx.AsyncByteStream):
    """A response body that gives its pool's slot back once, when it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, owner: ShardedTransport, index: int) -> None:
        self.inner, self.owner, self.index, self.open = inner, owner, index, True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            if self.open:
                self.open = False
                self.owner.release(self.index)
