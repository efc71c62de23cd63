"""A cap on each caller's open classic sessions (the `initialize` of the 2025-11-25 generation), so that no caller,
and no client that opens a session at every reconnect and never sends `DELETE`, can fill the SDK's 10,000 sessions
and lock everyone else out (`initialize` would answer 503 "Too many open sessions" to all until they expire).

A caller holds at most `OPENROUTER_MCP_SESSIONS_PER_CALLER` sessions. When one who holds that many opens another,
their least recently used session with no POST in flight is set aside to make room, and closed once the SDK has
opened the new one (when its answer starts with the new session's id: with SSE answers, before the result is
sent); if the SDK opens nothing, it is kept. A request on a session set aside waits for that outcome (a few
milliseconds), and again if another open has set it aside meanwhile, so no call starts on a session about to
close. The client that still holds a closed session (if any) gets 404 on its next request and opens a new one, as
the spec says it must. Only when each of their sessions has a call in progress (or is set aside, or being opened)
is the new one refused, with 429 and a message that says why and what to do. So a caller never holds more than the
limit, but for the moment between the SDK's answer to an `initialize` and the closing of the session that made
room for it. An open is a POST with no session id whose body, read first (up to the SDK's own limit) and handed on
intact, is one JSON object with the method `initialize` (the SDK may still refuse it: then nothing is closed); any
other session-less request (a stray ping, a batch, a body past the limit) passes straight through to the SDK's 400
or 413. A caller is the principal of `callers.principal_of`, so a person's
sessions count together whatever client opened them; without authentication (loopback only, one person) there is
no cap, and with `OPENROUTER_DATABASE_URL` there are no sessions to cap (the SDK's stateless mode). Requests of the
2026-07-28 generation (an `MCP-Protocol-Version` that is no handshake version, routed by the SDK the same way)
open no session and pass through untouched.

The sessions are the SDK's (`StreamableHTTPSessionManager`): `SessionsPerCaller` wraps its `/mcp` endpoint inside
authentication, notes each new session's id from the answer to its `initialize`, and asks the manager which are
still open (`_server_instances`) and to close one (`_discard_session`). Those two names are the SDK's private
ones; `tests/unit/test_sessions.py` runs against the real manager, so an SDK that renames them fails there first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict, deque
from typing import Any

import pydantic_core
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
    """ASGI middleware around the SDK's session manager (see the module docstring)."""

    def __init__(self, app: ASGIApp, manager: StreamableHTTPSessionManager, limit: int) -> None:
        self.app, self.manager, self.limit = app, manager, limit
        self.held: dict[str, OrderedDict[str, None]] = {}  # caller → their sessions, least recently used first
        self.owner: dict[str, str] = {}  # session id → its caller
        self.busy: Counter[str] = Counter()  # POSTs in flight, by session id
        self.opening: Counter[str] = Counter()  # `initialize` requests in flight, by caller
        self.aside: dict[str, asyncio.Event] = {}  # sessions set aside to make room → their open's end
        self.waiting: Counter[str] = Counter()  # requests waiting for the open that set their session aside

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
            if scope.get("method") == "POST" and not _declared_past(headers, self.manager.max_request_body_size):
                body, receive = await _read_body(receive, self.manager.max_request_body_size)
                opens = _is_initialize(body)
                del body  # (the SDK reads its own copy: this one is not kept for the request's life)
                if opens:
                    await self._open(principal_of(user.access_token), scope, receive, send)
                    return
            await self.app(scope, receive, send)  # no session can come of it: the SDK answers (400, 405, 413)
            return
        while (decided := self.aside.get(session)) is not None:  # (kept, it may be set aside again at once)
            self.waiting[session] += 1
            try:
                await decided.wait()  # closed (the SDK answers 404) or kept, as the open that set it aside went
            finally:
                self.waiting[session] -= 1
                if self.waiting[session] <= 0:
                    del self.waiting[session]
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
        """An `initialize` with no session id, which opens a session if the SDK accepts it. The sessions that make
        room for it are set aside, and its place taken (`opening`), before anything is awaited, so opens that
        interleave never count the same room twice; they are closed only once the SDK has opened the new one."""
        self._sweep()
        mine = self._open_sessions(caller)
        staying = [s for s in mine if s not in self.aside]
        excess = len(staying) + self.opening[caller] + 1 - self.limit
        aside = [s for s in staying if not self.busy.get(s)][: max(0, excess)]
        if len(aside) < excess:
            await self._refuse(len(staying), self.opening[caller], scope, receive, send)
            return
        decided = asyncio.Event()
        self.aside.update(dict.fromkeys(aside, decided))
        self.opening[caller] += 1  # counted until its answer says whether a session was opened
        counted = True

        async def decide(opened: bool) -> None:
            """Close the sessions set aside (the new one is open) or keep them, and let their requests go on."""
            try:
                if opened:
                    await self._close(aside)
            finally:
                for session in aside:
                    self.aside.pop(session, None)
                decided.set()

        async def watched(message: Message) -> None:
            nonlocal counted
            if message["type"] == "http.response.start":
                session = Headers(raw=message.get("headers", [])).get(MCP_SESSION_ID_HEADER)
                opened = False
                if session is not None and message["status"] < 400:
                    self._note(caller, session)  # (with SSE answers, before the result is sent)
                    opened = True
                self._opened(caller)
                counted = False
                await decide(opened)  # at the answer's start: an SSE answer's stream may last a while
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            if counted:
                self._opened(caller)
            if not decided.is_set():  # no answer began: nothing was opened
                await decide(False)

    def _opened(self, caller: str) -> None:
        self.opening[caller] -= 1
        if self.opening[caller] <= 0:
            del self.opening[caller]

    def _note(self, caller: str, session: str) -> None:
        self.held.setdefault(caller, OrderedDict())[session] = None
        self.owner[session] = caller

    def _open_sessions(self, caller: str, live: dict[str, Any] | None = None) -> OrderedDict[str, None]:
        """`caller`'s sessions that are still open (in `live`, by default the manager's), least recently used
        first; those the SDK has closed, after an idle timeout, a DELETE or a crash, are forgotten here (and a
        caller left with none, whom `_note` adds again at their next session)."""
        mine = self.held.get(caller)
        if mine is None:
            return OrderedDict()
        live = self._instances() if live is None else live
        for session in [s for s in mine if s not in live]:
            del mine[session]
            self.owner.pop(session, None)
        if not mine:
            del self.held[caller]
        return mine

    def _sweep(self) -> None:
        """Forget every caller's sessions the SDK has closed once they are many more than those still open, so
        callers who never come back leave nothing behind (each sweep is paid for by as many opens as it reads)."""
        live = self._instances()
        if len(self.owner) > 2 * len(live) + 64:
            for caller in list(self.held):
                self._open_sessions(caller, live)

    def _instances(self) -> dict[str, Any]:
        instances: dict[str, Any] = self.manager._server_instances  # private to the SDK (see the module docstring)
        return instances

    async def _close(self, sessions: list[str]) -> None:
        """Close sessions set aside to make room, and forget them."""
        for session in sessions:
            caller = self.owner.get(session)
            if caller is not None and session in self.held.get(caller, {}):
                del self.held[caller][session]
            self.owner.pop(session, None)
            transport = self._instances().get(session)
            if transport is None:
                continue  # closed meanwhile (idle timeout, DELETE)
            log.info(
                "closed a caller's least recently used session (%s…) to open another: %d sessions per caller "
                "(OPENROUTER_MCP_SESSIONS_PER_CALLER)",
                session[:8],
                self.limit,
            )
            try:
                await self.manager._discard_session(session, transport)  # private to the SDK (see the docstring)
            except Exception:  # (it forgets the session before anything can fail: it answers 404 all the same)
                log.warning("a session closed to make room did not end cleanly (%s…)", session[:8], exc_info=True)

    async def _refuse(self, held: int, opening: int, scope: Scope, receive: Receive, send: Send) -> None:
        """429 for an open that finds no room: `held` sessions open (not counting those set aside), each with a
        request in progress, and `opening` more being opened."""
        if opening:
            have = (
                f"You have {held} session{'s' if held != 1 else ''} on this server and {opening} more being "
                f"opened, {self.limit} in all, the most one caller may hold, and each open one has a request in "
                "progress. Wait for one of those requests or openings to end"
            )
        else:
            have = (
                f"You have {held} session{'s' if held != 1 else ''} on this server, the most one caller may hold, "
                f"and {'each has' if held != 1 else 'it has'} a request in progress. Wait for "
                f"{'one of those requests' if held != 1 else 'that request'} to end"
            )
        message = (
            f"{have}, or close a session you no longer use (DELETE /mcp with its Mcp-Session-Id); clients of the "
            "2026-07-28 protocol need no session."
        )
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}
        response = JSONResponse(body, status_code=429, headers={"Retry-After": str(RETRY_AFTER_S)})
        await response(scope, receive, send)


def _declared_past(headers: Headers, limit: int) -> bool:
    """Whether a request's `Content-Length` already says its body is past `limit` (the SDK answers 413 unread)."""
    declared = headers.get("content-length", "")
    return declared.isdigit() and int(declared) > limit


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """A request's body, read up to `limit` bytes (None past it, or when the client went away), and a `receive`
    that hands the app the same messages again, then the rest."""
    read: list[Message] = []
    size, whole = 0, False
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > limit:
            break
        if not message.get("more_body", False):
            whole = True
            break
    replay = deque(read)

    async def replayed() -> Message:
        return replay.popleft() if replay else await receive()

    body = b"".join(m.get("body", b"") for m in read) if whole else None
    return body, replayed


def _is_initialize(body: bytes | None) -> bool:
    """Whether `body` may open a session: one JSON object whose method is `initialize`, parsed as the SDK parses
    it. (The SDK asks more of it, an id and valid params; one it refuses opens nothing, and closes nothing here.)"""
    if body is None:
        return False
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "initialize"


def cap_sessions(app: Starlette, path: str, manager: StreamableHTTPSessionManager, limit: int) -> bool:
    """Put `SessionsPerCaller` inside the authentication of `app`'s MCP endpoint at `path`; False (nothing done)
    when no such endpoint has authentication (then every request is the one local caller's, or the SDK has moved
    its routes: the server warns when authentication is on)."""
    for route in app.routes:
        if isinstance(route, Route) and route.path == path and isinstance(route.app, RequireAuthMiddleware):
            route.app.app = SessionsPerCaller(route.app.app, manager, limit)
            return True
    return False
