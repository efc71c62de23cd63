"""Slow clients bounded: uvicorn's HTTP protocols with the two timeouts they lack.

uvicorn closes a keep-alive connection left idle after a response, but a connection that sends a request's headers
a byte at a time (or nothing at all), or stops half-way through its body, holds its socket and its memory for as
long as it likes: a few hundred of them and the server is out of file descriptors (slowloris). Here a request's
headers must be complete within `HEADERS_S` of the connection or of their first byte, and its body within `BODY_S`
of its headers; a connection that misses either is closed (the app, if it was reading the body, sees the client
gone). Everyone else is served meanwhile: the checks are timers on the event loop, nothing waits.

`protocol()` is the one the server uses: httptools' parser (C, about a tenth less server CPU per call) where it is
installed, else h11's; both bounded alike.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BODY_S", "HEADERS_S", "BoundedH11", "protocol"]

log = logging.getLogger(__name__)

HEADERS_S = 10.0  # from a connection (or a request's first byte) to its complete headers
BODY_S = 30.0  # from a request's headers to the end of its body (4 MB at most: ~140 kB/s at the least)


class _Bounds:
    """The phase clocks a protocol arms and disarms (`loop`, `transport` and `client` are uvicorn's)."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None
    _bound: tuple[str, asyncio.TimerHandle] | None = None

    def _arm(self, phase: str, seconds: float) -> None:
        if self._bound is not None and self._bound[0] == phase:
            return  # the phase's clock started already: more bytes do not restart it
        self._disarm()
        self._bound = (phase, self.loop.call_later(seconds, self._expired, phase))

    def _disarm(self) -> None:
        if self._bound is not None:
            self._bound[1].cancel()
            self._bound = None

    def _expired(self, phase: str) -> None:
        self._bound = None
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.info("closed the connection of %s: its request's %s did not arrive in time", client, phase)
        self.transport.close()


class BoundedH11(_Bounds, H11Protocol):
    """h11's protocol, bounded (see the module docstring). `_loop` (a test's) schedules the timers."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers", HEADERS_S)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the timer the request's phase needs: headers while they are incomplete (idle keep-alive
        connections are uvicorn's own timer's), the body while it is arriving, none while the app answers."""
        state = self.conn.their_state
        if state is h11.IDLE and self.timeout_keep_alive_task is None and not self.transport.is_closing():
            self._arm("headers", HEADERS_S)
        elif state is h11.SEND_BODY:
            self._arm("body", BODY_S)
        else:
            self._disarm()


@functools.cache
def protocol() -> type[H11Protocol] | type[Any]:
    """The bounded protocol class for uvicorn's `http=`: httptools' where it is installed, else h11's."""
    if importlib.util.find_spec("httptools") is None:
        return BoundedH11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpTools(_Bounds, HttpToolsProtocol):
        """httptools' protocol, bounded: the parser says when a request begins, when its headers are complete
        and when its body is."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm("headers", HEADERS_S)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm("headers", HEADERS_S)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm("body", BODY_S)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return BoundedHttpTools
