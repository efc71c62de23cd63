"""A fake OpenRouter HTTP API on loopback, faithful to docs/openrouter-api.md (2026), for tests and benchmarks.

Standard library only: a `ThreadingHTTPServer` on a daemon thread serves each connection on its own thread, so the
latency sleeps of concurrent requests overlap as they would upstream. Every wait (latency, pacing, the "hang" fault)
is on an event that `stop()` sets, so stopping is prompt whatever a handler is doing.

```
with FakeOpenRouter(latency=0.2) as fake:
    fake.fail(429, retry_after="1")              # the next chat request is rate-limited
    fake.fail(kind="model_down", model="openai/gpt-4o")
    fake.refusals["openai/gpt-4o"] = "I can't help with that."
    ... OPENROUTER_BASE_URL=fake.base_url ...
    assert fake.max_concurrency() <= 4
```

Answers are deterministic (see `answers`): `"[<model>] Answer: <last user message>"`, or JSON that validates against
the request's `json_schema`. The fallback walk tries `model`, then `models` (at most 3, else HTTP 400) in order,
skipping unknown ids (upstream behaviour unconfirmed), candidates a routing rule or parameter check rejects
(`checks`) and those with a "model_down" fault; other faults apply to the request as a whole.

The fake model is lazy about web search: the `openrouter:web_search` server tool runs only when `tool_choice` forces
it (`{"type":"openrouter:web_search"}` or `"required"`), so tests prove a client forces searches. Then it runs
`searches_per_call` searches (at most `max_uses`) of `min(max_results, results_per_search)` results each, corpus pages
(`pages`) that share words with the question first. Given `openrouter:web_fetch` it reads the URLs of the last user
message, then the search results, and quotes each page read. The deprecated `web` plugin and `:online` search once.

Attributes tests may change at any time: `latency`, `model_latency`, `model_tokens_per_second`, `catalog_body`,
`models_fail`, `include_cost`, `byok`, `structured_answers`, `text_answers`, `refusals`, `quality`, `verdicts`,
`verifier_says`,
`reasoning_details_models`, `searches_per_call`, `results_per_search`, `pages`, `data_collecting`,
`strict_schema_rejecters`, `management_key`; `requests` logs every request (`Recorded.key`: the key it used),
`billed` every charge, `errors` the fake's own bugs. `signin` is the sign-in (OAuth with PKCE) and the keys it mints
(`signin.py`).
By hand, e.g. for the MCP Inspector: `python -m tests.fakes.openrouter --port 8765 --latency 0.2`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import signal
import socket
import threading
import time
from typing import Any

from . import FAKE_KEY
from .answers import compose
from .catalog_data import catalog
from .common import (
    ACCOUNT_DEFAULT_MODEL,
    API_PREFIX,
    DEFAULT_STATUS,
    FAULT_KINDS,
    Fault,
    Recorded,
    base_id,
    tokens_of,
)
from .corpus import PAGES
from .handler import FakeServer, normal_path
from .signin import FakeSignIn

__all__ = ["FAULT_KINDS", "FakeOpenRouter", "Recorded"]

KEEPALIVE_INTERVAL = 1.0  # seconds between `: OPENROUTER PROCESSING` comments while a stream waits


class FakeOpenRouter:
    """The fake server; see the module docstring for what tests may change."""

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
        self.model_latency: dict[str, float] = {}  # model id -> extra seconds (a stream's time to first token)
        self.model_tokens_per_second: dict[str, float] = {}  # model id -> output rate; streams are paced to it
        self.catalog_body: dict[str, Any] = catalog(catalog_shape)
        self.api_key = api_key
        self.include_cost = include_cost
        self.byok = False  # the user's own provider key: cost is 5% of the provider's charge
        self.writer_extra = ""  # text a fake research writer adds after its findings (a test's own citations)
        self.usage_patch: dict[str, Any] = {}  # laid over every answer's usage, e.g. {"cost": float("nan")}
        self.send_usage = True  # False: answers (streamed or not) come without a usage block
        # Clear it to hold every chat answer (after its latency) until it is set again: a test's way to keep work
        # in progress for as long as it needs, without betting on timings.
        self.release = threading.Event()
        self.release.set()
        self._passes: int | None = None  # with `pass_only`: answers still allowed before the rest are held
        self.management_key = False  # only a management key may read /credits
        self.signin = FakeSignIn()  # OAuth with PKCE: GET /auth, POST /auth/keys, the keys they mint (signin.py)
        self.models_fail: int | None = None
        self.structured_answers: dict[str, Any] = {}  # json_schema name -> the JSON answered
        self.text_answers: dict[str, str] = {}  # model id -> the text it answers (non-JSON requests)
        self.refusals: dict[str, str] = {}  # model id -> the refusal it answers instead
        self.quality: dict[str, Any] = {}  # model id -> the score (1-10, or garbage) a judge gives its answers
        # A verifier's verdicts: a claim (its words, lower-cased) -> supported, partly, unsupported or cannot_tell;
        # claims not listed are judged by word overlap. `verifier_says` overrides every verdict (a lying verifier).
        self.verdicts: dict[str, str] = {}
        self.verifier_says: str | None = None
        self.reasoning_details_models: set[str] = {"anthropic/claude-sonnet-4"}  # thinking only as reasoning_details
        self.searches_per_call = 1
        self.results_per_search = 3
        self.pages: dict[str, tuple[str, str]] = dict(PAGES)  # url -> (title, text): the web search finds and reads
        self.data_collecting: set[str] = set()  # models refused with data_collection "deny" or zdr
        self.strict_schema_rejecters: tuple[str, ...] = ("anthropic/",)  # id prefixes refusing strict-schema bounds
        self.requests: list[Recorded] = []
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self._port = port
        self._faults: list[Fault] = []
        self._generations: dict[str, dict[str, Any]] = {}
        self.billed: list[tuple[str, float]] = []  # (generation id, USD) for every request OpenRouter charged
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def keepalive_interval(self) -> float:
        """Seconds between keep-alive comments: this module's KEEPALIVE_INTERVAL, which tests may patch."""
        return KEEPALIVE_INTERVAL

    # ------------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenRouter:
        """Bind 127.0.0.1 (port 0: a free one) and serve on a daemon thread."""
        if self._server is None:
            self.stopping.clear()
            self._server = FakeServer(self, self._port)
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
        availability: dict[str, Any] | None = None,
        payload: Any = None,
    ) -> None:
        """Queue a fault (FIFO) for the next `times` chat requests for `model` (None: any model).

        `availability` (2026, e.g. `{"code": "privacy_restricted", "retryable": False, "fallback_models": [...]}`)
        goes into the error as `error.availability`, its code also as `metadata.error_type`. Stream faults:
        "open_after_done" keeps the connection open after `[DONE]`, "no_done" never sends `[DONE]` and keeps it
        open, "bad_chunk" sends `payload` as a chunk after the first piece of text."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {sorted(FAULT_KINDS)}")
        fault = Fault(
            kind,
            status or DEFAULT_STATUS.get(kind, 502),
            times,
            model,
            retry_after,
            message,
            metadata,
            availability,
            payload,
        )
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, model: str, kind: str | None = None) -> Fault | None:
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
            return [r for r in self.requests if path is None or r.path == normal_path(path)]

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

    def pass_only(self, answers: int) -> None:
        """Answer the next `answers` chat requests, then hold every later one until `release` is set."""
        with self._lock:
            self._passes = answers
        self.release.clear()

    def _may_answer(self) -> bool:
        """Whether a chat request may be answered now (counting it against `pass_only`)."""
        with self._lock:
            if self._passes is not None and self._passes > 0:
                self._passes -= 1
                return True
            if self.release.is_set():
                self._passes = None
                return True
            return False

    def clear(self) -> None:
        """Forget the logged requests and what was billed (queued faults stay)."""
        with self._lock:
            self.requests.clear()
            self.billed.clear()

    # ------------------------------------------------------------------------------------------------ catalog

    def _catalog_index(self) -> dict[str, dict[str, Any]]:
        return {m["id"]: m for m in self.catalog_body.get("data") or [] if isinstance(m, dict) and "id" in m}

    def known(self, model: str) -> bool:
        """Whether the chat endpoint accepts `model` (catalog ids, variant suffixes, router ids)."""
        return model in ("openrouter/auto", "openrouter/free") or self._entry(model) is not None

    def _entry(self, model: str) -> dict[str, Any] | None:
        index = self._catalog_index()
        return index.get(model) or index.get(base_id(model))

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
        """The tokens a request asks for: its messages (`tokens_of` their JSON) plus `max_tokens` (or its 2026
        name `max_completion_tokens`)."""
        limit = body.get("max_tokens", body.get("max_completion_tokens"))
        return tokens_of(json.dumps(body.get("messages"), ensure_ascii=False)) + (
            limit if isinstance(limit, int) else 0
        )

    # ------------------------------------------------------------------------------------------------ answers

    def answer(
        self, body: dict[str, Any], model: str, generation_id: str | None = None, *, kind: str = "ok"
    ) -> dict[str, Any]:
        """The completion body `model` gives for the request `body` (`kind` "bad_json"/"wrong_json" spoils JSON),
        with `usage_patch` laid over its usage (a test's impossible numbers: NaN, negative, infinite)."""
        result = compose(self, body, model, generation_id, kind)
        result["usage"].update(self.usage_patch)
        if not self.send_usage:  # billed all the same, but the answer carries no usage block
            result["_billed_usage"] = result.pop("usage")
        return result

    def _remember(self, result: dict[str, Any], started: float) -> None:
        """Record a generation OpenRouter bills (what `/generation` reports, and `billed` sums)."""
        usage = result.get("usage") or result["_billed_usage"]
        with self._lock:
            self.billed.append((result["id"], float(usage.get("cost", 0.0))))
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
    try:  # (around it all: a signal may come at any moment once a client has read the URL, even within `print`)
        with FakeOpenRouter(
            latency=args.latency,
            catalog_shape=args.catalog_shape,
            api_key=args.api_key,
            include_cost=not args.no_cost,
            port=args.port,
        ) as fake:
            print(fake.base_url, flush=True)  # noqa: T201 - the point of the command
            threading.Event().wait()
    except KeyboardInterrupt:
        pass


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
