"""The upstream transport's small pools: a request goes to the least busy one and holds it until its response is
closed; sequential calls stay on one pool (one warm connection); a failed request gives its slot back."""

from __future__ import annotations

import httpx
import pytest

from openrouter_research_mcp.openrouter.pool import ShardedTransport


def _sharded(shards: int) -> tuple[ShardedTransport, list[int]]:
    sharded = ShardedTransport(shards, per_shard=1, keepalive_per_shard=1)
    served: list[int] = []

    def answer(index: int) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/fail":
                raise httpx.ConnectError("refused", request=request)
            served.append(index)
            return httpx.Response(200, stream=httpx.ByteStream(b"{}"))

        return httpx.MockTransport(handler)

    sharded.pools = [answer(i) for i in range(shards)]  # type: ignore[misc]
    return sharded, served


async def test_pool_requests_in_flight_spread_and_sequential_ones_stay() -> None:
    sharded, served = _sharded(3)
    request = httpx.Request("POST", "http://upstream/chat")
    open_ = [await sharded.handle_async_request(request) for _ in range(3)]  # three held at once: three pools
    assert served == [0, 1, 2] and sharded.busy == [1, 1, 1]
    await open_[1].aclose()
    await sharded.handle_async_request(request)  # the one that came free
    assert served[-1] == 1
    for response in open_:
        await response.aclose()
        await response.aclose()  # closing twice gives the slot back once
    assert sharded.busy == [0, 1, 0]
    served.clear()
    for _ in range(3):  # one after another: always the first pool
        await (await sharded.handle_async_request(request)).aclose()
    assert served == [0, 0, 0]


async def test_pool_a_failed_request_gives_its_slot_back() -> None:
    sharded, _served = _sharded(2)
    with pytest.raises(httpx.ConnectError):
        await sharded.handle_async_request(httpx.Request("POST", "http://upstream/fail"))
    assert sharded.busy == [0, 0]


async def test_pool_a_body_read_to_the_end_and_closed_frees_the_pool() -> None:
    sharded, _served = _sharded(2)
    response = await sharded.handle_async_request(httpx.Request("POST", "http://upstream/chat"))
    assert b"".join([chunk async for chunk in response.stream]) == b"{}"  # type: ignore[union-attr]
    assert sharded.busy == [1, 0]
    await response.aclose()
    assert sharded.busy == [0, 0]
