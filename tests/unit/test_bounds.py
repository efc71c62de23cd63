"""Slow clients are cut off by the HTTP protocol's own timers, driven here by a loop the test steps by hand: headers
must arrive within HEADERS_S, a body within BODY_S of its headers; more bytes never restart a phase's clock. Each
case runs on both bounded protocols: httptools' (the server's) and h11's (where httptools does not install)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from openrouter_research_mcp.remote.bounds import BODY_S, HEADERS_S, BoundedH11, protocol


class Timer:
    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.when, self.callback, self.args, self.cancelled = when, callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    """Just what the protocol asks of a loop: timers (stepped by `advance`) and tasks (never run)."""

    def __init__(self) -> None:
        self.now, self.timers = 0.0, list[Timer]()

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(self.now + delay, callback, args)
        self.timers.append(timer)
        return timer

    def create_task(self, coro: Any) -> Any:
        coro.close()  # the app is not run: the test is about the bytes before it
        return _Task()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in [t for t in self.timers if not t.cancelled and t.when <= self.now]:
            timer.cancelled = True
            timer.callback(*timer.args)


class _Task:
    def add_done_callback(self, _fn: Callable[..., None]) -> None:
        pass


class Transport:
    def __init__(self) -> None:
        self.closed, self.written = False, b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        self.written += data

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never run (see Loop)
    pass


def test_bounds_the_server_parses_with_httptools() -> None:
    assert protocol().__name__ == "BoundedHttpTools"  # httptools is a dependency: h11 is the fallback only


@pytest.fixture(params=["httptools", "h11"])
def connection(request: pytest.FixtureRequest) -> tuple[Any, Loop, Transport]:
    kind: Any = protocol() if request.param == "httptools" else BoundedH11
    config = uvicorn.Config(_app, http=kind, log_config=None)
    config.load()
    loop, transport = Loop(), Transport()
    bounded = kind(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    bounded.connection_made(transport)
    return bounded, loop, transport


def test_bounds_headers_sent_a_byte_at_a_time_are_cut_off(connection: tuple[Any, Loop, Transport]) -> None:
    protocol, loop, transport = connection
    request = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    for byte in request:  # a byte a second: each one is progress, none restarts the clock
        protocol.data_received(bytes([byte]))
        loop.advance(HEADERS_S / len(request) * 0.99)
        assert not transport.closed
    loop.advance(HEADERS_S * 0.02)
    assert transport.closed


def test_bounds_a_connection_that_sends_nothing_is_closed(connection: tuple[Any, Loop, Transport]) -> None:
    _protocol, loop, transport = connection
    loop.advance(HEADERS_S - 0.1)
    assert not transport.closed
    loop.advance(0.2)
    assert transport.closed


def test_bounds_a_body_that_stops_half_way_is_cut_off(connection: tuple[Any, Loop, Transport]) -> None:
    protocol, loop, transport = connection
    protocol.data_received(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    loop.advance(HEADERS_S * 2)  # the headers were complete: their clock stopped; the body's runs
    assert not transport.closed
    protocol.data_received(b"x" * 10)
    loop.advance(BODY_S - HEADERS_S * 2 + 0.1)
    assert transport.closed


def test_bounds_a_prompt_request_is_never_cut_off(connection: tuple[Any, Loop, Transport]) -> None:
    protocol, loop, transport = connection
    protocol.data_received(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 4\r\n\r\nabcd")
    loop.advance(BODY_S * 10)  # the app takes its time to answer: that is no client's fault
    assert not transport.closed


def test_bounds_the_server_may_hold_as_many_connections_as_the_system_lets_it() -> None:
    import resource

    from openrouter_research_mcp.remote.http import more_files

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))  # a low soft limit, as systemd's 1,024
    try:
        more_files()
        raised, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert raised == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
