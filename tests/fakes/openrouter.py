"""A fake OpenRouter HTTP API on loopback, faithful to docs/openrouter-api.md, for end-to-end tests and benchmarks.

Standard library only: a `ThreadingHTTPServer` on a daemon thread serves each connection on its own thread, so the
latency sleeps of concurrent requests overlap as they would upstream. Every wait (latency, the "hang" fault) is on an
event that `stop()` sets, so stopping is prompt whatever a handler is doing.

```
with FakeOpenRouter(latency=0.2) as fake:
    fake.fail(429, retry_after="1")              # the next chat request is rate-limited
    fake.fail(kind="model_down", model="openai/gpt-4o")
    ... OPENROUTER_BASE_URL=fake.base_url ...
    assert fake.max_concurrency() <= 4
```

Answers are deterministic: `"[<model>] Answer: <last user message>"`, or JSON that validates against the request's
`json_schema`. Only the "model_down" fault moves on to the next id in a request's native `models` list; other faults
apply to the request as a whole. Unknown ids later in `models` are skipped, never reported (upstream is unconfirmed).
By hand, e.g. for the MCP Inspector: `python -m tests.fakes.openrouter --port 8765 --latency 0.2`.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import re
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import FAKE_KEY
from .catalog_data import catalog
from .schema_fill import fill

__all__ = ["FAULT_KINDS", "FakeOpenRouter", "Recorded"]

API_PREFIX = "/api/v1"
VARIANT_SUFFIXES = (":free", ":online", ":nitro", ":floor", ":thinking")
ACCOUNT_DEFAULT_MODEL = "openai/gpt-4o-mini"  # what `openrouter/auto` routes to and what an omitted `model` means
DEFAULT_WEB_SEARCH_PRICE = 0.004  # USD per search when the model's pricing has no `web_search`
KEEPALIVE_INTERVAL = 1.0  # seconds between `: OPENROUTER PROCESSING` comments while a stream waits
FAULT_KINDS = frozenset(
    {"http", "body", "empty", "nonjson", "finish_error", "stream_error", "hang", "model_down", "drop"}
)
_DEFAULT_STATUS = {"http": 500, "body": 502, "stream_error": 502, "model_down": 503}
_MESSAGES = {
    400: "Bad Request",
    401: "User not found.",
    402: "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
    403: "Your chosen model requires moderation and your input was flagged",
    404: "Not Found",
    408: "Request timed out",
    413: "Payload Too Large",
    429: "Rate limit exceeded: free-models-per-min.",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No endpoints found that can handle the requested parameters.",
    524: "Provider timed out",
    529: "Provider overloaded",
}
_PROVIDERS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google AI Studio",
    "deepseek": "DeepSeek",
    "meta-llama": "Together",
    "perplexity": "Perplexity",
}
_PROCESSING = ": OPENROUTER PROCESSING\n\n"
_JSON_FORMATS = ("json_schema", "json_object")


@dataclass
class Recorded:
    """One request as the fake received it; `status` stays None when no response was sent (drop, hang)."""

    method: str
    path: str  # relative to /api/v1, e.g. "/chat/completions"
    query: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    model: str | None
    started: float  # time.monotonic()
    finished: float | None = None
    status: int | None = None


@dataclass
class _Fault:
    kind: str
    status: int
    times: int
    model: str | None
    retry_after: str | None
    message: str | None
    metadata: dict[str, Any] | None

    def error(self, model: str, prompt: str) -> dict[str, Any]:
        metadata = self.metadata
        if metadata is None and self.status == 403:
            metadata = {
                "reasons": ["violence"],
                "flagged_input": prompt[:100],
                "provider_name": _provider(model),
                "model_slug": model,
            }
        error: dict[str, Any] = {"code": self.status, "message": self.message or _MESSAGES.get(self.status, "Error")}
        if metadata is not None:
            error["metadata"] = metadata
        return error


def _normal(path: str) -> str:
    return path.removeprefix(API_PREFIX) if path.startswith(API_PREFIX + "/") else path


def _provider(model: str) -> str:
    author = model.split("/")[0]
    return _PROVIDERS.get(author, author.title())


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _prompt(body: dict[str, Any]) -> str:
    """The last user message's text (or the last message's, when no user spoke)."""
    messages = _dicts(body.get("messages"))
    users = [m for m in messages if m.get("role") == "user"] or messages
    return _text(users[-1].get("content")) if users else ""


class FakeOpenRouter:
    """The fake server. Attributes tests may change at any time: `latency`, `model_latency`, `catalog_body`,
    `models_fail`, `include_cost`, `structured_answers`, `text_answers`; `requests` logs every request, `errors`
    the fake's own bugs.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        catalog_shape: int = 2026,
        api_key: str = FAKE_KEY,
        include_cost: bool = True,
        port: int = 0,
    ) -> None:
        self.latency = latency
        self.model_latency: dict[str, float] = {}
        self.catalog_body: dict[str, Any] = catalog(catalog_shape)
        self.api_key = api_key
        self.include_cost = include_cost
        self.models_fail: int | None = None
        self.structured_answers: dict[str, Any] = {}
        self.text_answers: dict[str, str] = {}  # model id -> the text it answers (non-JSON requests)
        self.requests: list[Recorded] = []
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self._port = port
        self._faults: list[_Fault] = []
        self._generations: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenRouter:
        """Bind 127.0.0.1 (port 0: a free one) and serve on a daemon thread."""
        if self._server is None:
            self.stopping.clear()
            self._server = _Server(self, self._port)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-openrouter", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release hanging and sleeping handlers, cut open connections, wait for the threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        with server.live_lock:
            live = dict(server.live)
        for connection in live:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for worker in live.values():
            worker.join(timeout=5)

    def __enter__(self) -> FakeOpenRouter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/api/v1`, once started."""
        if self._server is None:
            raise RuntimeError("FakeOpenRouter is not running: call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}{API_PREFIX}"

    # ----------------------------------------------------------------------------------------- faults and log

    def fail(
        self,
        status: int | None = None,
        *,
        kind: str = "http",
        times: int = 1,
        model: str | None = None,
        retry_after: str | None = None,
        message: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Queue a fault (FIFO) for the next `times` chat requests for `model` (None: any model)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {sorted(FAULT_KINDS)}")
        fault = _Fault(kind, status or _DEFAULT_STATUS.get(kind, 502), times, model, retry_after, message, metadata)
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, model: str, kind: str | None = None) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.model in (None, model) and kind in (None, fault.kind):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def _log(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == _normal(path)]

    def chat_requests(self) -> list[Recorded]:
        """The chat completion requests received so far."""
        return [r for r in self._log("/chat/completions") if r.method == "POST"]

    def count(self, path: str) -> int:
        """How many requests hit `path` (`/models` or `/api/v1/models`)."""
        return len(self._log(path))

    def max_concurrency(self, path: str = "/chat/completions") -> int:
        """The most requests to `path` that were in flight at once (unfinished ones count as still open)."""
        events = sorted(
            event
            for r in self._log(path)
            for event in ((r.started, 1), (r.finished if r.finished is not None else math.inf, -1))
        )
        peak = current = 0
        for _, step in events:  # at equal times -1 sorts first: a request ending as another starts does not overlap
            current += step
            peak = max(peak, current)
        return peak

    def clear(self) -> None:
        """Forget the logged requests (queued faults stay)."""
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------------------------------------------ catalog

    def _catalog_index(self) -> dict[str, dict[str, Any]]:
        return {m["id"]: m for m in self.catalog_body.get("data") or [] if isinstance(m, dict) and "id" in m}

    def known(self, model: str) -> bool:
        """Whether the chat endpoint accepts `model` (catalog ids, variant suffixes, router ids)."""
        return model in ("openrouter/auto", "openrouter/free") or self._entry(model) is not None

    def _entry(self, model: str) -> dict[str, Any] | None:
        index = self._catalog_index()
        base = next((model.removesuffix(s) for s in VARIANT_SUFFIXES if model.endswith(s)), model)
        return index.get(model) or index.get(base)

    def _routed(self, model: str) -> str:
        """The model that actually answers for a router id."""
        if model == "openrouter/free":
            return next((m for m in self._catalog_index() if m.endswith(":free")), ACCOUNT_DEFAULT_MODEL)
        if model == "openrouter/auto":
            index = self._catalog_index()
            return ACCOUNT_DEFAULT_MODEL if ACCOUNT_DEFAULT_MODEL in index else next(iter(index), model)
        return model

    def context_length(self, model: str) -> int:
        """The catalog's context length for `model` (after routing); 0 when unknown (then anything fits)."""
        context = (self._entry(self._routed(model)) or {}).get("context_length")
        return context if isinstance(context, int) else 0

    @staticmethod
    def context_needed(body: dict[str, Any]) -> int:
        """The tokens a request asks for: its messages (about 4 characters a token) plus `max_tokens`."""
        limit = body.get("max_tokens")
        return len(json.dumps(body.get("messages"))) // 4 + (limit if isinstance(limit, int) else 0)

    def _price(self, model: str, key: str) -> float:
        entry = self._entry(model)
        if entry is None or model.endswith(":free"):
            return 0.0
        try:
            return max(float((entry.get("pricing") or {}).get(key, 0) or 0), 0.0)
        except (TypeError, ValueError):
            return 0.0

    # ------------------------------------------------------------------------------------------------ answers

    def answer(self, body: dict[str, Any], model: str, generation_id: str | None = None) -> dict[str, Any]:
        """The completion body `model` gives for the request `body` (no faults applied)."""
        prompt, all_text = _prompt(body), " ".join(_text(m.get("content")) for m in _dicts(body.get("messages")))
        options = _dict(body.get("reasoning"))
        thinks = bool(body.get("reasoning") or body.get("include_reasoning") or model.endswith(":thinking"))
        thinks = thinks and options.get("enabled") is not False
        plugin = next((p for p in _dicts(body.get("plugins")) if p.get("id") == "web"), None)
        web = (
            plugin is not None
            or str(body.get("model", "")).endswith(":online")
            or model.endswith(":online")
            or any(t.get("type") == "openrouter:web_search" for t in _dicts(body.get("tools")))
        )
        response_format = _dict(body.get("response_format"))
        spec, structured = _dict(response_format.get("json_schema")), response_format.get("type") in _JSON_FORMATS
        content = self.text_answers.get(model, f"[{model}] Answer: {prompt[:200]}")
        if response_format.get("type") == "json_schema":
            name = spec.get("name")
            content = json.dumps(
                self.structured_answers[name] if name in self.structured_answers else fill(spec.get("schema"))
            )
        elif response_format.get("type") == "json_object":
            content = json.dumps({"model": model, "answer": prompt[:200]})
        finish, limit = "stop", body.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and len(content) // 4 + 1 > limit:
            content, finish = content[: (limit - 1) * 4], "length"  # so completion_tokens == max_tokens
        annotations: list[dict[str, Any]] = []
        slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].strip("-") or "answer"
        for i in range(1, min(max(int((plugin or {}).get("max_results") or 3), 1), 3) + 1 if web else 1):
            start = 0 if structured else len(content) + 1  # JSON answers get no [n] markers
            content = content if structured else f"{content} [{i}]"
            annotations.append(
                {
                    "type": "url_citation",
                    "url_citation": {
                        "url": f"https://example.org/{slug}-{i}",
                        "title": f"Source {i} on {prompt[:60]}",
                        "content": f"Passage {i}: what example.org says about {prompt[:80]}.",
                        "start_index": start,
                        "end_index": len(content),
                    },
                }
            )
        reasoning_tokens = 16 + len(all_text) // 8 if thinks else 0
        prompt_tokens, completion_tokens = len(all_text) // 4 + 1, len(content) // 4 + 1 + reasoning_tokens
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        }
        if web:
            usage["server_tool_use"] = {"web_search_requests": 1}
        if self.include_cost:
            price = functools.partial(self._price, model)
            usage["cost"] = round(
                prompt_tokens * price("prompt")
                + (completion_tokens - reasoning_tokens) * price("completion")
                + reasoning_tokens * (price("internal_reasoning") or price("completion"))
                + price("request")
                + (price("web_search") or DEFAULT_WEB_SEARCH_PRICE) * web,
                12,
            )
            usage["is_byok"] = False
        message = {
            "role": "assistant",
            "content": content,
            "refusal": None,
            "reasoning": f"Thinking about: {prompt[:80]}" if thinks and not options.get("exclude") else None,
        }
        return {
            "id": generation_id or f"gen-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "provider": _provider(model),
            "choices": [
                {
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": finish,
                    "native_finish_reason": finish,
                    "message": message | ({"annotations": annotations} if annotations else {}),
                }
            ],
            "usage": usage,
        }

    def _remember(self, result: dict[str, Any], started: float) -> None:
        usage = result["usage"]
        with self._lock:
            self._generations[result["id"]] = {
                "id": result["id"],
                "model": result["model"],
                "provider_name": result["provider"],
                "total_cost": usage.get("cost", 0.0),
                "tokens_prompt": usage["prompt_tokens"],
                "tokens_completion": usage["completion_tokens"],
                "finish_reason": "stop",
                "num_search_results": len(result["choices"][0]["message"].get("annotations") or []),
                "latency": round(time.monotonic() - started, 4),
            }


class _Server(ThreadingHTTPServer):
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
    server: _Server
    record: Recorded

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
        error = error or {"code": status, "message": message or _MESSAGES.get(status, "Error")}
        self._json(status, {"error": error, "user_id": "user_fake"}, headers)

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

    def _data(self, payload: Any) -> None:
        self._event(f"data: {json.dumps(payload)}\n\n")

    def _wait(self, seconds: float, keepalive: bool = False) -> bool:
        """Sleep, unless stop() comes first (then True); a stream gets a keep-alive comment every second."""
        stopping, end = self.server.fake.stopping, time.monotonic() + seconds
        while keepalive and end - time.monotonic() > KEEPALIVE_INTERVAL:
            if stopping.wait(KEEPALIVE_INTERVAL):
                return True
            self._event(_PROCESSING)
        return stopping.wait(max(end - time.monotonic(), 0.0))

    def _hang(self) -> None:
        """Never answer: return when stop() is called or the client hangs up."""
        while not self._wait(0.05):
            readable, _, _ = select.select([self.connection], [], [], 0)
            try:
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    break
            except OSError:
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
            _normal(url.path),
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
        given = self.headers.get("Authorization")
        if given == f"Bearer {self.server.fake.api_key}":
            return True
        self._error(401, "No auth credentials found" if not given else "User not found.")
        return False

    def _route(self, path: str, query: dict[str, list[str]], body: Any, had_body: bool) -> None:
        fake = self.server.fake
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
            return self._json(200, {"data": {"total_credits": 10.0, "total_usage": 2.5}})
        if path == "/generation":
            with fake._lock:
                found = fake._generations.get((query.get("id") or [""])[0])
            return self._json(200, {"data": found}) if found else self._error(404, "Generation not found")
        self._json(
            200,
            {
                "data": {  # the label is the masked key, never the key
                    "label": f"{fake.api_key[:12]}...{fake.api_key[-3:]}",
                    "limit": 10.0,
                    "limit_remaining": 7.5,
                    "limit_reset": "monthly",
                    "usage": 2.5,
                    "usage_daily": 0.1,
                    "usage_weekly": 0.5,
                    "usage_monthly": 2.5,
                    "is_free_tier": False,
                    "rate_limit": {"requests": 100, "interval": "10s"},
                }
            },
        )
        return None

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.server.fake
        fallbacks = [m for m in body.get("models") or [] if isinstance(m, str)]
        requested = str(body.get("model") or (fallbacks[0] if fallbacks else ACCOUNT_DEFAULT_MODEL))
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(400, "messages: Required; send at least one message")
        if not fake.known(requested):
            return self._error(400, f"{requested} is not a valid model ID")
        fault = fake._take_fault(requested)
        kind = fault.kind if fault is not None else "ok"
        if kind in ("hang", "drop"):
            if kind == "hang":
                self._hang()
            self.close_connection = True
            return None

        def usable(candidate: str) -> bool:  # the native fallback walk: skip models that are down or too small
            if fake.context_needed(body) > (fake.context_length(candidate) or math.inf):
                return False
            return kind != "model_down" if candidate == requested else not fake._take_fault(candidate, "model_down")

        model = next(filter(usable, dict.fromkeys([requested, *filter(fake.known, fallbacks)])), None)
        if model is None and kind != "model_down":
            return self._error(
                400,
                f"This endpoint's maximum context length is {fake.context_length(requested)} "
                f"tokens. However, you requested about {fake.context_needed(body)} tokens. Please "
                "reduce the length of the messages or completion.",
            )
        if kind == "model_down":
            kind = "ok" if model is not None else "http"  # every candidate down: the last failure is reported
        streaming = bool(body.get("stream")) and kind not in ("http", "nonjson")
        generation = f"gen-{next(fake._ids)}"
        if streaming:
            self._open_stream(generation)
            self._event(_PROCESSING)
        if self._wait(fake.latency + fake.model_latency.get(model or requested, 0.0), keepalive=streaming):
            self.close_connection = True
            return None
        answering = fake._routed(model or requested)
        error = fault.error(answering, _prompt(body)) if fault is not None else None
        if kind == "http" and fault is not None and error is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return self._error(fault.status, headers=headers, error=error)
        if kind == "nonjson":
            return self._send(200, b"<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>", "text/html")
        result = fake.answer(body, answering, generation)
        if streaming:
            return self._stream(result, kind, error if kind in ("body", "stream_error") else None)
        if kind in ("body", "stream_error"):  # failed after processing started: HTTP 200 with an error object
            return self._json(200, {"id": generation, "error": error})
        choice = result["choices"][0]
        if kind == "empty":
            result["choices"] = []
        elif kind == "finish_error":
            choice.update(finish_reason="error", native_finish_reason="error")
            choice["message"]["content"] = choice["message"]["content"][:20]
        else:
            fake._remember(result, self.record.started)
        return self._json(200, result, {"X-Generation-Id": generation})

    def _stream(self, result: dict[str, Any], kind: str, error: dict[str, Any] | None) -> None:
        head = {k: result[k] for k in ("id", "created", "model", "provider")} | {"object": "chat.completion.chunk"}
        message, stop_reason = result["choices"][0]["message"], result["choices"][0]["finish_reason"]

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return head | {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", **delta},
                        "finish_reason": finish,
                        "native_finish_reason": finish,
                        "logprobs": None,
                    }
                ]
            }

        text = message["content"] if kind != "body" else ""
        size = max(len(text) // 4, 1)
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        if kind in ("stream_error", "finish_error"):
            pieces = pieces[:2]
        elif kind == "empty":
            pieces = []
        if message.get("reasoning") and pieces:
            self._data(chunk({"content": "", "reasoning": message["reasoning"]}))
        for index, piece in enumerate(pieces):
            self._data(chunk({"content": piece}))
            if index % 2:
                self._event(_PROCESSING)
        if error is not None:  # mid-stream failure: an error chunk, then the stream ends without usage or [DONE]
            self._data({**chunk({"content": ""}, "error"), "error": error})
            return self._end_stream()
        if message.get("annotations") and pieces:
            self._data(chunk({"content": "", "annotations": message["annotations"]}))
        if kind != "empty":
            self._data(chunk({"content": ""}, "error" if kind == "finish_error" else stop_reason))
        self._data(head | {"choices": [], "usage": result["usage"]})
        self._event("data: [DONE]\n\n")
        if kind == "ok":
            self.server.fake._remember(result, self.record.started)
        return self._end_stream()


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until interrupted, printing the base URL."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.openrouter", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0: any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every chat completion takes")
    parser.add_argument("--catalog-shape", type=int, choices=(2025, 2026), default=2026)
    parser.add_argument("--api-key", default=FAKE_KEY, help="the bearer key the fake accepts")
    parser.add_argument("--no-cost", action="store_true", help="omit usage.cost, as older responses did")
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # explicit: a shell's background job inherits SIGINT ignored
        signal.signal(signum, _interrupt)
    with FakeOpenRouter(
        latency=args.latency,
        catalog_shape=args.catalog_shape,
        api_key=args.api_key,
        include_cost=not args.no_cost,
        port=args.port,
    ) as fake:
        print(fake.base_url, flush=True)  # noqa: T201 - the point of the command
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
