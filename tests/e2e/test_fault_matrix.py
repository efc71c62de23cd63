"""The fault matrix: the real server, through the fake OpenRouter, under every failure we anticipate.

Each case asserts what the user sees (a correct answer by retry or fallback, or an `isError` result that names the
cause) and that the server then answers the next call normally. `FAULTS` is counted in the README.
"""

from __future__ import annotations

import io
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from PIL import Image

from ..fakes.openrouter import FakeOpenRouter
from ..support import pdf_bytes, png_declaring, resource_text, result_text
from .conftest import stdio_params
from .raw import RawServer


@dataclass
class Fault:
    """One row of the matrix: how to break things, what to call, and what the user must see."""

    name: str
    fault: dict[str, Any] = field(default_factory=dict)  # FakeOpenRouter.fail(**fault); empty: no chat fault
    tool: str = "ask"
    arguments: dict[str, Any] = field(default_factory=lambda: {"prompt": "What is 2+2?"})
    ok: bool = True  # True: a correct answer despite the fault; False: isError containing every word in `says`
    says: tuple[str, ...] = ()
    requests: int | None = None  # chat requests the fake must have seen, when it matters
    env: dict[str, str] = field(default_factory=dict)
    catalog_fails: bool = False
    dead_upstream: bool = False
    usage: dict[str, Any] = field(default_factory=dict)  # laid over every answer's usage (impossible numbers)
    never_says: tuple[str, ...] = ()  # text that must not appear in what the user sees
    progress: bool = True  # the caller follows progress (then `ask` streams the answer); False: unstreamed


# A chain longer than OpenRouter's native window of three: a fault on the first request (which carried the window)
# makes the server walk on to the fifth model itself.
FALLBACK = {
    "prompt": "What is 2+2?",
    "model": "openai/gpt-4o",
    "fallback_models": [
        "anthropic/claude-3.5-sonnet",
        "google/gemini-2.5-flash",
        "deepseek/deepseek-r1",
        "openai/gpt-4o-mini",
    ],
}

FAULTS = [
    Fault("429 with Retry-After", {"status": 429, "retry_after": "1"}, requests=2),
    Fault("429 without Retry-After", {"status": 429}, requests=2),
    *(Fault(f"{status}", {"status": status}, requests=2) for status in (500, 502, 503, 524, 529)),
    Fault(
        "503 on every retry, then fallback",
        {"status": 503, "times": 3, "model": "openai/gpt-4o"},
        arguments=FALLBACK,
        requests=4,
    ),
    Fault("401", {"status": 401}, ok=False, says=("401", "OPENROUTER_API_KEY"), requests=1),
    Fault("402", {"status": 402}, ok=False, says=("402", "credits"), requests=1),
    Fault(
        "403 moderation",
        {
            "status": 403,
            "metadata": {"reasons": ["violence", "harassment"], "flagged_input": "…", "provider_name": "OpenAI"},
        },
        ok=False,
        says=("moderation", "violence, harassment"),
        requests=1,
    ),
    Fault("404 model, then fallback", {"status": 404, "model": "openai/gpt-4o"}, arguments=FALLBACK, requests=2),
    Fault("404 model, no fallback", {"status": 404}, ok=False, says=("not found", "list_models"), requests=1),
    Fault("connection dropped", {"kind": "drop"}, requests=2),
    Fault("connection refused", ok=False, says=("Could not reach", "OPENROUTER_BASE_URL"), dead_upstream=True),
    Fault(
        "hang past the timeout", {"kind": "hang"}, ok=False, says=("time",), env={"OPENROUTER_TIMEOUT": "2"}, requests=1
    ),
    Fault("HTTP 200 with an error body", {"kind": "body", "status": 502}, requests=2),
    Fault("HTTP 200 with a 402 in the body", {"kind": "body", "status": 402}, ok=False, says=("credits",)),
    Fault("empty choices", {"kind": "empty"}, ok=False, says=("no choices",), requests=1),
    Fault("empty choices, then fallback", {"kind": "empty", "model": "openai/gpt-4o"}, arguments=FALLBACK),
    Fault("finish_reason error", {"kind": "finish_error"}, ok=False, says=("stopped with an error",)),
    Fault("non-JSON body", {"kind": "nonjson"}, ok=False, says=("not JSON",), requests=1),
    Fault(
        "SSE ends mid-stream with an error chunk",
        {"kind": "stream_error"},
        ok=False,
        says=("broke off", "Partial answer"),
        requests=1,
    ),
    Fault(
        "catalog fails to load", tool="list_models", arguments={}, ok=False, says=("catalog", "503"), catalog_fails=True
    ),
    Fault("catalog down, ask still answers", catalog_fails=True, requests=1),
    Fault(
        "wrong argument types",
        arguments={"prompt": "hi", "max_tokens": "lots"},
        ok=False,
        says=('`max_tokens` is a whole number, e.g. 1; got "lots"',),
        requests=0,
    ),
    Fault("empty prompt", arguments={"prompt": ""}, ok=False, says=("prompt",), requests=0),
    Fault(
        "100 models",
        tool="compare_models",
        arguments={"prompt": "hi", "models": [f"a/m{i}" for i in range(100)]},
        ok=False,
        says=("models",),
        requests=0,
    ),
    Fault(
        "prompt larger than the context",
        arguments={"prompt": "word " * 130_000},
        ok=False,
        says=("context", "128,000"),
        requests=0,
    ),
    # Upstream values and streams that must not be trusted (issue: hardened against bad upstreams)
    *(
        Fault(
            f"usage.cost {label}",
            usage={"cost": value},
            says=("impossible cost", "estimated"),
            never_says=("$nan", "$inf", "$-", "cost null"),
            requests=1,
        )
        for label, value in (("NaN", float("nan")), ("negative", -0.05), ("infinite", float("inf")))
    ),
    Fault(
        "prompt_tokens 1e400",
        usage={"prompt_tokens": float("inf")},
        says=("impossible prompt token count",),
        requests=1,
    ),
    Fault("total_tokens a string", usage={"total_tokens": "lots"}, says=("impossible total token count",)),
    Fault("stream left open after [DONE]", {"kind": "open_after_done"}, env={"OPENROUTER_TIMEOUT": "8"}, requests=1),
    Fault("stream never sends [DONE] and stays open", {"kind": "no_done"}, env={"OPENROUTER_TIMEOUT": "8"}, requests=1),
    *(
        Fault(
            f"malformed chunk: {label}",
            {"kind": "bad_chunk", "payload": payload},
            ok=False,
            says=("could not read", "malformed"),
            requests=1,
        )
        for label, payload in (
            ("choices of strings", {"id": "x", "choices": ["oops"]}),
            ("choices an object", {"id": "x", "choices": {"0": {}}}),
            ("delta a string", {"id": "x", "choices": [{"delta": "oops"}]}),
            ("content a number", {"id": "x", "choices": [{"delta": {"content": 123}}]}),
            ("reasoning a number", {"id": "x", "choices": [{"delta": {"reasoning": 7}}]}),
            ("annotations a number", {"id": "x", "choices": [{"delta": {"annotations": 5}}]}),
        )
    ),
    Fault(
        "unknown model",
        arguments={"prompt": "hi", "model": "openai/gpt-4o-mini-2"},
        ok=False,
        says=("Did you mean", "openai/gpt-4o-mini"),
        requests=0,
    ),
    # A caller who follows no progress gets the answer unstreamed: the same faults, on that path.
    Fault("500, unstreamed", {"status": 500}, requests=2, progress=False),
    Fault("connection dropped, unstreamed", {"kind": "drop"}, requests=2, progress=False),
    Fault("non-JSON body, unstreamed", {"kind": "nonjson"}, ok=False, says=("not JSON",), requests=1, progress=False),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", FAULTS, ids=[f.name for f in FAULTS])
async def test_fault_matrix(case: Fault, fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    env = dict(case.env)
    if case.dead_upstream:
        env["OPENROUTER_BASE_URL"] = f"http://127.0.0.1:{_free_port()}/api/v1"
    if case.catalog_fails:
        fake_openrouter.models_fail = 503
    if case.fault:
        fake_openrouter.fail(**case.fault)
    fake_openrouter.usage_patch.update(case.usage)

    async def followed(progress: float, total: float | None, message: str | None) -> None:
        pass

    async with Client(stdio_params(fake_openrouter, tmp_path / "cache", **env)) as client:
        result = await client.call_tool(
            case.tool, case.arguments, progress_callback=followed if case.progress else None
        )
        text = result_text(result)
        for word in case.never_says:
            assert word.lower() not in text.lower(), (word, text)
        if case.ok:
            assert not result.is_error, text
            assert "4" in result.structured_content["answer"] or "2+2" in result.structured_content["answer"]
            for word in case.says:
                assert word.lower() in text.lower(), (word, text)
        else:
            assert result.is_error, text
            for word in case.says:
                assert word.lower() in text.lower(), (word, text)
        if case.requests is not None:
            assert len(fake_openrouter.chat_requests()) == case.requests
        if case.tool == "ask" and case.requests:
            assert all(bool(r.body.get("stream")) == case.progress for r in fake_openrouter.chat_requests())
        # The server keeps serving: the next call is answered (successfully where the upstream is reachable).
        after = await client.call_tool("ask", {"prompt": "And 3+3?"})
        if case.dead_upstream:
            assert after.is_error and "Could not reach" in result_text(after)
        else:
            assert not after.is_error, result_text(after)


# ------------------------------------------------------------------------------------------------------ the wire
# Malformed JSON-RPC: every request that can be answered is answered with JSON-RPC's own codes, and the server goes
# on serving.

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602

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
    (
        "nesting 100,000 deep",
        b'{"jsonrpc":"2.0","id":24,"method":"ping","params":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        INVALID_REQUEST,
        24,
    ),
    (
        "nesting 100,000 deep, the id last",
        b'{"jsonrpc":"2.0","method":"ping","params":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b'},"id":"z"}',
        INVALID_REQUEST,
        "z",
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
    (
        "an unknown tool",
        b'{"jsonrpc":"2.0","id":25,"method":"tools/call","params":{"name":"ask_all","arguments":{}}}',
        INVALID_PARAMS,
        25,
    ),
]


@pytest.mark.parametrize(("name", "line", "code", "request_id"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_fault_matrix_wire(name: str, line: bytes, code: int, request_id: object, tmp_path: Path) -> None:
    with RawServer(tmp_path) as server:
        server.initialize()
        server.send(line)
        error = server.read(10)
        assert error["error"]["code"] == code, (name, error)
        assert error["id"] == request_id and error["error"]["message"]
        assert server.request("ping")["result"] == {}  # still serving
        assert server.close_stdin() == 0
    assert "Traceback" not in server.stderr


# ------------------------------------------------------------------------------------------------ hostile files
# Files a user names as attachments, each refused before anything is sent, in a sentence naming the file and the fix.


def _png(width: int = 16, height: int = 12) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _animation() -> bytes:
    frames = [Image.effect_noise((64, 64), 60 + i).convert("P") for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return out.getvalue()


def _make(root: Path, kind: str) -> str:
    """Put the hostile file `kind` under `root` (the allowed folder) and return the path a caller would give."""
    target = root / "file"
    if kind == "nul":
        return str(root / "a\x00b.png")
    if kind == "fifo":
        os.mkfifo(target.with_suffix(".png"))
        return str(target.with_suffix(".png"))
    if kind == "outside":
        secret = root.parent / "secret.png"
        secret.write_bytes(_png())
        (root / "link.png").symlink_to(secret)
        return str(root / "link.png")
    if kind == "outside fifo":
        os.mkfifo(root.parent / "pipe.png")
        return str(root.parent / "pipe.png")
    if kind == "link loop":
        (root / "a.png").symlink_to(root / "b.png")
        (root / "b.png").symlink_to(root / "a.png")
        return str(root / "a.png")
    if kind == "directory":
        (root / "folder.png").mkdir()
        return str(root / "folder.png")
    contents = {
        "bomb": (".png", png_declaring(50_000, 50_000)),
        "truncated png": (".png", _png()[:-30]),
        "png without iend": (".png", _png()[:-12]),
        "empty png": (".png", b""),
        "empty pdf": (".pdf", b""),
        "truncated pdf": (".pdf", pdf_bytes(3)[:200]),
        "corrupt pdf": (".pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50),
        "unknown type": (".exe", b"MZ" + b"\0" * 100),
        "cut animation": (".gif", _animation()[:-700]),
        "fake wav": (".wav", b"plain text, not a recording " * 10),
    }
    suffix, data = contents[kind]
    target.with_suffix(suffix).write_bytes(data)
    return str(target.with_suffix(suffix))


HOSTILE_FILES: list[tuple[str, tuple[str, ...]]] = [
    ("nul", ("NUL character",)),
    ("fifo", ("not a regular file",)),
    ("outside", ("outside the folders", "OPENROUTER_FILE_ROOTS")),
    ("directory", ("directory", "regular file")),
    ("bomb", ("2,500,000,000 pixels", "60,000,000")),
    ("truncated png", ("not a readable image", "truncated")),
    ("png without iend", ("not a readable image", "IEND")),
    ("empty png", ("empty",)),
    ("empty pdf", ("empty",)),
    ("truncated pdf", ("not a readable PDF",)),
    ("corrupt pdf", ("not a readable PDF",)),
    ("unknown type", ("kind of file", "Attach an image")),
    ("outside fifo", ("outside the folders",)),
    ("link loop", ("loop of symbolic links",)),
    ("cut animation", ("not a readable image", "truncated")),
    ("fake wav", ("not a WAV or MP3 file",)),
]


@pytest.mark.parametrize(("kind", "says"), HOSTILE_FILES, ids=[h[0] for h in HOSTILE_FILES])
async def test_fault_matrix_hostile_files(
    kind: str, says: tuple[str, ...], fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    spec = _make(root, kind)
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_FILE_ROOTS=str(root))) as client:
        result = await client.call_tool("ask", {"prompt": "What is this?", "attachments": [spec]})
        text = result_text(result)
        assert result.is_error, text
        for word in says:
            assert word.lower() in text.lower(), (word, text)
        assert "Error executing tool" not in text and "Traceback" not in text
        assert fake_openrouter.chat_requests() == []  # refused before anything was sent or billed
        after = await client.call_tool("ask", {"prompt": "And 3+3?"})
        assert not after.is_error, result_text(after)


def test_fault_matrix_wire_malformed_notification_gets_no_answer(tmp_path: Path) -> None:
    with RawServer(tmp_path) as server:
        server.initialize()
        server.send(b'{"jsonrpc":"2.0","method":"notifications/initialized","params":"x"}')
        assert server.request("ping")["result"] == {}  # the next thing on the wire is the ping's answer


# ------------------------------------------------------------------------------------------------ budgets
@pytest.mark.parametrize("cost", [float("nan"), -0.05], ids=["NaN", "negative"])
async def test_fault_matrix_impossible_costs_never_switch_a_budget_off(
    cost: float, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake_openrouter.structured_answers["research_plan"] = {
        "sub_questions": [{"question": f"Part {i}?", "rationale": "r"} for i in range(6)]
    }
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        honest = await client.call_tool(
            "deep_research", {"question": "How do heat pumps work?", "breadth": 6, "depth": 1, "max_cost_usd": 0.04}
        )
        honest_requests = len(fake_openrouter.chat_requests())
        fake_openrouter.clear()
        fake_openrouter.usage_patch["cost"] = cost
        lied_to = await client.call_tool(
            "deep_research", {"question": "How do heat pumps work?", "breadth": 6, "depth": 1, "max_cost_usd": 0.04}
        )
        usage = resource_text(await client.read_resource("openrouter://usage"))
    data = lied_to.structured_content
    assert not lied_to.is_error, result_text(lied_to)
    assert 0 <= data["cost_usd"] <= 0.04 and len(fake_openrouter.chat_requests()) <= honest_requests
    # The plan was scaled to fit the cap, and an impossible cost is counted at its worst case: never over the cap.
    assert honest.structured_content["plan"]["worst_case_usd"] <= 0.04 and data["stopped_because"] in ("done", "budget")
    json.loads(usage, parse_constant=lambda name: pytest.fail(f"{name} in openrouter://usage"))
