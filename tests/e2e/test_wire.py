"""Malformed JSON-RPC on the wire: every request that can be answered is answered, with JSON-RPC's own codes, and
the server goes on serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from .raw import RawServer

PARSE_ERROR, INVALID_REQUEST = -32700, -32600

# (name, the line sent, the code expected, the id expected in the error)
MALFORMED: list[tuple[str, bytes, int, object]] = [
    ("params a string", b'{"jsonrpc":"2.0","id":11,"method":"tools/list","params":"x"}', INVALID_REQUEST, 11),
    ("params an array", b'{"jsonrpc":"2.0","id":12,"method":"tools/list","params":[1]}', INVALID_REQUEST, 12),
    ("method a number", b'{"jsonrpc":"2.0","id":13,"method":5}', INVALID_REQUEST, 13),
    ("jsonrpc 1.0", b'{"jsonrpc":"1.0","id":14,"method":"ping"}', INVALID_REQUEST, 14),
    ("jsonrpc missing", b'{"id":15,"method":"ping"}', INVALID_REQUEST, 15),
    ("lone surrogate", b'{"jsonrpc":"2.0","id":16,"method":"ping","params":{"x":"\\ud800"}}', INVALID_REQUEST, 16),
    (
        "nesting 300 deep",
        b'{"jsonrpc":"2.0","id":17,"method":"ping","params":{"x":' + b"[" * 300 + b"]" * 300 + b"}}",
        INVALID_REQUEST,
        17,
    ),
    ("trailing garbage", b'{"jsonrpc":"2.0","id":18,"method":"ping"} garbage', PARSE_ERROR, 18),
    (
        "two objects on a line",
        b'{"jsonrpc":"2.0","id":19,"method":"ping"}{"jsonrpc":"2.0","id":20,"method":"ping"}',
        PARSE_ERROR,
        19,
    ),
    ("a UTF-8 BOM", b'\xef\xbb\xbf{"jsonrpc":"2.0","id":21,"method":"ping"}', PARSE_ERROR, 21),
    ("not JSON at all", b"hello there", PARSE_ERROR, None),
    ("invalid UTF-8", b'{"jsonrpc":"2.0","id":22,"method":"ping","params":{"x":"\xff\xfe"}}', PARSE_ERROR, 22),
    ("a batch", b'[{"jsonrpc":"2.0","id":23,"method":"ping"}]', INVALID_REQUEST, None),
    ("id an object", b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', INVALID_REQUEST, None),
]


@pytest.mark.parametrize(("name", "line", "code", "request_id"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_wire_malformed_request_gets_a_json_rpc_error(
    name: str, line: bytes, code: int, request_id: object, tmp_path: Path
) -> None:
    with RawServer(tmp_path) as server:
        server.initialize()
        server.send(line)
        error = server.read(10)
        assert error["error"]["code"] == code, (name, error)
        assert error["id"] == request_id and error["error"]["message"]
        assert server.request("ping")["result"] == {}  # still serving
        assert server.close_stdin() == 0
    assert "Traceback" not in server.stderr


def test_wire_malformed_notification_gets_no_answer(tmp_path: Path) -> None:
    with RawServer(tmp_path) as server:
        server.initialize()
        server.send(b'{"jsonrpc":"2.0","method":"notifications/initialized","params":"x"}')
        assert server.request("ping")["result"] == {}  # the next thing on the wire is the ping's answer
