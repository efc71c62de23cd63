"""The stdio wire's input, without a process: however the reading of stdin ends (end of file, or the reader failing
on a pipe or a terminal), the requests already passed on are answered first, then the input ends, as on stdin's
close; a failure is said in one line."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import pytest
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCResponse

from openrouter_research_mcp.wire import _session, _thread_lines

PING = b'{"jsonrpc": "2.0", "id": 7, "method": "ping"}\n'
FAILED = "reading stdin failed"


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "openrouter_research_mcp.wire" and FAILED in r.message]


@pytest.mark.parametrize(
    "failure",
    [None, OSError(5, "Input/output error"), RuntimeError("the reader's own bug")],
    ids=["end-of-file", "read-error", "unexpected-error"],
)
async def test_wire_input_ends_after_owed_answers_at_eof_and_when_the_reader_fails(
    failure: Exception | None, caplog: pytest.LogCaptureFixture
) -> None:
    read_all = anyio.Event()

    async def stdin() -> AsyncGenerator[bytes, None]:
        try:
            yield PING
            if failure is not None:
                raise failure
        finally:
            read_all.set()

    written: list[bytes] = []

    async def stdout(data: bytes) -> None:
        written.append(data)

    with caplog.at_level(logging.WARNING, logger="openrouter_research_mcp.wire"), anyio.fail_after(10):
        async with _session(stdin(), stdout) as (read, send, _end_input), read, send:  # the server's, as it takes them
            request = await read.receive()
            assert isinstance(request, SessionMessage) and getattr(request.message, "id", None) == 7
            await read_all.wait()
            assert read.statistics().open_send_streams == 1  # no more input, but the ping is owed: still open
            await send.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=7, result={})))
            with pytest.raises(anyio.EndOfStream):  # answered: now the input ends, and the server with it
                await read.receive()
    assert [json.loads(line)["id"] for line in written] == [7]
    logged = failures(caplog)
    if failure is None:
        assert logged == []
    else:
        assert len(logged) == 1 and str(failure) in logged[0] and type(failure).__name__ in logged[0]
        assert "\n" not in logged[0]


async def test_wire_a_terminal_reader_that_fails_ends_input_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreadable = os.open(tmp_path, os.O_RDONLY)  # reading a directory fails, as a vanished terminal's read does

    async def stdout(data: bytes) -> None:
        raise AssertionError(f"nothing was owed, yet {data!r} was written")

    try:
        with caplog.at_level(logging.WARNING, logger="openrouter_research_mcp.wire"), anyio.fail_after(10):
            async with _session(_thread_lines(unreadable), stdout) as (read, send, _end_input), read, send:
                with pytest.raises(anyio.EndOfStream):
                    await read.receive()
    finally:
        os.close(unreadable)
    [logged] = failures(caplog)
    assert "IsADirectoryError" in logged
