"""The balancer of `tests/services.py` (and so of `deploy/nginx.conf`), for real: Debian's nginx in front of two tiny
HTTP servers on loopback. Requests alternate between them over kept-alive connections, the headers the replicas
rely on arrive, a streamed (SSE) response comes through piece by piece, not buffered until it ends, and a large
body passes (spooled to nginx's temp dir).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from ..services import nginx, skip_without_nginx

PIECES = 3
RELEASE_S = 10.0  # how long the stream waits for the caller to have read a piece before sending the next


@dataclass
class Upstream:
    """One tiny HTTP/1.1 server: who it saw (by connection) and, for `/stream`, an event per piece the caller read."""

    name: str
    port: int = 0
    connections: set[tuple[str, int]] = field(default_factory=set)
    headers: list[dict[str, str]] = field(default_factory=list)
    released: list[threading.Event] = field(default_factory=lambda: [threading.Event() for _ in range(PIECES)])
    unreleased: list[int] = field(default_factory=list)


def handler_for(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream connections expect

        def do_GET(self) -> None:
            upstream.connections.add(self.client_address)
            upstream.headers.append(dict(self.headers.items()))
            if self.path == "/stream":
                self.stream()
                return
            body = upstream.name.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            """Answer how many bytes of body arrived."""
            body = str(len(self.rfile.read(int(self.headers["Content-Length"])))).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def stream(self) -> None:
            """SSE, one chunk per event; each next event only once the caller has read the one before (or after
            RELEASE_S, noted in `unreleased`), so a buffering proxy could not pass the test by luck."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in range(PIECES):
                event = f"data: {upstream.name} {piece}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                if not upstream.released[piece].wait(RELEASE_S):
                    upstream.unreleased.append(piece)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test asserts on what the servers saw, not on their logs."""

    return Handler


@contextmanager
def upstream_servers(*names: str) -> Iterator[list[Upstream]]:
    """Start one tiny server per name on a free loopback port, in threads; stop them on exit."""
    servers: list[ThreadingHTTPServer] = []
    upstreams = [Upstream(name) for name in names]
    try:
        for upstream in upstreams:
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(upstream))
            upstream.port = server.server_address[1]
            servers.append(server)
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        yield upstreams
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@contextmanager
def balanced(*names: str) -> Iterator[tuple[str, list[Upstream]]]:
    """nginx over one tiny server per name: its base URL and the servers."""
    skip_without_nginx()
    with upstream_servers(*names) as upstreams, nginx([f"127.0.0.1:{u.port}" for u in upstreams]) as url:
        yield url, upstreams


def test_nginx_spreads_requests_round_robin_over_kept_alive_connections() -> None:
    with balanced("a", "b") as (url, upstreams), httpx.Client(base_url=url, timeout=10) as client:
        answers = [client.get("/name").text for _ in range(10)]
    assert collections.Counter(answers) == {"a": 5, "b": 5}
    assert all(one != next_one for one, next_one in zip(answers, answers[1:], strict=False)), answers
    # HTTP/1.1 keep-alive to the upstreams: ten requests, one connection to each server.
    assert [len(u.connections) for u in upstreams] == [1, 1]


def test_nginx_passes_host_with_its_port_and_the_forwarded_headers() -> None:
    with balanced("a", "b") as (url, upstreams), httpx.Client(base_url=url, timeout=10) as client:
        client.get("/name")
    seen = next(h for u in upstreams for h in u.headers)
    # The replicas check Host against OPENROUTER_MCP_PUBLIC_URL, port included (DNS rebinding protection).
    assert seen["Host"] == url.removeprefix("http://")
    assert seen["X-Forwarded-For"] == "127.0.0.1" and seen["X-Forwarded-Proto"] == "http"
    assert "Connection" not in seen  # not "close": the connection to the upstream is kept


def test_nginx_passes_a_streamed_response_through_piece_by_piece() -> None:
    with balanced("a", "b") as (url, upstreams), httpx.Client(base_url=url, timeout=10) as client:
        with client.stream("GET", "/stream") as response:
            assert response.headers["content-type"] == "text/event-stream"
            events: list[str] = []
            for line in response.iter_lines():
                if not line:
                    continue
                events.append(line)
                served = next(u for u in upstreams if line.startswith(f"data: {u.name} "))
                served.released[len(events) - 1].set()  # read: now the server may send the next piece
    assert [event.rsplit(" ", 1)[1] for event in events] == [str(piece) for piece in range(PIECES)]
    assert all(not u.unreleased for u in upstreams), "a piece reached the caller only after the next was sent"


def test_nginx_passes_a_body_it_must_spool_to_its_temp_dir() -> None:
    """Bigger than nginx's default 1 MB limit and its in-memory buffer: written to client_body_temp_path, which the
    worker (root's workers would be `nobody`) must be able to write."""
    body = b"x" * 3_000_000
    with balanced("a") as (url, _), httpx.Client(base_url=url, timeout=10) as client:
        response = client.post("/echo", content=body)
    assert response.status_code == 200 and response.text == str(len(body))
