"""A cap on each caller's open classic sessions (the `initialize` of the 2025-11-25 generation), so that no caller,
and no client that opens a session at every reconnect and never sends `DELETE`, can fill the SDK's 10,000 sessions
and lock everyone else out (`initialize` would answer 503 "Too many open sessions" to all until they expire).

A caller holds at most `OPENROUTER_MCP_SESSIONS_PER_CALLER` sessions. When one who holds that many opens another,
their least recently used session with no POST in flight is closed to make room: the client that still holds it (if
any) gets 404 on its next request and opens a new session, as the spec says it must. Only when each of their
sessions has a call in progress is the new one refused, with 429 and a message that says why and what to do. A
caller is the principal of `callers.principal_of`, so a person's sessions count together whatever client opened
them; without authentication (loopback only, one person) there is no cap, and with `OPENROUTER_DATABASE_URL`
there are no sessions to cap (the SDK's stateless mode). Requests of the 2026-07-28 generation (an
`MCP-Protocol-Version` that is no handshake version, routed by the SDK the same way) open no session and pass
through untouched.

The sessions are the SDK's (`StreamableHTTPSessionManager`): `SessionsPerCaller` wraps its `/mcp` endpoint inside
authentication, notes each new session's id from the answer to its `initialize`, and asks the manager which are
still open (`_server_instances`) and to close one (`_discard_session`). Those two names are the SDK's private
ones; `tests/unit/test_sessions.py` runs against the real manager, so an SDK that renames them fails there first.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .callers import principal_of

__all__ = ["SessionsPerCaller", "cap_sessions"]

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5  # a refusal's Retry-After: a call in progress usually ends within seconds


class SessionsPerCaller:
    """ASGI middleware around the SDK's session manager (see the module docstring). `clock` orders sessions by
    their last use."""

    def __init__(
        self,
        app: ASGIApp,
        manager: StreamableHTTPSessionManager,
        limit: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.manager, self.limit, self.clock = app, manager, limit, clock
        self.held: dict[str, OrderedDict[str, None]] = {}  # caller → their sessions, least recently used first
        self.owner: dict[str, str] = {}  # session id → its caller
        self.busy: Counter[str] = Counter()  # POSTs in flight, by session id
        self.opening: Counter[str] = Counter()  # `initialize` requests in flight, by caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] != "http" or not isinstance(user, AuthenticatedUser):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await self.app(scope, receive, send)  # the 2026-07-28 generation (as the SDK routes it): no sessions
            return
        session = headers.get(MCP_SESSION_ID_HEADER)
        if session is None:
            if scope.get("method") == "POST":
                await self._open(principal_of(user.access_token), scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        caller = self.owner.get(session)
        if caller is not None and caller != principal_of(user.access_token):
            caller = None  # another caller's session id: the SDK answers 404, and its owner's use is not counted
        post = scope.get("method") == "POST"
        if caller is not None:
            self.held[caller].move_to_end(session)
            if post:
                self.busy[session] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            if caller is not None and post:
                self.busy[session] -= 1
                if self.busy[session] <= 0:
                    del self.busy[session]

    async def _open(self, caller: str, scope: Scope, receive: Receive, send: Send) -> None:
        """A request with no session id: an `initialize` that opens a session if the SDK accepts it."""
        if not await self._make_room(caller):
            await self._refuse(scope, receive, send)
            return
        self.opening[caller] += 1  # counted until its answer says whether a session was opened
        counted = True

        async def watched(message: Message) -> None:
            nonlocal counted
            if message["type"] == "http.response.start":
                session = Headers(raw=message.get("headers", [])).get(MCP_SESSION_ID_HEADER)
                if session is not None and message["status"] < 400:
                    self._note(caller, session)
                self._opened(caller)
                counted = False
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            if counted:
                self._opened(caller)

    def _opened(self, caller: str) -> None:
        self.opening[caller] -= 1
        if self.opening[caller] <= 0:
            del self.opening[caller]

    def _note(self, caller: str, session: str) -> None:
        self.held.setdefault(caller, OrderedDict())[session] = None
        self.owner[session] = caller

    def _open_sessions(self, caller: str) -> OrderedDict[str, None]:
        """`caller`'s sessions that are still open, least recently used first (those the SDK has closed, after
        an idle timeout, a DELETE or a crash, are forgotten here)."""
        mine = self.held.get(caller)
        if mine is None:
            return OrderedDict()
        live = self._instances()
        for session in [s for s in mine if s not in live]:
            del mine[session]
            self.owner.pop(session, None)
        if not mine:
            del self.held[caller]
        return mine

    def _instances(self) -> dict[str, Any]:
        instances: dict[str, Any] = self.manager._server_instances  # private to the SDK (see the module docstring)
        return instances

    async def _make_room(self, caller: str) -> bool:
        """Close `caller`'s least recently used idle sessions until one more fits; False when none can go."""
        mine = self._open_sessions(caller)
        while len(mine) + self.opening[caller] >= self.limit:
            idle = next((s for s in mine if not self.busy.get(s)), None)
            if idle is None:
                return False
            del mine[idle]
            self.owner.pop(idle, None)
            transport = self._instances().get(idle)
            log.info(
                "closed a caller's least recently used session (%s…) to open another: %d sessions per caller "
                "(OPENROUTER_MCP_SESSIONS_PER_CALLER)",
                idle[:8],
                self.limit,
            )
            if transport is not None:
                await self.manager._discard_session(idle, transport)  # private to the SDK (see the module docstring)
        return True

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = (
            f"You have {self.limit} sessions on this server, the most one caller may hold, and each has a request "
            "in progress. Wait for one of those requests to end, or close a session you no longer use (DELETE /mcp "
            "with its Mcp-Session-Id); clients of the 2026-07-28 protocol need no session."
        )
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}
        response = JSONResponse(body, status_code=429, headers={"Retry-After": str(RETRY_AFTER_S)})
        await response(scope, receive, send)


def cap_sessions(app: Starlette, path: str, manager: StreamableHTTPSessionManager, limit: int) -> bool:
    """Put `SessionsPerCaller` inside the authentication of `app`'s MCP endpoint at `path`; False (nothing done)
    when that endpoint has no authentication (then every request is the one local caller's)."""
    for route in app.routes:
        if isinstance(route, Route) and route.path == path and isinstance(route.app, RequireAuthMiddleware):
            route.app.app = SessionsPerCaller(route.app.app, manager, limit)
            return True
    return False
