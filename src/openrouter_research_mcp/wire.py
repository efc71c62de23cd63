"""The stdio wire, owned here rather than by the SDK: every line gets an answer, and signals stop the server cleanly.

The SDK's stdio transport drops a line it cannot parse or validate without a word, so a client whose request was
malformed waits forever. Here each line is checked first: unparseable input gets JSON-RPC's -32700 and an invalid
request -32600 (with its id whenever one can be read); good messages go on to the SDK's server unchanged, in both
protocol generations. A pipe is read and written by the event loop (no thread hop per message); a terminal by a daemon
thread. Either way a failed read is said in one line on stderr and ends the input as end of file does (what is owed
is still answered). Ctrl-C or SIGTERM never waits for the next line: the first signal ends the input (the server
finishes, its lifespan saves what it must) and a deadline backs that up. Only this module writes to the protocol's
stdout; fd 1 points at stderr while serving, as the SDK arranges it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import stat
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import pydantic_core
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError, JSONRPCRequest, jsonrpc_message_adapter

__all__ = ["SIGNAL_GRACE", "classify_line", "hold_signals", "serve_stdio"]

log = logging.getLogger(__name__)

# Seconds from a signal to a forced stop: hosts stop servers with SIGTERM and expect them gone within a couple of
# seconds; a person pressing Ctrl-C expects it within one.
SIGNAL_GRACE = {signal.SIGINT: 0.8, signal.SIGTERM: 1.6}
# Seconds the requests still running when the input ends may take to answer: a client that sends its last request
# and closes stdin (a script, a pipe) still gets its answers; a host that wants the server gone sends SIGTERM.
EOF_GRACE = 60.0
MAX_LINE_BYTES = 64 * 1024 * 1024
_held: list[int] = []  # signals that arrived between hold_signals() and serve_stdio listening
_holding: list[bool] = []  # [True] once hold_signals() ran: the process is a server, its signals are the wire's


def hold_signals() -> None:
    """From now until `serve_stdio` listens, SIGINT and SIGTERM are remembered, and it acts on them the moment it
    listens. Raised as KeyboardInterrupt while the event loop starts, Ctrl-C lands wherever the loop happens to be:
    inside a task group or a thread's start it comes out as a traceback, and out of the loop before its executor
    is let go it hangs the exit."""
    for signum in SIGNAL_GRACE:
        signal.signal(signum, _hold)
    _holding[:] = [True]


def _hold(signum: int, _frame: object) -> None:
    _held.append(signum)


def _gone(signum: int, _frame: object) -> None:
    os._exit(128 + signum)  # the wire has stopped listening and the process is on its way out: "stop at once"


def _error(code: int, message: str, request_id: Any = None) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


def _usable_id(value: Any) -> Any:
    return value if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)) else None


_DEPTH_ERROR = "recursion limit"
_SCALAR = re.compile(r'\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')


def _top_level_id(text: str) -> Any:
    """The `id` member of the object `text` opens, found by a scan that tracks only strings and depth, so that a
    message nested too deeply for any parser still has its id read (None when there is none)."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if depth == 1 and text[i + 1 : end] == "id" and (match := _SCALAR.match(text, end + 1)):
                with contextlib.suppress(ValueError):
                    return _usable_id(json.loads(match.group(1)))
            i = end + 1
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        i += 1
    return None


def _salvage_id(line: bytes) -> tuple[Any, bool]:
    """The id of a line the strict parser refused, read leniently (a BOM, trailing data, lone surrogates, deep
    nesting), and whether the whole line was JSON after all."""
    try:
        line.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    try:
        text = line.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
        value, end = json.JSONDecoder().raw_decode(text)
    except RecursionError:
        return _top_level_id(text), False
    except ValueError:
        return None, False
    whole = utf8 and end == len(text) and not line.startswith(b"\xef\xbb\xbf")
    return (_usable_id(value.get("id")) if isinstance(value, dict) else None), whole


def classify_line(line: bytes) -> SessionMessage | JSONRPCError | None:
    """A message to pass on, an error to answer with, or None for a line to ignore (blank, or a malformed
    notification: JSON-RPC never answers a message without an id)."""
    line = line.strip(b" \t\r\n")
    if not line:
        return None
    if len(line) > MAX_LINE_BYTES:
        return _error(INVALID_REQUEST, "Invalid Request: the message is larger than this server accepts.")
    try:
        value = pydantic_core.from_json(line)
    except ValueError as exc:
        request_id, whole = _salvage_id(line)
        if _DEPTH_ERROR in str(exc):  # JSON nested deeper than any parser here goes: refused, with its id
            return _error(INVALID_REQUEST, "Invalid Request: the message is nested too deeply to read.", request_id)
        if whole:  # JSON by the letter (lone surrogates, very deep nesting), but nothing this server can take
            return _error(INVALID_REQUEST, f"Invalid Request: {exc}", request_id)
        return _error(PARSE_ERROR, f"Parse error: the line is not one JSON object ({exc}).", request_id)
    if isinstance(value, list):
        return _error(INVALID_REQUEST, "Invalid Request: batches are not supported; send one JSON object per line.")
    if not isinstance(value, dict):
        return _error(INVALID_REQUEST, "Invalid Request: send one JSON-RPC object per line.")
    if "id" in value and _usable_id(value["id"]) is None:  # else it would pass as a notification, unanswered
        return _error(INVALID_REQUEST, "Invalid Request: id must be a string or an integer.")
    try:
        return SessionMessage(jsonrpc_message_adapter.validate_python(value, by_name=False))
    except ValueError:
        pass
    problems = [
        name
        for name, ok in (
            ('jsonrpc must be "2.0"', value.get("jsonrpc") == "2.0"),
            ("method must be a string", isinstance(value.get("method", ""), str)),
            ("params must be an object", isinstance(value.get("params", {}), dict)),
            ("id must be a string or an integer", "id" not in value or _usable_id(value["id"]) is not None),
        )
        if not ok
    ]
    if "id" not in value and "method" in value:
        log.warning("ignoring a malformed notification: %s", "; ".join(problems) or "invalid")
        return None
    return _error(
        INVALID_REQUEST,
        f"Invalid Request: {'; '.join(problems) or 'not a JSON-RPC message'}.",
        _usable_id(value.get("id")),
    )


def _is_pipe(fd: int) -> bool:
    """Whether `fd` is a pipe or a socket, which the event loop can read and write without a thread. A terminal or
    a file is not: making a terminal non-blocking would change it for the shell that shares it too."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _LineProtocol(asyncio.Protocol):
    """Stdin as lines, read by the event loop: each complete line is queued whole; one longer than MAX_LINE_BYTES
    is dropped as it arrives (never held in memory) and queued as an oversize marker, so it is answered too."""

    OVERSIZE = b"\x00oversize"

    def __init__(self, lines: asyncio.Queue[bytes | Exception | None]) -> None:
        self.lines = lines
        self.buffer = bytearray()
        self.skipping = False
        self.transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A read transport, though not always a subclass of asyncio's: uvloop's are its own classes.
        self.transport = cast(asyncio.ReadTransport, transport)

    def data_received(self, data: bytes) -> None:
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            if self.skipping:
                self.skipping = False
                self.lines.put_nowait(self.OVERSIZE)
            else:
                self.buffer += data[start : newline + 1]
                self.lines.put_nowait(bytes(self.buffer))
            self.buffer.clear()
            start = newline + 1
        if not self.skipping:
            self.buffer += data[start:]
            if len(self.buffer) > MAX_LINE_BYTES:
                self.buffer.clear()
                self.skipping = True
        if self.lines.qsize() > 64 and self.transport is not None:
            self.transport.pause_reading()  # the server is behind: let the client's writes wait

    def eof_received(self) -> bool:
        if self.skipping:
            self.lines.put_nowait(self.OVERSIZE)
        elif self.buffer:
            self.lines.put_nowait(bytes(self.buffer))
        self.lines.put_nowait(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lines.put_nowait(exc)  # None when the pipe closed; the error when reading it failed


Write = Callable[[bytes], Awaitable[None]]


async def _pipe_lines(fd: int) -> AsyncGenerator[bytes, None]:
    """Stdin's lines, read by the event loop itself (no thread, no hop per line); a failed read is raised here."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
    transport, _ = await loop.connect_read_pipe(lambda: _LineProtocol(lines), open(os.dup(fd), "rb", buffering=0))
    try:
        while (item := await lines.get()) is not None:
            if isinstance(item, Exception):
                raise item
            if lines.qsize() < 16:
                transport.resume_reading()
            yield item
    finally:
        transport.close()


async def _thread_lines(fd: int) -> AsyncGenerator[bytes, None]:
    """Stdin's lines, read by a daemon thread (a terminal, a file), so a blocked read never holds up the exit; a
    failed read is raised here."""
    send, receive = anyio.create_memory_object_stream[bytes | Exception](0)
    token = anyio.lowlevel.current_token()

    def hand_over(item: bytes | Exception) -> bool:
        """Give the event loop one item; False once nothing takes them (the server is on its way out)."""
        try:
            anyio.from_thread.run(send.send, item, token=token)
        except BaseException:
            return False
        return True

    def read() -> None:
        try:
            with open(fd, "rb", closefd=False) as stream:
                for raw in stream:
                    if not hand_over(raw):
                        return
        except Exception as exc:  # (hand_over never raises: this is the read failing)
            hand_over(exc)
        finally:
            with contextlib.suppress(BaseException):  # the end of the lines (unless the event loop is gone)
                anyio.from_thread.run_sync(send.close, token=token)

    threading.Thread(target=read, name="mcp-stdin", daemon=True).start()
    with send, receive:  # closed here too: the thread's own close may come after the event loop has gone
        async for item in receive:
            if isinstance(item, Exception):
                raise item
            yield item


def _reason(exc: BaseException) -> str:
    """An exception on one line: its type and message."""
    return " ".join(f"{type(exc).__name__}: {exc}".split()).removesuffix(":")


@asynccontextmanager
async def _session(
    lines: AsyncGenerator[bytes, None], write: Write
) -> AsyncIterator[tuple[Any, Any, Callable[[], None]]]:
    """The server's read and write streams over stdin's `lines` and `write` (onto stdout), and a function that ends
    the input. Each line is checked (`classify_line`) and passed on or answered. When the lines end, and just the
    same when reading them fails (said in one line on stderr), no more are read and the input ends once every
    request passed on has been answered (at most EOF_GRACE): the server then stops as on stdin's close."""
    in_send, in_recv = anyio.create_memory_object_stream[SessionMessage | Exception](32)
    out_send, out_recv = anyio.create_memory_object_stream[SessionMessage](32)
    err_send = out_send.clone()
    ended = anyio.Event()
    pending: set[Any] = set()  # ids of requests passed on and not yet answered

    def end_input() -> None:
        if not ended.is_set():
            ended.set()
            in_send.close()
            err_send.close()

    async def route(raw: bytes) -> None:
        item = (
            _error(INVALID_REQUEST, "Invalid Request: the message is larger than this server accepts.")
            if raw is _LineProtocol.OVERSIZE
            else classify_line(raw)
        )
        if isinstance(item, SessionMessage):
            message = item.message
            if isinstance(message, JSONRPCRequest):
                pending.add(message.id)
            elif getattr(message, "method", None) == "notifications/cancelled":
                # A cancelled request is never answered (the protocol says so): nothing more is owed for it.
                params = getattr(message, "params", None)
                cancelled = params.get("requestId") if isinstance(params, dict) else getattr(params, "request_id", None)
                pending.discard(cancelled)
            await in_send.send(item)
        elif item is not None:
            await err_send.send(SessionMessage(item))

    async def pump() -> None:
        try:
            async with contextlib.aclosing(lines):
                async for raw in lines:
                    if ended.is_set():
                        return
                    try:
                        await route(raw)
                    except anyio.BrokenResourceError:  # the server stopped reading: it is on its way out
                        return
        except Exception as exc:
            if ended.is_set():  # the input was ended on purpose (a signal, the client gone): nothing failed
                return
            log.warning(
                "reading stdin failed (%s); no more requests will be read, and the server stops once it has "
                "answered those it has",
                _reason(exc),
            )
        await drain_then_end()

    async def drain_then_end() -> None:
        with anyio.move_on_after(EOF_GRACE):
            while pending and not ended.is_set():
                await anyio.sleep(0.02)
        end_input()

    async def writer() -> None:  # the only writer on the wire
        async with out_recv:
            async for message in out_recv:
                if getattr(message.message, "method", None) is None:  # a response: its request is answered
                    pending.discard(getattr(message.message, "id", None))
                data = (message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n").encode()
                try:
                    await write(data)
                except (OSError, RuntimeError):  # the client hung up (a closed pipe transport: RuntimeError)
                    end_input()
                    return

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(writer)
        tasks.start_soon(pump)
        try:
            yield in_recv, out_send, end_input
        finally:
            end_input()
            out_send.close()
            tasks.cancel_scope.cancel()


@asynccontextmanager
async def _stdio() -> AsyncIterator[tuple[Any, Any, Callable[[], None]]]:
    """The server's read and write streams over the real stdin/stdout (see `_session`).

    A pipe or socket (how hosts start servers) is read and written by the event loop itself; a terminal or a file
    by a daemon reader thread and the worker threads, so a blocked read never holds up the exit."""
    sys.stdout.flush()
    wire_in = os.dup(0)
    wire_out = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    saved_in, saved_out = os.dup(0), os.dup(1)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # stray writes to fd 1 (a library's print) go to stderr, never onto the wire
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    try:
        with open(wire_out, "wb", closefd=False) as stream:
            if _is_pipe(wire_out):
                out, protocol = await loop.connect_write_pipe(
                    asyncio.streams.FlowControlMixin, open(os.dup(wire_out), "wb", buffering=0)
                )
                transports.append(out)
                pipe = asyncio.StreamWriter(out, protocol, None, loop)

                async def write(data: bytes) -> None:
                    pipe.write(data)
                    await pipe.drain()  # only waits when the client stops reading

            else:

                async def write(data: bytes) -> None:
                    await anyio.to_thread.run_sync(_write, stream, data)

            lines = _pipe_lines(wire_in) if _is_pipe(wire_in) else _thread_lines(wire_in)
            async with _session(lines, write) as streams:
                yield streams
    finally:
        for transport in transports:
            transport.close()
        for fd in (saved_in, saved_out):  # the event loop made the pipes non-blocking: give them back as found
            with contextlib.suppress(OSError):
                os.set_blocking(fd, True)
        sys.stdout.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_in, 0)
        for fd in (saved_in, saved_out, wire_out):
            os.close(fd)
        # wire_in stays open for a daemon reader, which may still be blocked on it; the process exits next.


def _write(stream: Any, data: bytes) -> None:
    stream.write(data)
    stream.flush()


async def serve_stdio(server: MCPServer, on_signal: Callable[[], None] = lambda: None) -> None:
    """Serve `server` over stdio until the input ends or a signal arrives (see the module docstring). `on_signal`
    runs first on SIGINT/SIGTERM (e.g. to mark running work as interrupted rather than cancelled)."""
    low = server._lowlevel_server  # what the SDK's own run_stdio_async drives; there is no public accessor
    grace = dict(SIGNAL_GRACE)
    async with _stdio() as (read, write, end_input), anyio.create_task_group() as group:

        def stop(number: int) -> None:
            signum = signal.Signals(number)
            log.info("stopping on %s", signum.name)
            with contextlib.suppress(Exception):
                on_signal()
            end_input()
            deadline = anyio.current_time() + grace[signum]
            group.cancel_scope.deadline = min(group.cancel_scope.deadline, deadline)
            grace.update(dict.fromkeys(grace, 0.0))  # a second signal stops at once

        async def on_signals() -> None:
            try:
                with anyio.open_signal_receiver(*grace) as signals:
                    while _held:  # listening now: what arrived before is acted on, what comes after is received
                        stop(_held.pop(0))
                    async for signum in signals:
                        stop(signum)
            finally:
                for signum in grace if _holding else ():
                    signal.signal(signum, _gone)

        group.start_soon(on_signals)
        await low.run(read, write, low.create_initialization_options())
        group.cancel_scope.cancel()
