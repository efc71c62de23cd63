"""Who is calling, for every handler: tools, resources (static ones have no `Context`), completions and views.

`CallerMiddleware` runs around every MCP request and puts the request's caller in a context variable for the
duration of the request, so each handler builds its `CallState` from the request itself, never from anything the
server holds for "the" user. Over stdio there is one caller, `local`, with the configured key; over HTTP the
resolver is `remote/callers.py`. A tool call by a caller with a calls-per-minute quota is counted here, first.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult, TextContent

from .errors import QuotaExceededError
from .tools.state import LOCAL, Caller, CallState, Shared

__all__ = ["CallerMiddleware", "call_state", "current_caller"]

_CALLER: ContextVar[Caller | None] = ContextVar("openrouter_research_caller", default=None)
_SHARED: ContextVar[Shared | None] = ContextVar("openrouter_research_shared", default=None)

# How a request names its caller (`local` over stdio); the HTTP server swaps in its own (authenticated) resolver.
Resolver = Callable[[Shared, ServerRequestContext[Any, Any]], Caller]


def local_caller(shared: Shared, _ctx: ServerRequestContext[Any, Any]) -> Caller:
    return shared.caller(LOCAL)


class CallerMiddleware:
    """Sets the caller of each request (see the module docstring)."""

    def __init__(self, resolve: Resolver = local_caller) -> None:
        self.resolve = resolve

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        shared = ctx.lifespan_context
        if not isinstance(shared, Shared):
            return await call_next(ctx)
        caller = self.resolve(shared, ctx)
        if ctx.method == "tools/call" and caller.limits.calls_per_minute is not None:
            try:
                await shared.accounts.count_call(caller.principal, caller.limits)
            except QuotaExceededError as exc:
                return CallToolResult(content=[TextContent(type="text", text=exc.message)], is_error=True)
        caller_token = _CALLER.set(caller)
        shared_token = _SHARED.set(shared)
        try:
            return await call_next(ctx)
        finally:
            _CALLER.reset(caller_token)
            _SHARED.reset(shared_token)


def current_caller() -> Caller | None:
    return _CALLER.get()


def call_state() -> CallState:
    """The current request's view of the server: the shared parts and its caller."""
    shared, caller = _SHARED.get(), _CALLER.get()
    if shared is None or caller is None:  # pragma: no cover - only outside a request
        raise ResourceError("The server is still starting; try again in a moment.")
    return shared.for_caller(caller)
