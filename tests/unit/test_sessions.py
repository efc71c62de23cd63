"""Each caller's classic sessions are capped (`remote/sessions.py`), on the SDK's real session manager: opening one
more closes that caller's least recently used idle session, never another caller's, never one with a call in
progress; when every one is busy the new one gets 429 with a message that says what to do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openrouter_research_mcp.remote.sessions import SessionsPerCaller, cap_sessions

from ..support import eventually

LIMIT = 3
MAX_BODY = 64 * 1024  # the SDK's limit on a request's body, here
URL = "http://127.0.0.1:8000/mcp"
VERSION = "2025-11-25"
MODERN = "2026-07-28"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def post_scope(token: str, headers: dict[str, str] | None = None, *, user: bool = False) -> Scope:
    """The ASGI scope of a session-less `POST /mcp` with `token`, as the app gets it, or (`user`) as the cap
    does, authenticated as the Verifier would."""
    sent = {**HEADERS, "Authorization": f"Bearer {token}", "Host": "127.0.0.1:8000", **(headers or {})}
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5555),
        "headers": [(k.lower().encode(), v.encode()) for k, v in sent.items()],
    }
    if user:
        scope["user"] = AuthenticatedUser(AccessToken(token=token, client_id="c", scopes=[], subject=token))
    return scope


class Verifier:
    """`NAME/CLIENT` is a good token for subject NAME, sent by OAuth client CLIENT."""

    async def verify_token(self, token: str) -> AccessToken | None:
        name, _, client = token.partition("/")
        return AccessToken(token=token, client_id=client or "c", scopes=[], subject=name) if name else None


class World:
    def __init__(self, http: httpx.AsyncClient, cap: SessionsPerCaller, release: asyncio.Event, app: ASGIApp) -> None:
        self.http, self.cap, self.release, self.app = http, cap, release, app

    async def open(self, token: str, *, pad: int = 0, headers: dict[str, str] | None = None) -> httpx.Response:
        info = {"name": "t", "version": "1"} | ({"pad": "x" * pad} if pad else {})
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": info},
        }
        sent = {**HEADERS, "Authorization": f"Bearer {token}", **(headers or {})}
        return await self.http.post(URL, json=body, headers=sent)

    async def sessionless(self, token: str, content: bytes) -> httpx.Response:
        """A POST with no session id whose body is `content`."""
        return await self.http.post(URL, content=content, headers={**HEADERS, "Authorization": f"Bearer {token}"})

    async def close(self, token: str, session: str) -> int:
        headers = {"Authorization": f"Bearer {token}", "mcp-session-id": session, "mcp-protocol-version": VERSION}
        return (await self.http.delete(URL, headers=headers)).status_code

    async def session(self, token: str) -> str:
        opened = await self.open(token)
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]
        done = await self.send(token, session, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert done.status_code == 202, done.text
        return session

    async def send(self, token: str, session: str, body: dict[str, object]) -> httpx.Response:
        headers = {**HEADERS, "Authorization": f"Bearer {token}", "mcp-session-id": session}
        return await self.http.post(URL, json=body, headers={**headers, "mcp-protocol-version": VERSION})

    async def ping(self, token: str, session: str) -> int:
        return (await self.send(token, session, {"jsonrpc": "2.0", "id": 2, "method": "ping"})).status_code

    async def modern_call(self, token: str) -> httpx.Response:
        """A `tools/call` of the 2026-07-28 generation: no session, no `initialize`."""
        envelope = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
        params = {"name": "wait", "arguments": {}, "_meta": envelope}
        body = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": params}
        modern = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "wait"}
        return await self.http.post(URL, json=body, headers={**HEADERS, "Authorization": f"Bearer {token}", **modern})

    async def wait_call(self, token: str, session: str) -> httpx.Response:
        body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "wait", "arguments": {}}}
        return await self.send(token, session, body)


@asynccontextmanager
async def serving(*, json_response: bool = True, limit: int = LIMIT) -> AsyncIterator[World]:
    """The SDK's server with the cap, in the test's own task (the manager's task group must end where it began):
    JSON answers, or SSE ones as the team server sends them."""
    release = asyncio.Event()
    auth = AuthSettings(
        issuer_url="https://issuer.example.test",  # type: ignore[arg-type]
        resource_server_url=URL,  # type: ignore[arg-type]
        validate_token_resource=False,
    )
    server = MCPServer("t", token_verifier=Verifier(), auth=auth)

    @server.tool()
    async def wait() -> str:
        await release.wait()
        return "done"

    app = server.streamable_http_app(json_response=json_response, max_request_body_size=MAX_BODY)
    assert cap_sessions(app, "/mcp", server.session_manager, limit)
    route = next(r for r in app.routes if getattr(r, "path", None) == "/mcp")
    cap = route.app.app  # type: ignore[attr-defined]
    assert isinstance(cap, SessionsPerCaller)
    async with server.session_manager.run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            yield World(http, cap, release, app)
        release.set()


def hold_opens(world: World) -> asyncio.Event:
    """Hold every session-less POST inside the cap, before the SDK sees it, until the event returned is set."""
    gate = asyncio.Event()
    inner = world.cap.app

    async def held(scope: Scope, receive: Receive, send: Send) -> None:
        if "mcp-session-id" not in Headers(scope=scope):
            await gate.wait()
        await inner(scope, receive, send)

    world.cap.app = held
    return gate


async def test_a_callers_least_recently_used_session_makes_room() -> None:
    async with serving() as world:
        first, second, third = [await world.session("alice") for _ in range(LIMIT)]
        assert await world.ping("alice", first) == 200  # the first is used again: the second is now the oldest
        fourth = await world.session("alice")
        assert await world.ping("alice", second) == 404  # closed to make room; the client opens a new one
        assert [await world.ping("alice", s) for s in (first, third, fourth)] == [200, 200, 200]


async def test_sessions_of_one_subject_count_together_whatever_client_opened_them() -> None:
    async with serving() as world:
        sessions = [await world.session(f"alice/client{n}") for n in range(LIMIT + 2)]
        alive = [await world.ping(f"alice/client{n}", s) for n, s in enumerate(sessions)]
        assert alive == [404, 404] + [200] * LIMIT


async def test_another_callers_sessions_are_never_closed_nor_counted() -> None:
    async with serving() as world:
        bobs = [await world.session("bob") for _ in range(LIMIT)]
        for _ in range(2 * LIMIT):
            await world.session("alice")
        assert [await world.ping("bob", s) for s in bobs] == [200] * LIMIT
        # Bob sending alice's session ids gets 404 from the SDK, and does not make her oldest session look used.
        alices = list(world.cap.held["alice"])
        assert await world.ping("bob", alices[0]) == 404
        await world.session("alice")
        assert await world.ping("alice", alices[0]) == 404


async def test_a_closed_session_no_longer_counts() -> None:
    async with serving() as world:
        sessions = [await world.session("alice") for _ in range(LIMIT)]
        assert await world.close("alice", sessions[0]) == 200
        await world.session("alice")
        assert [await world.ping("alice", s) for s in sessions[1:]] == [200] * (LIMIT - 1)  # none had to go


async def test_sessions_with_calls_in_progress_are_kept_and_the_new_one_is_refused() -> None:
    async with serving() as world:
        sessions = [await world.session("alice") for _ in range(LIMIT)]
        calls = [asyncio.create_task(world.wait_call("alice", s)) for s in sessions]
        await eventually(lambda: sum(world.cap.busy.values()) == LIMIT, what="three calls in progress")
        refused = await world.open("alice")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
        assert refused.json()["error"]["message"] == (
            "You have 3 sessions on this server, the most one caller may hold, and each has a request in progress. "
            "Wait for one of those requests to end, or close a session you no longer use (DELETE /mcp with its "
            "Mcp-Session-Id); clients of the 2026-07-28 protocol need no session."
        )
        assert (await world.open("bob")).status_code == 200  # others are not held up
        world.release.set()
        answers = await asyncio.gather(*calls)
        assert all(a.status_code == 200 and a.json()["result"]["content"][0]["text"] == "done" for a in answers)
        assert (await world.open("alice")).status_code == 200  # the calls ended: the oldest idle one makes room
        assert await world.ping("alice", sessions[0]) == 404


async def test_concurrent_opens_never_pass_the_cap() -> None:
    """However the opens interleave: one being opened counts as busy, so at most LIMIT are ever open."""
    async with serving() as world:
        opened = await asyncio.gather(*(world.open("alice") for _ in range(4 * LIMIT)))
        assert {o.status_code for o in opened} <= {200, 429}
        ids = [o.headers["mcp-session-id"] for o in opened if o.status_code == 200]
        assert len(ids) >= LIMIT
        alive = [await world.ping("alice", s) for s in ids]
        assert alive.count(200) == LIMIT == len(world.cap.held["alice"])
        assert world.cap.opening == {} and world.cap.busy == {}


async def test_the_2026_generation_is_never_counted_nor_refused() -> None:
    """Its requests carry no session id and open no session: many at once, with every classic session busy, are
    all answered, and nothing is kept for them."""
    async with serving() as world:
        sessions = [await world.session("alice") for _ in range(LIMIT)]
        classic = [asyncio.create_task(world.wait_call("alice", s)) for s in sessions]
        modern = [asyncio.create_task(world.modern_call("alice")) for _ in range(4 * LIMIT)]
        await eventually(lambda: sum(world.cap.busy.values()) == LIMIT, what="the classic calls in progress")
        assert (await world.open("alice")).status_code == 429  # the classic cap still holds meanwhile
        world.release.set()
        answers = await asyncio.gather(*classic, *modern)
        assert [a.status_code for a in answers] == [200] * 5 * LIMIT
        assert all(a.json()["result"]["content"][0]["text"] == "done" for a in answers)
        assert list(world.cap.held) == ["alice"] and len(world.cap.held["alice"]) == LIMIT
        assert world.cap.opening == {} and world.cap.busy == {}


async def test_no_session_is_closed_for_an_open_the_sdk_refuses() -> None:
    """A session-less ping, batch, malformed or oversized body, and an `initialize` the SDK refuses (no id, a wrong
    content type): no session comes of any of them, and none of the caller's idle sessions is closed for them."""
    async with serving() as world:
        sessions = [await world.session("alice") for _ in range(LIMIT)]
        stray = [
            b'{"jsonrpc": "2.0", "id": 7, "method": "ping"}',
            b'[{"jsonrpc": "2.0", "id": 8, "method": "initialize", "params": {}}]',
            b'{"jsonrpc": "2.0", "id": 9, "method": "initialize"',
            b"\xff\xfe not json",
            b'{"method": "initialize"}',
            b'{"jsonrpc": "2.0", "method": "initialize"}',
            b'{"jsonrpc": "2.0", "id": null, "method": "initialize"}',
        ]
        for content in stray:
            answer = await world.sessionless("alice", content)
            assert answer.status_code == 400, (content, answer.status_code, answer.text)
        wrong_type = await world.open("alice", headers={"Content-Type": "text/plain"})
        assert wrong_type.status_code == 400, wrong_type.text
        assert (await world.open("alice", pad=MAX_BODY)).status_code == 413  # past the SDK's limit: never opened
        assert [await world.ping("alice", s) for s in sessions] == [200] * LIMIT
        assert world.cap.opening == {} and world.cap.aside == {} and list(world.cap.held["alice"]) == sessions
        assert (await world.open("alice", pad=MAX_BODY // 2)).status_code == 200  # a big one within it opens
        assert await world.ping("alice", sessions[0]) == 404


async def test_a_body_declared_past_the_limit_is_refused_unread() -> None:
    """The SDK answers 413 from `Content-Length` alone: the cap reads nothing of such a body first."""
    async with serving() as world:
        pulled = 0

        async def receive() -> Message:
            nonlocal pulled
            pulled += 1
            return {"type": "http.request", "body": b"x" * 16384, "more_body": True}

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await world.app(post_scope("alice", {"Content-Length": "1000000000"}), receive, send)
        assert sent[0]["status"] == 413 and pulled == 0


async def test_a_session_set_aside_closes_once_the_new_one_is_open_and_no_call_starts_on_it_meanwhile() -> None:
    """An open at the limit sets the least recently used idle session aside. A call sent on it meanwhile waits for
    the open: the SDK opens the new session, the old one closes, and the call gets 404 (its client opens a new
    session), never a call cut off half-way; a caller never holds more than the limit. Another open meanwhile
    cannot take the same room: it is refused with the real counts."""
    async with serving() as world:
        sessions = [await world.session("alice") for _ in range(LIMIT)]
        busy = [asyncio.create_task(world.wait_call("alice", s)) for s in sessions[1:]]
        await eventually(lambda: sum(world.cap.busy.values()) == LIMIT - 1, what="two calls in progress")
        gate = hold_opens(world)
        opening = asyncio.create_task(world.open("alice"))
        await eventually(lambda: list(world.cap.aside) == [sessions[0]], what="the oldest idle session set aside")
        late = asyncio.create_task(world.wait_call("alice", sessions[0]))  # a call on it before the open ends
        await eventually(lambda: world.cap.waiting.get(sessions[0]) == 1, what="the call waiting for the open")
        refused = await world.open("alice")
        assert refused.status_code == 429
        assert refused.json()["error"]["message"] == (
            "You have 2 sessions on this server and 1 more being opened, 3 in all, the most one caller may hold, "
            "and each open one has a request in progress. Wait for one of those requests or openings to end, or "
            "close a session you no longer use (DELETE /mcp with its Mcp-Session-Id); clients of the 2026-07-28 "
            "protocol need no session."
        )
        assert not late.done() and not world.cap.busy.get(sessions[0])  # waiting, not started
        gate.set()
        opened = await opening
        assert opened.status_code == 200
        assert (await late).status_code == 404
        world.release.set()
        answers = await asyncio.gather(*busy)
        assert [a.json()["result"]["content"][0]["text"] for a in answers] == ["done"] * (LIMIT - 1)
        new = opened.headers["mcp-session-id"]
        assert [await world.ping("alice", s) for s in (*sessions[1:], new)] == [200] * LIMIT
        assert world.cap.aside == {} and list(world.cap.held["alice"]) == [*sessions[1:], new]


async def test_a_session_set_aside_for_an_open_the_sdk_refuses_is_kept_and_its_call_goes_on() -> None:
    async with serving() as world:
        sessions = [await world.session("alice") for _ in range(LIMIT)]
        gate = hold_opens(world)
        opening = asyncio.create_task(world.open("alice", headers={"Accept": "text/html"}))  # the SDK refuses it
        await eventually(lambda: list(world.cap.aside) == [sessions[0]], what="the oldest idle session set aside")
        late = asyncio.create_task(world.ping("alice", sessions[0]))
        await eventually(lambda: world.cap.waiting.get(sessions[0]) == 1, what="the ping waiting for the open")
        gate.set()
        assert (await opening).status_code >= 400
        assert await late == 200
        assert [await world.ping("alice", s) for s in sessions] == [200] * LIMIT
        assert world.cap.aside == {} and world.cap.opening == {} and world.cap.waiting == {}


async def test_the_cap_holds_with_sse_answers() -> None:
    """The team server answers over SSE: the body handed on after the cap read it still opens sessions, and the
    cap holds."""
    async with serving(json_response=False) as world:
        opened = [await world.open("alice") for _ in range(LIMIT + 2)]
        assert [o.status_code for o in opened] == [200] * (LIMIT + 2)
        alive = [await world.ping("alice", o.headers["mcp-session-id"]) for o in opened]
        assert alive == [404, 404] + [200] * LIMIT
        assert world.cap.opening == {} and len(world.cap.held["alice"]) == LIMIT


async def test_callers_who_never_come_back_leave_nothing_behind() -> None:
    """Sessions the SDK closed (here by DELETE) of callers who never open another are forgotten by a later open
    of anyone's, once they outnumber those still open."""
    async with serving() as world:
        gone = [(f"user{n}", await world.session(f"user{n}")) for n in range(70)]
        assert all([await world.close(name, session) == 200 for name, session in gone])
        assert len(world.cap.owner) == 70  # not yet forgotten: nobody has opened a session since
        kept = await world.session("zed")
        assert list(world.cap.held) == ["zed"] and world.cap.owner == {kept: "zed"}


async def test_a_request_woken_on_a_session_set_aside_again_waits_again() -> None:
    """An open the SDK refuses keeps the session it set aside, but another open, woken first, sets the same
    session aside again before the request waiting on it resumes: the request waits for that open too, and gets
    404 once the session has closed, rather than starting a call that would be cut off."""
    async with serving() as world:
        oldest = [await world.session("alice") for _ in range(LIMIT)][0]
        gate = hold_opens(world)
        refused = asyncio.create_task(world.open("alice", headers={"Accept": "text/html"}))  # the SDK refuses it
        await eventually(lambda: list(world.cap.aside) == [oldest], what="the oldest idle session set aside")
        decided = world.cap.aside[oldest]
        queued = asyncio.Event()
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": json.dumps(INITIALIZE).encode(), "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        async def open_next() -> None:
            """Waits on the first open's end from before the request does, so it is woken first, and reaches
            the cap with nothing in its way that suspends."""
            queued.set()
            await decided.wait()
            await world.cap(post_scope("alice", user=True), receive, send)

        opener = asyncio.create_task(open_next())
        await eventually(queued.is_set, what="the next open waiting")
        late = asyncio.create_task(world.wait_call("alice", oldest))
        await eventually(lambda: world.cap.waiting.get(oldest) == 1, what="the call waiting for the open")
        gate.set()
        assert (await refused).status_code >= 400
        await opener
        assert sent[0]["status"] == 200
        world.release.set()
        assert (await late).status_code == 404
        assert world.cap.aside == {} and world.cap.waiting == {} and world.cap.busy == {}


async def test_opens_answered_over_sse_never_pass_the_cap_while_their_streams_last() -> None:
    """With SSE answers the SDK sends an open's headers (and its session id) before the result: the session set
    aside closes then, not when the stream ends, so opens that overlap never leave more than the limit open."""
    async with serving(json_response=False) as world:
        sessions = [await world.session("alice") for _ in range(LIMIT)]
        streams = asyncio.Event()
        inner = world.cap.app

        async def slow_streams(scope: Scope, receive: Receive, send: Send) -> None:
            async def held(message: Message) -> None:
                if message["type"] == "http.response.body" and "mcp-session-id" not in Headers(scope=scope):
                    await streams.wait()  # an open's stream, after its headers
                await send(message)

            await inner(scope, receive, held)

        world.cap.app = slow_streams
        opens = [asyncio.create_task(world.open("alice")) for _ in range(2)]
        closed = sessions[:2]  # the two least recently used, one for each open

        def answered() -> bool:
            return not world.cap.opening and all(s not in world.cap.manager._server_instances for s in closed)

        await eventually(answered, what="both opens' headers sent and their room made, their streams still open")
        assert not any(o.done() for o in opens)
        live = [s for s in world.cap.manager._server_instances if world.cap.owner.get(s) == "alice"]
        assert len(live) == LIMIT and sessions[2] in live
        streams.set()
        assert [o.status_code for o in await asyncio.gather(*opens)] == [200, 200]


async def test_a_limit_of_one_session_is_refused_in_the_singular() -> None:
    async with serving(limit=1) as world:
        only = await world.session("alice")
        call = asyncio.create_task(world.wait_call("alice", only))
        await eventually(lambda: world.cap.busy.get(only), what="its call in progress")
        refused = await world.open("alice")
        assert refused.status_code == 429
        assert refused.json()["error"]["message"] == (
            "You have 1 session on this server, the most one caller may hold, and it has a request in progress. "
            "Wait for that request to end, or close a session you no longer use (DELETE /mcp with its "
            "Mcp-Session-Id); clients of the 2026-07-28 protocol need no session."
        )
        world.release.set()
        assert (await call).status_code == 200
