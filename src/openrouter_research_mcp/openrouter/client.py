"""`OpenRouterClient`: one pooled `httpx.AsyncClient` for the server's lifetime, with retry, fallback and cost.

A chat call walks the model chain (the requested model, then its fallbacks). For each model it sends OpenRouter's
native `models` list, so OpenRouter can reroute by itself, and retries transient failures with tenacity (see
`retry.py`). When a model fails for a reason another model might not share (unknown id, context too small, still
unavailable after retries), the client moves to the next model itself. Every try is recorded as an `Attempt`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic_core

from .. import _metrics
from .._constants import DEFAULT_CONNECT_TIMEOUT, MAX_NATIVE_FALLBACKS
from .._util import as_dict, usd, without_credentials
from .._version import __version__
from ..config import Settings
from ..errors import (
    AuthError,
    BadResponseError,
    BudgetExceededError,
    ContextLengthError,
    ModelNotFoundError,
    ModelUnavailableError,
    OpenRouterError,
    TransientError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    error_for_status,
)
from .attempts import Trace, answered_estimate, attempt_cost
from .budget import Gate, Meter, Reservation, dearest, failure_cost
from .completion import Attempt, ChatResult, assemble_stream, parse_completion
from .pricing import Pricing, SessionUsage, Usage, cost_from_pricing
from .retry import parse_retry_after, retrying
from .tokens import token_bound

if TYPE_CHECKING:
    import httpx

__all__ = ["OpenRouterClient", "is_fallback_worthy"]

log = logging.getLogger(__name__)

STREAM_DRAIN_S = 0.2  # how long to read on after a stream's answer is complete
GENERATION_LOOKUP_S = 2.0  # how long asking OpenRouter what a failed attempt cost may take

PricingLookup = Callable[[str], Pricing | None]
T = TypeVar("T")


def _proxied(url: str) -> bool:
    """Whether the environment routes `url` through a proxy (HTTPS_PROXY, ALL_PROXY…, minus NO_PROXY)."""
    import urllib.request
    from urllib.parse import urlsplit

    proxies = urllib.request.getproxies()
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def _httpx() -> Any:
    """httpx, imported on first use: it adds ~25 ms to start-up, before the server can answer `initialize`."""
    import httpx

    return httpx


def is_fallback_worthy(exc: OpenRouterError) -> bool:
    """Whether another model might succeed where this one failed."""
    return isinstance(
        exc, ModelNotFoundError | ModelUnavailableError | ContextLengthError | TransientError | BadResponseError
    )


def _error_details(response: httpx.Response) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Message, metadata and availability from an error response body, tolerating any shape."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return response.text.strip()[:300] or response.reason_phrase, {}, {}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(error or body)[:300], {}, {}
    return str(error.get("message") or "")[:1000], as_dict(error.get("metadata")), as_dict(error.get("availability"))


def _engines(payload: dict[str, Any]) -> tuple[str, str]:
    """The web search and page-fetch engines a request asked for (`auto` where it named none)."""
    search = fetch = "auto"
    for tool in payload.get("tools") or []:
        engine = as_dict(as_dict(tool).get("parameters")).get("engine")
        if isinstance(engine, str) and tool.get("type") == "openrouter:web_search":
            search = engine
        elif isinstance(engine, str) and tool.get("type") == "openrouter:web_fetch":
            fetch = engine
    for plugin in payload.get("plugins") or []:
        if as_dict(plugin).get("id") == "web" and isinstance(plugin.get("engine"), str):
            search = plugin["engine"]
    return search, fetch


def _retry_hint(availability: dict[str, Any]) -> float | None:
    hint = availability.get("retry_after")
    return float(hint) if isinstance(hint, int | float) and not isinstance(hint, bool) else None


class OpenRouterClient:
    """Async OpenRouter API client shared by every tool and every caller: one connection pool, no key of its own.

    The key travels with each request (`key=`), so the calls of different callers never share one. `pricing` maps
    a model id to its catalog pricing, used when a response lacks `usage.cost`; `transport` and `sleep` exist so
    tests can fake the network and the clock.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        pricing: PricingLookup | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.pricing = pricing
        self._sleep = sleep
        self._headers = {
            "HTTP-Referer": settings.app_url,
            "X-OpenRouter-Title": settings.app_title,
            "X-Title": settings.app_title,
            "User-Agent": f"openrouter-research-mcp/{__version__}",
        }
        self._transport = transport
        self._pool: httpx.AsyncClient | None = None
        self._chat_url = f"{settings.base_url.rstrip('/')}/chat/completions"
        self._chat_endpoint: httpx.URL | None = None

    @property
    def _http(self) -> httpx.AsyncClient:
        """The pooled client, made on first use: building its TLS context takes ~80 ms that a server's start-up
        (the time to answer `initialize`) should not pay."""
        if self._pool is None:
            from . import pool

            http = _httpx()
            transport = self._transport
            if transport is None and not _proxied(self._chat_url):
                transport = pool.Upstream()
            # Through a proxy (transport None), httpx's own pool and its proxy mounts from the environment serve.
            limits = http.Limits(max_connections=pool.MAX_CONNECTIONS, max_keepalive_connections=pool.MAX_IDLE)
            self._pool = http.AsyncClient(
                base_url=self.settings.base_url,
                headers=self._headers,
                timeout=self._timeout(None),
                transport=transport,
                limits=limits,
            )
            self._chat_endpoint = http.URL(self._chat_url)  # parsed once: httpx's URL parser is slow Python
        return self._pool

    async def _post_chat(self, payload: dict[str, Any], timeout: httpx.Timeout, key: str) -> httpx.Response:
        """POST /chat/completions, its body not yet read. The request goes straight to the transport that serves
        the URL (the upstream pool, or httpx's proxy transport where the environment sets one): the client's
        per-request machinery (cookies, auth flows, redirects, URL merging) costs more server CPU than the rest of a
        call, and a chat call needs none of it."""
        http, client, endpoint = _httpx(), self._http, self._chat_endpoint
        assert endpoint is not None  # parsed with the client
        headers = {**self._headers, **self._auth(key), "Content-Type": "application/json"}
        request = http.Request("POST", endpoint, headers=headers, content=pydantic_core.to_json(payload))
        request.extensions["timeout"] = timeout.as_dict()
        # httpx's own routing (`AsyncClient.send` asks the same): proxies and NO_PROXY, and respx in the tests
        response: httpx.Response = await client._transport_for_url(request.url).handle_async_request(request)
        response.request = request
        return response

    async def __aenter__(self) -> OpenRouterClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (if one was opened)."""
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    # ----------------------------------------------------------------------------------------------- plumbing

    def _timeout(self, deadline: float | None) -> httpx.Timeout:
        read = self.settings.timeout
        if deadline is not None:
            read = min(read, deadline - time.monotonic())
            if read <= 0:
                raise UpstreamTimeoutError(
                    "The time allowed for this call ran out before the request could be sent. "
                    "Allow more time or use a faster model."
                )
        timeout: httpx.Timeout = _httpx().Timeout(read, connect=min(DEFAULT_CONNECT_TIMEOUT, read))
        return timeout

    @staticmethod
    def _scrub(exc: OpenRouterError, key: str) -> OpenRouterError:
        """Make sure the key can never travel inside an error, whatever the upstream echoed."""
        if key and key in exc.message:
            exc.message = exc.message.replace(key, "***")
            exc.args = (exc.message,)
        return exc

    @staticmethod
    def _auth(key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _transport_error(self, exc: httpx.TransportError, model: str | None) -> OpenRouterError:
        _metrics.upstream_answered(None)  # no answer at all: refused, reset or timed out
        where = f"OpenRouter at {without_credentials(self.settings.base_url)}"
        http = _httpx()
        if isinstance(exc, http.TimeoutException) and not isinstance(exc, http.ConnectTimeout):
            return UpstreamTimeoutError(
                f"{where} did not answer within {self.settings.timeout:g} s"
                f"{f' for `{model}`' if model else ''}. Raise OPENROUTER_TIMEOUT, lower "
                "max_tokens, or use a faster model.",
                model=model,
            )
        return UpstreamUnavailableError(
            f"Could not reach {where} ({type(exc).__name__}). Check the network connection and OPENROUTER_BASE_URL.",
            model=model,
        )

    async def _raise_for_status(self, response: httpx.Response, model: str | None) -> None:
        _metrics.upstream_answered(response.status_code)
        if response.status_code < 400:
            return
        await response.aread()
        message, metadata, availability = _error_details(response)
        retry_after = parse_retry_after(response.headers)
        raise error_for_status(
            response.status_code,
            message,
            model=model,
            metadata=metadata,
            availability=availability,
            retry_after=retry_after if retry_after is not None else _retry_hint(availability),
        )

    async def _with_deadline(self, work: Awaitable[Any], deadline: float | None, model: str | None) -> Any:
        if deadline is None:
            return await work
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
                return await work
        except TimeoutError:
            during = f" while `{model}` was answering" if model else ""
            raise UpstreamTimeoutError(
                f"The time allowed for this call ran out{during}. Allow more time or use a faster model.", model=model
            ) from None

    async def _retrying(self, once: Callable[[], Awaitable[T]], deadline: float | None) -> tuple[T, int]:
        """Run `once` under the retry policy; return its result and how many retries it took."""
        retries = -1
        try:
            async for attempt in retrying(self.settings.max_retries, deadline, self._sleep):
                with attempt:
                    retries += 1
                    if retries:
                        _metrics.retried()
                        log.info("retry %d of %d", retries, self.settings.max_retries)
                    return await once(), retries
        except OpenRouterError as exc:
            exc.retries = max(retries, 0)
            raise
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    # ------------------------------------------------------------------------------------------------ GET calls

    async def get_json(
        self, path: str, *, key: str | None = None, deadline: float | None = None, auth: bool = False
    ) -> Any:
        """GET a JSON document (e.g. `/models`; `/key` with `auth`, which needs `key`) with the retry policy."""
        if auth and not key:
            raise AuthError.missing()

        async def once() -> Any:
            try:
                response = await self._with_deadline(
                    self._http.get(path, timeout=self._timeout(deadline), headers=self._auth(key)), deadline, None
                )
            except _httpx().TransportError as exc:
                raise self._transport_error(exc, None) from None
            await self._raise_for_status(response, None)
            try:
                return response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BadResponseError(
                    f"OpenRouter's answer to GET {path} was not JSON. Check OPENROUTER_BASE_URL "
                    "points at an OpenAI-compatible API."
                ) from None

        try:
            body, _ = await self._retrying(once, deadline)
        except OpenRouterError as exc:
            raise self._scrub(exc, key or "") from None
        return self._redact(body, key or "")

    # ----------------------------------------------------------------------------------------------- chat calls

    async def _complete_once(
        self,
        payload: dict[str, Any],
        model: str,
        deadline: float | None,
        on_text: Callable[[str], Awaitable[None]] | None,
        key: str,
        trace: Trace,
    ) -> ChatResult:
        timeout = self._timeout(deadline)
        header_id: str | None = None
        try:
            if not payload.get("stream"):
                response = await self._with_deadline(
                    self._read(self._post_chat(payload, timeout, key)), deadline, model
                )
                await self._raise_for_status(response, model)
                header_id = trace.generation_id = response.headers.get("x-generation-id")
                try:
                    body = response.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise BadResponseError(
                        f"OpenRouter's answer for `{model}` was not JSON (HTTP {response.status_code}). Try again.",
                        model=model,
                    ) from None
            else:
                body = await self._with_deadline(
                    self._stream(payload, model, timeout, on_text, key, trace), deadline, model
                )
        except _httpx().TransportError as exc:
            raise self._transport_error(exc, model) from None
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            trace.generation_id = trace.generation_id or body["id"]
        result = parse_completion(self._redact(body, key), model)
        result.generation_id = result.generation_id or header_id
        if result.usage_missing:
            estimate = answered_estimate(payload, result.model, result.text, self.pricing)
            if estimate is not None:
                result.usage = estimate
                result.warnings.append(
                    f"OpenRouter sent no usage for the answer of `{result.model}`; its cost "
                    f"({usd(estimate.cost_usd)}) is estimated from catalog prices: the prompt's estimate and the "
                    "text received."
                )
        elif result.usage.cost_usd is None and self.pricing is not None:
            pricing = self.pricing(result.model) or self.pricing(model)
            search, fetch = _engines(payload)
            cost = (
                cost_from_pricing(result.usage, pricing, search_engine=search, fetch_engine=fetch) if pricing else None
            )
            if cost is not None:
                result.usage.cost_usd, result.usage.cost_source = cost, "pricing"
        return result

    @staticmethod
    async def _read(sent: Awaitable[httpx.Response]) -> httpx.Response:
        """The response of `sent`, read whole (and its connection back in the pool)."""
        response = await sent
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    @classmethod
    def _redact(cls, value: Any, key: str) -> Any:
        """`value` (a parsed answer) with the key replaced wherever an upstream echoed it, in any string."""
        if not key:
            return value
        if isinstance(value, str):
            return value.replace(key, "***") if key in value else value
        if isinstance(value, dict):
            return {name: cls._redact(item, key) for name, item in value.items()}
        if isinstance(value, list):
            return [cls._redact(item, key) for item in value]
        return value

    async def _stream(
        self,
        payload: dict[str, Any],
        model: str,
        timeout: httpx.Timeout,
        on_text: Callable[[str], Awaitable[None]] | None,
        key: str,
        trace: Trace,
    ) -> Any:
        async def received(piece: str) -> None:
            trace.received_tokens += token_bound(piece)
            if on_text is not None:
                await on_text(piece)

        response = await self._post_chat(payload, timeout, key)
        async with contextlib.aclosing(response):
            await self._raise_for_status(response, model)
            trace.generation_id = response.headers.get("x-generation-id")
            if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
                await response.aread()  # a gateway that ignored `stream`: treat it as a plain answer
                try:
                    return response.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise BadResponseError(
                        f"OpenRouter's answer for `{model}` was not JSON. Try again.", model=model
                    ) from None
            lines: AsyncIterator[str] = response.aiter_lines()
            body = await assemble_stream(lines, model, received)
            # The answer is complete. Read what little may follow so the connection goes back to the pool, but do
            # not wait for an upstream that keeps it open: then the connection is closed instead.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STREAM_DRAIN_S):
                    async for _ in lines:
                        pass
            return body

    async def _attempt(
        self,
        payload: dict[str, Any],
        model: str,
        window: list[str],
        deadline: float | None,
        on_text: Callable[[str], Awaitable[None]] | None,
        key: str,
        meter: Meter | None,
        guard: tuple[Gate, Callable[[str], float | None]] | None,
        billed: Usage,
        notes: list[str],
        failed: list[OpenRouterError],
    ) -> ChatResult:
        """One request: reserved (by `meter`, and held by the caller's gate) before it starts, settled with what it
        cost after; a failed one that was billed adds its cost to `billed`, with a note when the figure is an
        estimate."""
        reservation: Reservation | None = None
        held: Any = None
        try:
            reservation = meter.reserve([model, *window]) if meter is not None else None
            if guard is not None:
                gate, worst = guard
                amount = reservation.amount if reservation is not None else dearest(worst, [model, *window])
                held = await gate.hold(amount, f"A call to `{model}`")
        except BudgetExceededError as exc:
            if meter is not None and reservation is not None:
                meter.settle(reservation, 0.0)
            if failed:  # a retry that does not fit the budget is not made: the last failure is the answer
                last = failed[-1]
                last.message = f"{last.message} (It was not tried again: {exc.message})"
                last.args = (last.message,)
                raise last from None
            raise
        try:
            result = await self._settled_attempt(
                payload, model, deadline, on_text, key, meter, reservation, billed, notes, failed
            )
        except OpenRouterError as exc:
            if guard is not None:
                await guard[0].settle(held, failure_cost(exc, exc.attempt_cost))
            raise
        except BaseException:
            if guard is not None:
                await asyncio.shield(guard[0].settle(held, None))
            raise
        if guard is not None:
            await guard[0].settle(held, result.usage.cost_usd)
        return result

    async def _settled_attempt(
        self,
        payload: dict[str, Any],
        model: str,
        deadline: float | None,
        on_text: Callable[[str], Awaitable[None]] | None,
        key: str,
        meter: Meter | None,
        reservation: Reservation | None,
        billed: Usage,
        notes: list[str],
        failed: list[OpenRouterError],
    ) -> ChatResult:
        trace = Trace()
        try:
            result = await self._complete_once(payload, model, deadline, on_text, key, trace)
        except OpenRouterError as exc:
            exc.generation_id = exc.generation_id or trace.generation_id
            exc.received_tokens = exc.received_tokens or trace.received_tokens
            cost = await attempt_cost(exc, payload, model, lookup=self._generation(key, deadline), pricing=self.pricing)
            if cost is not None:
                billed.add(cost)
                if cost.cost_source != "upstream":
                    shown = "unknown" if cost.cost_usd is None else f"{usd(cost.cost_usd)}, estimated from prices"
                    notes.append(
                        f"An attempt on `{model}` failed after it started answering; its cost ({shown}) is counted."
                    )
            exc.attempt_cost = cost.cost_usd if cost is not None else None
            if meter is not None and reservation is not None:
                meter.settle_failure(reservation, exc, exc.attempt_cost)
            failed.append(exc)
            raise
        if meter is not None and reservation is not None:
            meter.settle(reservation, result.usage.cost_usd)
        return result

    def _generation(self, key: str, deadline: float | None) -> Callable[[str], Awaitable[Any]]:
        async def lookup(generation_id: str) -> Any:
            soon = time.monotonic() + GENERATION_LOOKUP_S
            return await self.get_json(
                f"/generation?id={generation_id}", key=key, deadline=min(deadline, soon) if deadline else soon
            )

        return lookup

    async def chat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        key: str,
        usage: SessionUsage | None = None,
        meter: Meter | None = None,
        gate: Gate | None = None,
        worst: Callable[[str], float | None] | None = None,
        model: str | None = None,
        fallback_models: Sequence[str] | None = None,
        stream: bool = False,
        deadline: float | None = None,
        on_text: Callable[[str], Awaitable[None]] | None = None,
        **params: Any,
    ) -> ChatResult:
        """Send a chat completion with `key`, retrying and falling back as needed; `usage` (the caller's ledger)
        records it, and `meter` reserves and settles every attempt on its own (see `budget.py`); `gate` (a caller's
        quota) holds each attempt too, at the meter's reservation or, without a meter, at `worst(model)`. The result's
        usage is what all its attempts cost, failed ones that were billed included.

        `model` defaults to OPENROUTER_DEFAULT_MODEL and `fallback_models` to OPENROUTER_FALLBACK_MODELS.
        `deadline` is a `time.monotonic()` value no request or retry may outlive. Other keyword arguments
        (temperature, max_tokens, reasoning, plugins, response_format, ...) go into the request body when not None.
        """
        if not key:
            raise AuthError.missing()
        primary = model or self.settings.default_model
        fallbacks = self.settings.fallback_models if fallback_models is None else fallback_models
        chain = list(dict.fromkeys([primary, *fallbacks]))
        extra = {key: value for key, value in params.items() if value is not None}
        attempts: list[Attempt] = []
        started = time.monotonic()
        index = 0
        billed = Usage(cost_usd=0.0, cost_source="sum")  # what failed attempts cost, retries and fallbacks alike
        notes: list[str] = []
        failed: list[OpenRouterError] = []
        guard = (gate, worst or (lambda _model: None)) if gate is not None else None
        while True:
            current = chain[index]
            # OpenRouter takes at most MAX_NATIVE_FALLBACKS in `models` (a longer list is a 400) and tries `model`
            # first, so the primary is never repeated there; the rest of a longer chain is walked here.
            window = chain[index + 1 : index + 1 + MAX_NATIVE_FALLBACKS]
            payload: dict[str, Any] = {"model": current, "messages": list(messages), **extra}
            if window:
                payload["models"] = window
            if stream:
                payload["stream"] = True

            async def once(
                payload: dict[str, Any] = payload, current: str = current, window: list[str] = window
            ) -> ChatResult:
                return await self._attempt(
                    payload, current, window, deadline, on_text, key, meter, guard, billed, notes, failed
                )

            try:
                result, retries = await self._retrying(once, deadline)
            except OpenRouterError as exc:
                self._scrub(exc, key)
                attempts.append(
                    Attempt(
                        model=current,
                        ok=False,
                        status=exc.status,
                        error=exc.message,
                        retries=exc.retries,
                        fallbacks=window,
                    )
                )
                if usage is not None:
                    usage.record_failure(current)
                index += 1 + len(window)  # OpenRouter already tried the window's models after `current`
                out_of_time = deadline is not None and time.monotonic() >= deadline
                if index < len(chain) and is_fallback_worthy(exc) and not out_of_time:
                    log.warning("%s failed (%s); falling back to %s", current, type(exc).__name__, chain[index])
                    continue
                exc.attempts = attempts
                exc.usage = billed if billed.cost_usd or billed.total_tokens else None
                if usage is not None and exc.usage is not None:
                    usage.record(current, exc.usage)
                raise
            attempts.append(
                Attempt(
                    model=current,
                    ok=True,
                    retries=retries,
                    fallbacks=window,
                    answered_by=result.model if result.model != current else None,
                )
            )
            result.model_requested = primary
            result.attempts = attempts
            if billed.cost_usd or billed.total_tokens:
                result.usage.add(billed)
                result.warnings += notes
            result.latency_s = round(time.monotonic() - started, 4)
            if usage is not None:
                usage.record(result.model, result.usage)
            return result
