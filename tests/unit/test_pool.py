"""The upstream transport (`openrouter/pool.py`) against a scripted HTTP server on loopback: keep-alive and its
limits, bodies as they arrive (Content-Length, chunked, larger than the read-ahead), the server closing or lying,
the timeouts, TLS, and asyncio and uvloop alike."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openrouter_research_mcp.openrouter import pool
from openrouter_research_mcp.openrouter.pool import Upstream

from ..support import eventually

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Scripted:
    """A loopback server: each request (head and Content-Length body) is handed to `answer`; connections and
    requests are counted."""

    def __init__(self, answer: Answer) -> None:
        self.answer, self.connections = answer, 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next((int(line[15:]) for line in lines if line.startswith(b"content-length:")), 0)
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.answer(request, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def scripted(answer: Answer, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[tuple[Scripted, str]]:
    server = Scripted(answer)
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=ssl_context)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield server, f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/api/v1/chat/completions"
    finally:
        for writer in server.writers:
            writer.close()
        listening.close()


async def ok(_request: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(OK)


def post(url: str, **timeouts: float) -> httpx.Request:
    request = httpx.Request("POST", url, headers={"Authorization": "Bearer sk-test"}, content=b'{"model": "m"}')
    request.extensions["timeout"] = httpx.Timeout(30, **timeouts).as_dict()
    return request


async def exchange(upstream: Upstream, request: httpx.Request) -> httpx.Response:
    response = await upstream.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


async def test_pool_sequential_calls_share_one_connection_and_send_the_request_whole() -> None:
    async with scripted(ok) as (server, url):
        upstream = Upstream()
        for _ in range(5):
            response = await exchange(upstream, post(url))
            assert response.status_code == 200 and response.json() == {}
            assert response.http_version == "HTTP/1.1" and response.reason_phrase == "OK"
        assert server.connections == 1 and upstream.connections == 1 and upstream.idle == 1
        head, body = server.requests[0].split(b"\r\n\r\n")
        assert head.startswith(b"POST /api/v1/chat/completions HTTP/1.1\r\n") and body == b'{"model": "m"}'
        lowered = head.lower()
        assert b"\r\nauthorization: bearer sk-test\r\n" in lowered
        assert f"\r\nhost: {url.split('/')[2]}\r\n".encode() in lowered
        await upstream.aclose()
        assert upstream.connections == 0


async def test_pool_chunked_answers_arrive_as_they_are_sent() -> None:
    more = asyncio.Event()

    async def chunked(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n")
        writer.write(b"6\r\ndata: \r\n")
        await writer.drain()
        await more.wait()
        writer.write(b"3\r\nhi\n\r\n0\r\n\r\n")

    async with scripted(chunked) as (server, url):
        upstream = Upstream()
        response = await upstream.handle_async_request(post(url))
        lines = response.aiter_lines()
        first = asyncio.ensure_future(lines.__anext__())
        await eventually(lambda: server.requests)
        more.set()  # the first piece was already readable before the rest was sent
        assert await first == "data: hi"
        await response.aclose()
        assert upstream.idle == 1  # read to its end: kept
        assert (await exchange(upstream, post(url))).text == "data: hi\n" and server.connections == 1
        await upstream.aclose()


async def test_pool_a_body_larger_than_the_read_ahead_arrives_intact() -> None:
    body = bytes(range(256)) * (pool.READ_AHEAD // 64)  # four times the read-ahead: reading pauses and resumes

    async def big(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    async with scripted(big) as (_server, url):
        upstream = Upstream()
        response = await upstream.handle_async_request(post(url))
        received = b""
        async for chunk in response.aiter_raw():
            received += chunk
            await asyncio.sleep(0)  # a slow reader
        await response.aclose()
        assert received == body and upstream.idle == 1
        await upstream.aclose()


async def test_pool_a_connection_the_server_closed_leaves_the_pool_and_the_next_call_opens_another() -> None:
    async with scripted(ok) as (server, url):
        upstream = Upstream()
        await exchange(upstream, post(url))
        server.writers[0].close()  # the server ends the idle connection
        await eventually(lambda: upstream.connections == 0)
        assert (await exchange(upstream, post(url))).status_code == 200
        assert server.connections == 2
        await upstream.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    ],
)
async def test_pool_an_answer_that_ends_the_connection_is_not_reused(answer: bytes) -> None:
    async def once(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)

    async with scripted(once) as (server, url):
        upstream = Upstream()
        for _ in range(2):
            assert (await exchange(upstream, post(url))).json() == {}
        assert server.connections == 2 and upstream.idle == 0
        await upstream.aclose()


async def test_pool_a_body_closed_unread_closes_its_connection() -> None:
    async def slow(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")  # half the body, then nothing

    async with scripted(slow) as (_server, url):
        upstream = Upstream()
        response = await upstream.handle_async_request(post(url))
        await response.aclose()
        assert upstream.idle == 0
        await eventually(lambda: upstream.connections == 0)


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (b"HTTP/1.1 2OO OK\r\n\r\n", httpx.RemoteProtocolError, "not valid HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Flood: %s\r\n" % (b"a" * 1000) * 70, httpx.RemoteProtocolError, "64 KiB"),
        (b"", httpx.RemoteProtocolError, "disconnected"),  # the server hangs up before answering
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", httpx.RemoteProtocolError, "disconnected"),
    ],
)
async def test_pool_a_broken_answer_is_an_httpx_error_and_its_connection_is_dropped(
    answer: bytes, error: type[Exception], words: str
) -> None:
    async def broken(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with scripted(broken) as (_server, url):
        upstream = Upstream()
        with pytest.raises(error, match=words):
            await exchange(upstream, post(url))
        await eventually(lambda: upstream.connections == 0)


async def test_pool_timeouts_read_pool_and_a_refused_connect() -> None:
    never = asyncio.Event()

    async def silent(_request: bytes, _writer: asyncio.StreamWriter) -> None:
        await never.wait()  # never answers: any timeout at all must fire

    async with scripted(silent) as (_server, url):
        upstream = Upstream(max_connections=1)
        with pytest.raises(httpx.ReadTimeout):
            await exchange(upstream, post(url, read=0.01))
        assert upstream.connections == 0
        held = asyncio.ensure_future(upstream.handle_async_request(post(url)))
        await eventually(lambda: upstream.connections == 1)
        with pytest.raises(httpx.PoolTimeout, match="busy"):
            await upstream.handle_async_request(post(url, pool=0.01))
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        assert upstream.connections == 0  # the cancelled call gave its slot back
    with pytest.raises(httpx.ConnectError):
        await exchange(Upstream(), post(url))  # the server is gone: refused


async def test_pool_a_waiting_call_gets_the_connection_given_back() -> None:
    async with scripted(ok) as (server, url):
        upstream = Upstream(max_connections=1)
        first = await upstream.handle_async_request(post(url))
        second = asyncio.ensure_future(exchange(upstream, post(url)))
        await asyncio.sleep(0)
        assert not second.done()
        await first.aread()
        await first.aclose()
        assert (await second).status_code == 200 and server.connections == 1
        await upstream.aclose()


async def test_pool_a_header_with_a_line_break_is_never_sent() -> None:
    async with scripted(ok) as (server, url):
        upstream = Upstream()
        request = post(url)
        request.headers["X-Evil"] = "a\r\nX-Injected: 1"
        with pytest.raises(httpx.LocalProtocolError, match="line break"):
            await exchange(upstream, request)
        assert server.requests == [] and upstream.connections == 0


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_pool_https_with_a_trusted_certificate_and_refused_with_an_untrusted_one(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    async with scripted(ok, served) as (server, url):
        trusting = ssl.create_default_context(cafile=str(cert))
        upstream = Upstream(ssl_context=trusting)
        for _ in range(2):
            assert (await exchange(upstream, post(url))).json() == {}
        assert server.connections == 1
        await upstream.aclose()
        with pytest.raises(httpx.ConnectError, match="SSL|certificate"):
            await exchange(Upstream(), post(url))  # httpx's trust (certifi) does not know this certificate


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_pool_serves_on_both_event_loops(run: Callable[[Awaitable[None]], None]) -> None:
    async def calls() -> None:
        async with scripted(ok) as (server, url):
            upstream = Upstream()
            for _ in range(3):
                assert (await exchange(upstream, post(url))).json() == {}
            assert server.connections == 1
            await upstream.aclose()

    run(calls())


# ---------------------------------------------------------------------------------------------------------------
# Found by a hostile review: each failed on the first version of the transport.


@pytest.mark.parametrize("apart", [False, True], ids=["one-write", "two-writes"])
async def test_pool_an_informational_answer_is_skipped_for_the_real_one(apart: bool) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"

    async def hints(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(early)
        if apart:
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(OK)

    async with scripted(hints) as (server, url):
        upstream = Upstream()
        for _ in range(2):
            response = await exchange(upstream, post(url))
            assert (response.status_code, response.content, response.reason_phrase) == (200, b"{}", "OK")
            assert "link" not in response.headers
        assert server.connections == 1
        await upstream.aclose()


async def test_pool_head_and_a_body_that_ends_with_the_connection() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        if request.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")  # the length a GET would have
        else:
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nhello")  # no length, no chunks: until the server closes
            await writer.drain()
            writer.close()

    async with scripted(answer) as (_server, url):
        upstream = Upstream()
        head = httpx.Request("HEAD", url)
        head.extensions["timeout"] = httpx.Timeout(30).as_dict()
        assert (await exchange(upstream, head)).content == b""
        assert (await exchange(upstream, post(url))).content == b"hello"
        await upstream.aclose()


async def test_pool_bytes_after_an_answer_stay_out_of_it_and_end_the_connection() -> None:
    async def extra(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK + b"HTTP/1.1 500 Evil\r\nContent-Length: 5\r\n\r\nEVIL!")

    async with scripted(extra) as (_server, url):
        upstream = Upstream()
        response = await exchange(upstream, post(url))
        assert (response.status_code, response.content, response.headers["content-length"]) == (200, b"{}", "2")
        assert upstream.idle == 0
        await eventually(lambda: upstream.connections == 0)


async def test_pool_a_streamed_upload_is_sent_in_chunked_framing() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"abc"

    async with scripted(ok) as (server, url):
        request = httpx.Request("POST", url, content=chunks())
        request.extensions["timeout"] = httpx.Timeout(30).as_dict()
        assert (await exchange(Upstream(), request)).status_code == 200
        head, _ = server.requests[0].split(b"\r\n\r\n", 1)
        assert b"transfer-encoding: chunked" in head.lower()
    # Scripted reads only Content-Length bodies: read the framing straight off a socket instead.
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        seen.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(OK)
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    request = httpx.Request("POST", f"http://127.0.0.1:{port}/x", content=chunks())
    request.extensions["timeout"] = httpx.Timeout(30).as_dict()
    await exchange(Upstream(), request)
    listening.close()
    assert seen == [b"3\r\nabc\r\n0\r\n\r\n"]


async def test_pool_a_waiter_woken_then_cancelled_passes_the_connection_on() -> None:
    async with scripted(ok) as (_server, url):
        upstream = Upstream(max_connections=1)
        first = await upstream.handle_async_request(post(url))
        second = asyncio.ensure_future(exchange(upstream, post(url)))
        third = asyncio.ensure_future(exchange(upstream, post(url, pool=30)))
        await eventually(lambda: len(upstream._waiters) == 2)
        await first.aread()
        await first.aclose()  # wakes the second waiter, which has not run yet…
        second.cancel()  # …and never will
        assert (await third).status_code == 200
        await upstream.aclose()


async def test_pool_a_method_that_is_no_http_token_is_never_sent() -> None:
    async with scripted(ok) as (server, url):
        request = httpx.Request("GET /a HTTP/1.1\r\nX-Injected: 1\r\nX:", url)
        with pytest.raises(httpx.LocalProtocolError, match="method"):
            await exchange(Upstream(), request)
        assert server.requests == []


async def test_pool_a_host_that_is_no_valid_name_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError):
        await exchange(Upstream(), post(f"http://{'a' * 64}.example.com/x"))


async def test_pool_a_connection_closed_just_after_its_answer_is_not_reused() -> None:
    """The server's close is in the socket (not yet seen by the event loop) when the next call comes."""
    closed: list[int] = []

    async def once(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)  # keep-alive by its headers, yet closed at once
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.append(1)

    async with scripted(once) as (server, url):
        upstream = Upstream()
        for calls in range(1, 6):
            assert (await exchange(upstream, post(url))).status_code == 200
            await eventually(lambda: len(closed) >= calls)  # noqa: B023 - awaited within the iteration
        assert server.connections == 5


async def test_pool_an_unread_body_that_paused_reading_leaves_no_paused_connection() -> None:
    big = b"x" * (pool.READ_AHEAD + 100_000)

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big) if b"/big" in request else OK)

    async with scripted(answer) as (_server, url):
        upstream = Upstream()
        response = await upstream.handle_async_request(post(url.replace("/chat/completions", "/big")))
        connection = response.stream.connection  # type: ignore[union-attr]
        await eventually(lambda: connection.paused)
        while connection.chunks:
            connection.take()  # read on, unseen, until it all came
            await asyncio.sleep(0)
        await eventually(lambda: connection.complete)
        await response.aclose()
        assert (await exchange(upstream, post(url, read=5))).content == b"{}"
        await upstream.aclose()


async def test_pool_a_protocol_switch_and_a_closed_transport_are_refused() -> None:
    async def upgrade(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")

    async with scripted(upgrade) as (_server, url):
        with pytest.raises(httpx.RemoteProtocolError, match="101"):
            await exchange(Upstream(), post(url))
    async with scripted(ok) as (_server, url):
        upstream = Upstream(max_connections=1)
        held = await upstream.handle_async_request(post(url))
        waiting = asyncio.ensure_future(upstream.handle_async_request(post(url)))
        await eventually(lambda: upstream._waiters)
        await upstream.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await waiting
        await held.aclose()
