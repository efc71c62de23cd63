"""The upstream connections: HTTP/1.1 keep-alive connections on asyncio protocols, answers parsed by httptools.

Why not httpcore, httpx's own transport: a chat POST on loopback costs about 0.6 ms of the server's CPU through it
(its pool, h11 in pure Python, anyio's stream wrappers), 0.36 ms through aiohttp behind httpx (httpx-aiohttp), and
about 0.16 ms here (`.venv/bin/python -m bench.remote upstream`), where the server's whole budget per `ask` is 1.5
ms (issue 19). The HTTP parsing, the part that is hard to get right, is httptools' (llhttp, Node's parser, in C);
this module keeps the connections. Its pool is O(1) per request: it takes the last idle connection to the same
origin, and an idle one that the server closed has left the pool when its close arrived (httpcore polls every idle
connection instead).

What it does: HTTP/1.1 with Content-Length or chunked answers; TLS with httpx's trust (certifi, or SSL_CERT_FILE);
connect, read and pool timeouts from httpx's `Timeout`; at most `max_connections`, at most `max_idle` kept idle for
`idle_expiry` seconds (and an idle one is looked at before reuse: one that is closing, or has bytes or an EOF
waiting, is dropped, as httpcore does); informational (1xx) answers skipped; HEAD; bodies that end with the
connection. What it does not: HTTP/2, protocol upgrades, proxies (the client mounts httpx's own proxy transports
for a proxied URL), streamed uploads (a request body is read whole first, and sent chunked in one chunk when its
headers say chunked). Its failures are httpx's exceptions, so the
client's handling (`client._transport_error`) is the same whichever transport answered.
"""

from __future__ import annotations

import asyncio
import collections
import re
import select
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httptools
import httpx

__all__ = ["IDLE_EXPIRY_S", "MAX_CONNECTIONS", "MAX_IDLE", "Upstream"]

MAX_CONNECTIONS, MAX_IDLE, IDLE_EXPIRY_S = 64, 32, 5.0  # as httpx's pool: 5 s idle, then closed
READ_AHEAD = 256 * 1024  # answer bytes buffered before the socket is paused until the reader catches up
MAX_HEAD = 64 * 1024  # an answer's status line and headers, at most (h11, under httpcore, allows 16 KiB)
_FORBIDDEN = frozenset(b"\r\n\0")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

Origin = tuple[str, str, int]


def _switched() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError("The upstream switched protocols (101), which this client never asks for.")


def _lost() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError("Server disconnected without sending a complete response.")


class _Connection(asyncio.Protocol):
    """One connection: the bytes of one answer at a time, handed to the task waiting on them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin, on_close: Callable[[_Connection], None]):
        self.loop, self.origin, self.on_close = loop, origin, on_close
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.active = False  # an exchange is under way (idle connections get no bytes, or are closed)
        self.head_request = False
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.head_size = 0
        self.refused = ""
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.informational = False
        self.until_close = False

    # ------------------------------------------------------------------------------------------- the protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport's kin

    def data_received(self, data: bytes) -> None:
        if not self.active:  # bytes nobody asked for: the connection cannot be trusted with the next exchange
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(_switched())
            self.close()
        except httptools.HttpParserError as exc:
            if self.complete:  # bytes after the answer (another message, unasked for): it stands; the connection goes
                self.keep_alive = False
                self.close()
                return
            why = self.refused or str(exc)
            self._fail(httpx.RemoteProtocolError(f"The upstream's answer was not valid HTTP/1.1 ({why})."))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active and not self.complete and exc is None and self.status and self.until_close:
            self.complete = True  # a body that ends with the connection
            self._wake()
        if self.active and not self.complete:
            error = httpx.ReadError(str(exc)) if exc is not None else _lost()
            self._fail(error)
        self.on_close(self)

    def pause_writing(self) -> None:  # a request body larger than the socket's buffer: the kernel takes it in time
        pass

    def resume_writing(self) -> None:
        pass

    # ----------------------------------------------------------------------------------- the parser's callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            raise ValueError("bytes after the answer")

    def on_status(self, reason: bytes) -> None:
        self._count_head(reason)
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(name + value)
        self.headers.append((name, value))

    def _count_head(self, piece: bytes) -> None:
        self.head_size += len(piece)
        if self.head_size > MAX_HEAD:  # raised through feed_data (as a callback error): refused, closed
            self.refused = f"its headers were longer than {MAX_HEAD // 1024} KiB"
            raise ValueError(self.refused)

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status == 101:
            self._fail(_switched())
            raise ValueError("a protocol switch")  # stops the parser: data_received closes the connection
        if 100 <= status < 200:  # informational: skip it, the real answer follows
            self.informational = True
            self.reason, self.headers = b"", []
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the message is complete
        names = {name.lower() for name, _ in self.headers}
        self.until_close = not self.keep_alive and b"content-length" not in names and b"transfer-encoding" not in names
        if self.head_request:  # no body, whatever Content-Length says; the parser expects one, so no reuse
            self.complete, self.keep_alive = True, False
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > READ_AHEAD and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.complete = True
        self._wake()

    # --------------------------------------------------------------------------------------- for the transport

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _timed_out(self, waiter: asyncio.Future[None], what: str) -> None:
        if not waiter.done():
            waiter.set_exception(httpx.ReadTimeout(f"The upstream sent no {what} in time."))

    async def wait(self, timeout: float | None, what: str) -> None:
        """Until something arrives (bytes, the end, an error), or ReadTimeout after `timeout` seconds."""
        if self.error is not None:
            raise self.error
        waiter = self.waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, self._timed_out, waiter, what)
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None and not self.chunks and not self.complete:
            raise self.error

    def take(self) -> bytes:
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered <= READ_AHEAD // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    def begin(self, data: bytes, head_request: bool = False) -> None:
        assert self.transport is not None
        if self.paused:
            self.transport.resume_reading()
        self._reset()
        self.head_request = head_request
        self.active = True
        self.transport.write(data)

    def quiet(self) -> bool:
        """Idle, not closing, and nothing (an EOF, stray bytes) waiting in its socket."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return True
        try:
            return not select.select([sock.fileno()], [], [], 0)[0]
        except (OSError, ValueError):
            return False

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()  # connection_lost follows, once


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives; its connection goes back to the pool when the body is read whole and
    closed, and is closed otherwise."""

    def __init__(self, pool: Upstream, connection: _Connection, timeout: float | None) -> None:
        self.pool, self.connection, self.timeout, self.done = pool, connection, timeout, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self.connection
        while True:
            if connection.chunks:
                yield connection.take()
            elif connection.complete:
                return
            else:
                await connection.wait(self.timeout, "more of its answer")

    async def aclose(self) -> None:
        if not self.done:
            self.done = True
            self.pool.release(self.connection)


class Upstream(httpx.AsyncBaseTransport):
    """The transport: see the module docstring."""

    def __init__(
        self,
        max_connections: int = MAX_CONNECTIONS,
        max_idle: int = MAX_IDLE,
        idle_expiry: float = IDLE_EXPIRY_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections, self.max_idle, self.idle_expiry = max_connections, max_idle, idle_expiry
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()  # every connection counted against max_connections
        self._connecting = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    @property
    def connections(self) -> int:
        """Connections open or being opened."""
        return len(self._open) + self._connecting

    @property
    def idle(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:  # ~80 ms to build: not before the first HTTPS call
            self._ssl = httpx.create_ssl_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    # --------------------------------------------------------------------------------------------- requests

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("The upstream transport is closed.")
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"The URL {url} is not http or https.")
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        body = await request.aread()
        if request.headers.get("transfer-encoding", "").lower() == "chunked":
            body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        data = self._head(request) + body
        connection = await self._acquire(origin, timeouts.get("pool"), timeouts.get("connect"))
        read = timeouts.get("read")
        try:
            connection.begin(data, request.method == "HEAD")
            while not connection.status:
                await connection.wait(read, "answer")
        except BaseException:
            self._discard(connection)
            raise
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=_Body(self, connection, read),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": connection.reason.strip()},
        )

    @staticmethod
    def _head(request: httpx.Request) -> bytes:
        if not _TOKEN.fullmatch(request.method):
            raise httpx.LocalProtocolError("The request method is not an HTTP token; it was not sent.")
        lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
        for name, value in request.headers.raw:
            if _FORBIDDEN.intersection(name) or _FORBIDDEN.intersection(value):
                raise httpx.LocalProtocolError("A request header held a line break or NUL; it was not sent.")
            lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(b"\r\n")
        return b"".join(lines)

    # ----------------------------------------------------------------------------------------------- the pool

    async def _acquire(self, origin: Origin, pool_timeout: float | None, connect_timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.closed and loop.time() - connection.idle_since <= self.idle_expiry and connection.quiet():
                return connection
            self._discard(connection)
        while self.connections >= self.max_connections:
            if self._evict_one():
                continue
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(pool_timeout):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    self._notify()  # woken, then cancelled or timed out: pass the wake-up on
                if not isinstance(exc, TimeoutError):
                    raise
                raise httpx.PoolTimeout("Every upstream connection stayed busy for the time allowed.") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if self._closed:
                raise RuntimeError("The upstream transport is closed.")
            idle = self._idle.get(origin)
            if idle:
                return await self._acquire(origin, pool_timeout, connect_timeout)
        self._connecting += 1
        try:
            return await self._connect(loop, origin, connect_timeout)
        finally:
            self._connecting -= 1
            self._notify()

    async def _connect(self, loop: asyncio.AbstractEventLoop, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        context = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, origin, self._closed_one),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"Could not connect to {host}:{port} in time.") from None
        except (OSError, UnicodeError) as exc:  # refused, unreachable, no such host (or no valid name), a certificate
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        self._open.add(connection)
        return connection

    def release(self, connection: _Connection) -> None:
        """An exchange is over: keep the connection for the next if it can serve one, else close it."""
        connection.active = False
        idle = self._idle.setdefault(connection.origin, [])
        if self._closed or not connection.reusable() or self.idle >= self.max_idle:
            self._discard(connection)
            return
        connection.idle_since = asyncio.get_running_loop().time()
        idle.append(connection)
        self._notify()

    def _discard(self, connection: _Connection) -> None:
        connection.active = False
        connection.close()
        self._closed_one(connection)

    def _closed_one(self, connection: _Connection) -> None:
        """A connection is gone (closed by us, or by the server): out of the pool, its slot free."""
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)
        if connection in self._open:
            self._open.discard(connection)
            self._notify()

    def _evict_one(self) -> bool:
        """Close an idle connection (to another origin) to make room; whether there was one."""
        for idle in self._idle.values():
            if idle:
                self._discard(idle.pop(0))
                return True
        return False

    def _notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        for waiter in self._waiters:  # they find the transport closed
            if not waiter.done():
                waiter.set_result(None)
        for connection in list(self._open):
            if not connection.active:
                self._discard(connection)
        self._idle.clear()
