"""Who is calling, for every handler: tools, resources (static ones have no `Context`), completions and views.

`CallerMiddleware` runs around every MCP request and puts the request's caller in a context variable for the
duration of the request, so each handler builds its `CallState` from the request itself, never from anything the
server holds for "the" user. Over stdio there is one caller, `local`, with the configured key; over HTTP the
resolver is `remote/callers.py`. A tool call by a caller with a calls-per-minute quota is counted here, first.

Every tool call ends here too: one log line (logger `openrouter_research_mcp.calls`, a JSON object per line with
OPENROUTER_LOG_FORMAT=json) with a request id made here, the JSON-RPC id, the caller, the tool, the outcome, the
duration and what its calls cost, and the same in the metrics. Never a key, a token or an argument.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Collection
from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult, TextContent

from . import _metrics
from .errors import QuotaExceededError
from .tools.state import LOCAL, Caller, CallState, Shared

__all__ = ["CallerMiddleware", "call_state", "current_caller"]

calls_log = logging.getLogger("openrouter_research_mcp.calls")

_CALLER: ContextVar[Caller | None] = ContextVar("openrouter_research_caller", default=None)
_SHARED: ContextVar[Shared | None] = ContextVar("openrouter_research_shared", default=None)

# How a request names its caller (`local` over stdio); the HTTP server swaps in its own (authenticated) resolver.
Resolver = Callable[[Shared, ServerRequestContext[Any, Any]], Caller]


def local_caller(shared: Shared, _ctx: ServerRequestContext[Any, Any]) -> Caller:
    return shared.caller(LOCAL)


class CallerMiddleware:
    """Sets the caller of each request (see the module docstring)."""

    def __init__(self, resolve: Resolver = local_caller, tools: Collection[str] = ()) -> None:
        self.resolve = resolve
        self.tools = frozenset(tools)  # the metrics' tool label takes these names only (any other is "unknown")

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        shared = ctx.lifespan_context
        if not isinstance(shared, Shared):
            return await call_next(ctx)
        caller = self.resolve(shared, ctx)
        if ctx.method != "tools/call":
            return await self._within(ctx, call_next, shared, caller)
        started = time.perf_counter()
        name = (ctx.params or {}).get("name")
        tool = name if isinstance(name, str) and name in self.tools else "unknown"
        result: HandlerResult | None = None
        try:
            if caller.limits.calls_per_minute is not None:
                try:
                    await shared.accounts.count_call(caller.principal, caller.limits)
                except QuotaExceededError as exc:
                    caller.refused_by = exc.limit
                    result = CallToolResult(content=[TextContent(type="text", text=exc.message)], is_error=True)
                    return result
            result = await self._within(ctx, call_next, shared, caller)
            return result
        finally:
            self._account(ctx, tool, caller, result, time.perf_counter() - started)

    @staticmethod
    async def _within(
        ctx: ServerRequestContext[Any, Any], call_next: CallNext, shared: Shared, caller: Caller
    ) -> HandlerResult:
        caller_token = _CALLER.set(caller)
        shared_token = _SHARED.set(shared)
        try:
            return await call_next(ctx)
        finally:
            _CALLER.reset(caller_token)
            _SHARED.reset(shared_token)

    @staticmethod
    def _account(
        ctx: ServerRequestContext[Any, Any], tool: str, caller: Caller, result: HandlerResult | None, took: float
    ) -> None:
        """The call's log line and metrics (an exception or a cancel that left no result counts as an error)."""
        failed = result is None or bool(
            result.get("isError") if isinstance(result, dict) else getattr(result, "is_error", False)
        )
        outcome = "refused" if caller.refused_by else "error" if failed else "ok"
        if caller.refused_by:
            _metrics.quota_refused(caller.refused_by)
        _metrics.tool_called(tool, outcome, took)
        rpc_id = ctx.request_id if isinstance(ctx.request_id, int | str) else None
        call = {
            "request_id": secrets.token_hex(6),
            "rpc_id": rpc_id if not isinstance(rpc_id, str) else rpc_id[:64],
            "caller": caller.principal,
            "key": caller.key_source,
            "tool": tool,
            "outcome": outcome,
            **({"refused_by": caller.refused_by} if caller.refused_by else {}),
            "duration_ms": round(took * 1000, 1),
            "cost_usd": round(caller.spent_usd, 8),
        }
        calls_log.info(
            "call %s %s by %s in %.0f ms, $%.6f", tool, outcome, caller.principal, took * 1000, caller.spent_usd,
            extra={"call": call},
        )  # fmt: skip


def current_caller() -> Caller | None:
    return _CALLER.get()


def call_state() -> CallState:
    """The current request's view of the server: the shared parts and its caller."""
    shared, caller = _SHARED.get(), _CALLER.get()
    if shared is None or caller is None:  # pragma: no cover - only outside a request
        raise ResourceError("The server is still starting; try again in a moment.")
    return shared.for_caller(caller)
