"""The HTTP side of the fake OpenRouter: a `ThreadingHTTPServer` and its handler, routing and the chat flow.

A chat request is checked (`checks`), a fault is taken, the fallback walk picks the model that answers (`model`
first, then `models` in order, skipping unknown ids, rejected candidates and those with a "model_down" fault), the
latency passes (keep-alive comments meanwhile when streaming), and the answer (`answers`) goes out whole or as
events (`stream`), paced at the model's tokens-per-second rate when it has one.
"""

from __future__ import annotations

import json
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .checks import model_rejection, request_rejection
from .common import ACCOUNT_DEFAULT_MODEL, API_PREFIX, MESSAGES, Fault, Recorded, Rejection, last_prompt
from .stream import PROCESSING, events

if TYPE_CHECKING:
    from .openrouter import FakeOpenRouter

__all__ = ["FakeServer", "normal_path"]

PACED_PIECE_CHARS = 16  # about 4 tokens an event when a stream is paced, so its rate is smooth
_ANSWER_FAULTS = ("bad_json", "wrong_json")  # faults that spoil the answer but not the exchange


def normal_path(path: str) -> str:
    return path.removeprefix(API_PREFIX) if path.startswith(API_PREFIX + "/") else path


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under a benchmark's burst of connections

    def __init__(self, fake: FakeOpenRouter, port: int) -> None:
        self.fake = fake
        self.live: dict[socket.socket, threading.Thread] = {}
        self.live_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is normal here; a bug in the fake is not
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's pool expects
    server: FakeServer
    record: Recorded
    fault: Fault | None = None

    def setup(self) -> None:
        super().setup()
        # Small writes (headers, SSE events) go out at once: without this, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to some requests, which real OpenRouter does not.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.live_lock:
            self.server.live[self.connection] = threading.current_thread()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.live_lock:
                self.server.live.pop(self.connection, None)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - keep test output quiet
        return

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # ------------------------------------------------------------------------------------------------ writing

    def _send(
        self, status: int, data: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        self.record.status, self.record.finished = status, time.monotonic()  # before the client can see it
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _error(
        self,
        status: int,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        error = error or {"code": status, "message": message or MESSAGES.get(status, "Error")}
        self._json(status, {"error": error, "user_id": "user_fake"}, headers)

    def _reject(self, rejection: Rejection) -> None:
        self._error(rejection.status, error=rejection.error())

    def _open_stream(self, generation_id: str) -> None:
        self.record.status = 200
        self.send_response(200)
        for name, value in (
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("Transfer-Encoding", "chunked"),
            ("X-Generation-Id", generation_id),
        ):
            self.send_header(name, value)
        self.end_headers()

    def _event(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.record.finished = time.monotonic()
        self._event("")  # the zero-length chunk that ends the HTTP body

    def _wait(self, seconds: float, keepalive: bool = False) -> bool:
        """Sleep, unless stop() comes first (then True); a stream gets a keep-alive comment every interval."""
        fake = self.server.fake
        stopping, end, interval = fake.stopping, time.monotonic() + seconds, fake.keepalive_interval
        while keepalive and end - time.monotonic() > interval:
            if stopping.wait(interval):
                return True
            self._event(PROCESSING)
        return stopping.wait(max(end - time.monotonic(), 0.0))

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        try:
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _held(self) -> bool:
        """Wait while the test holds answers; False when the fake stops or the client hangs up first (then no
        answer is made, and nothing is billed)."""
        fake = self.server.fake
        while not fake._may_answer():
            if fake.stopping.wait(0.02) or self._client_gone():
                return False
        return True

    def _hang(self) -> None:
        """Never answer: return when stop() is called or the client hangs up."""
        while not self._wait(0.05):
            if self._client_gone():
                break
        self.close_connection = True

    # ------------------------------------------------------------------------------------------------ routing

    def _dispatch(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.record = Recorded(
            self.command,
            normal_path(url.path),
            url.query,
            {k.lower(): v for k, v in self.headers.items()},
            body,
            body.get("model") if isinstance(body, dict) else None,
            time.monotonic(),
        )
        fake._record(self.record)
        try:
            self._route(self.record.path, parse_qs(url.query), body, bool(raw))
            self.wfile.flush()
        except OSError:  # the client went away
            self.close_connection = True
        except Exception as exc:
            fake.errors.append(exc)
            self.close_connection = True
            raise
        finally:
            self.record.finished = self.record.finished or time.monotonic()

    def _authorized(self) -> bool:
        fake = self.server.fake
        given = self.headers.get("Authorization")
        if given == f"Bearer {fake.api_key}" or fake.signin.accepts((given or "").removeprefix("Bearer ")):
            return True
        self._error(401, "No auth credentials found" if not given else "User not found.")
        return False

    def _route(self, path: str, query: dict[str, list[str]], body: Any, had_body: bool) -> None:
        fake = self.server.fake
        if fake.signin.handles(self.command, path):  # the sign-in page and the code exchange (signin.py)
            reply = fake.signin.respond(self.command, path, query, body, self.headers.get("Cookie"))
            return self._send(reply.status, reply.body, reply.content_type, reply.headers)
        if self.command == "POST" and path == "/chat/completions":
            if not self._authorized():
                return
            if isinstance(body, dict):
                self._chat(body)
            else:
                self._error(400, "Invalid JSON body" if had_body else "Request body is required")
        elif self.command != "GET":
            self._error(404, f"{self.command} {path} Not Found")
        elif path == "/models":
            if fake.models_fail:
                return self._error(fake.models_fail)
            result = dict(fake.catalog_body)
            if "supported_parameters" in query and isinstance(result.get("data"), list):
                wanted = set(",".join(query["supported_parameters"]).split(","))
                result["data"] = [m for m in result["data"] if wanted <= set(m.get("supported_parameters") or [])]
            self._json(200, result)
        elif match := re.fullmatch(r"/model/([^/]+/[^/]+)", path):
            entry = fake._catalog_index().get(match.group(1))
            if entry is None:
                return self._error(404, f"Model {match.group(1)} not found")
            self._json(200, {"data": entry})
        elif path in ("/key", "/auth/key", "/credits", "/generation"):
            if self._authorized():
                self._account(path, query)
        else:
            self._error(404, f"GET {path} Not Found")

    def _account(self, path: str, query: dict[str, list[str]]) -> None:
        fake = self.server.fake
        if path == "/credits":
            if not fake.management_key:  # 2026: an ordinary key may not read credits
                return self._error(403, "Only management keys can fetch credits.")
            return self._json(200, {"data": {"total_credits": 10.0, "total_usage": 2.5}})
        if path == "/generation":
            with fake._lock:
                found = fake._generations.get((query.get("id") or [""])[0])
            return self._json(200, {"data": found}) if found else self._error(404, "Generation not found")
        key = {  # the label is the masked key, never the key
            "label": f"{fake.api_key[:12]}...{fake.api_key[-3:]}",
            "limit": 10.0,
            "limit_remaining": 7.5,
            "limit_reset": "monthly",
            "include_byok_in_limit": False,
            "usage": 2.5,
            "usage_daily": 0.1,
            "usage_weekly": 0.5,
            "usage_monthly": 2.5,
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
            "is_free_tier": False,
            "is_management_key": fake.management_key,
            "rate_limit": {"requests": -1, "interval": "10s"},  # deprecated: always -1 in 2026
        }
        key.update(fake.signin.key_info(self.record.key or "") or {})  # a key the sign-in minted has its own
        self._json(200, {"data": key})
        return None

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.server.fake
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(400, "messages: Required; send at least one message")
        if (rejection := request_rejection(body)) is not None:
            return self._reject(rejection)
        fallbacks = [m for m in body.get("models") or [] if isinstance(m, str)]
        requested = str(body.get("model") or (fallbacks[0] if fallbacks else ACCOUNT_DEFAULT_MODEL))
        if not fake.known(requested):
            return self._error(400, f"{requested} is not a valid model ID")
        fault = self.fault = fake._take_fault(requested)
        kind = fault.kind if fault is not None else "ok"
        if kind in ("hang", "drop"):
            if kind == "hang":
                self._hang()
            self.close_connection = True
            return None
        rejected: dict[str, Rejection] = {}

        def usable(candidate: str) -> bool:  # the native fallback walk
            if (rejection := model_rejection(fake, body, candidate)) is not None:
                rejected[candidate] = rejection
                return False
            return kind != "model_down" if candidate == requested else not fake._take_fault(candidate, "model_down")

        model = next(filter(usable, dict.fromkeys([requested, *filter(fake.known, fallbacks)])), None)
        if model is None and kind != "model_down":
            return self._reject(rejected[requested])
        if kind == "model_down":
            kind = "ok" if model is not None else "http"  # every candidate down: the last failure is reported
        spoil = kind if kind in _ANSWER_FAULTS else "ok"
        kind = "ok" if kind in _ANSWER_FAULTS else kind
        streaming = bool(body.get("stream")) and kind not in ("http", "nonjson")
        generation = f"gen-{next(fake._ids)}"
        if streaming:
            self._open_stream(generation)
            self._event(PROCESSING)
        if self._wait(fake.latency + fake.model_latency.get(model or requested, 0.0), keepalive=streaming):
            self.close_connection = True
            return None
        if not fake._may_answer() and not self._held():  # held by the test; gone if the client hung up
            self.close_connection = True
            return None
        answering = fake._routed(model or requested)
        error = fault.error(answering, last_prompt(body)) if fault is not None else None
        if kind == "http" and fault is not None and error is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return self._error(fault.status, headers=headers, error=error)
        if kind == "nonjson":
            return self._send(200, b"<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>", "text/html")
        result = fake.answer(body, answering, generation, kind=spoil)
        self.record.answered = True
        rate = fake.model_tokens_per_second.get(model or requested)
        if streaming:
            return self._stream(result, kind, error if kind in ("body", "stream_error") else None, rate)
        if rate and self._wait(result["usage"]["completion_tokens"] / rate):  # the whole answer, generated
            self.close_connection = True
            return None
        if kind in ("body", "stream_error"):  # failed after processing started: HTTP 200 with an error object
            return self._json(200, {"id": generation, "error": error})
        choice = result["choices"][0]
        if kind == "empty":
            result["choices"] = []
        elif kind == "finish_error":
            choice.update(finish_reason="error", native_finish_reason="error")
            choice["message"]["content"] = (choice["message"]["content"] or "")[:20]
        else:
            fake._remember(result, self.record.started)
        shown = {key: value for key, value in result.items() if not key.startswith("_")}
        return self._json(200, shown, {"X-Generation-Id": generation})

    def _stream(self, result: dict[str, Any], kind: str, error: dict[str, Any] | None, rate: float | None) -> None:
        """Write the answer's events; with a `rate`, each text piece after the first waits for its tokens. A "cut"
        stream delivers half its text and then the connection drops, mid-body: the answer was generated upstream
        all the same, so it is billed (and `/generation` reports it)."""
        first = True
        payload = self.fault.payload if self.fault is not None else None
        if kind == "cut":
            self.server.fake._remember(result, self.record.started)
            sent = list(events(result, "ok", None, None, None))
            for event in sent[: max(2, len(sent) // 2)]:
                self._event(event.text)
            self.close_connection = True
            self.record.finished = time.monotonic()
            return None
        for event in events(result, kind, error, PACED_PIECE_CHARS if rate else None, payload):
            if rate and event.tokens:
                if not first and self._wait(event.tokens / rate):
                    self.close_connection = True
                    return None
                first = False
            self._event(event.text)
        if kind == "ok":
            self.server.fake._remember(result, self.record.started)
        if kind in ("open_after_done", "no_done"):  # the answer is complete, but the connection stays open
            self._hang()
            return None
        return self._end_stream()
