"""The fault matrix: the real server, through the fake OpenRouter, under every failure we anticipate.

Each case asserts what the user sees (a correct answer by retry or fallback, or an `isError` result that names the
cause) and that the server then answers the next call normally. `FAULTS` is counted in the README.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ..fakes.openrouter import FakeOpenRouter
from ..support import result_text
from .conftest import stdio_params


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
        says=("validation", "max_tokens"),
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
    Fault(
        "unknown model",
        arguments={"prompt": "hi", "model": "openai/gpt-4o-mini-2"},
        ok=False,
        says=("Did you mean", "openai/gpt-4o-mini"),
        requests=0,
    ),
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
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache", **env)) as client:
        result = await client.call_tool(case.tool, case.arguments)
        text = result_text(result)
        if case.ok:
            assert not result.is_error, text
            assert "4" in result.structured_content["answer"] or "2+2" in result.structured_content["answer"]
        else:
            assert result.is_error, text
            for word in case.says:
                assert word.lower() in text.lower(), (word, text)
        if case.requests is not None:
            assert len(fake_openrouter.chat_requests()) == case.requests
        # The server keeps serving: the next call is answered (successfully where the upstream is reachable).
        after = await client.call_tool("ask", {"prompt": "And 3+3?"})
        if case.dead_upstream:
            assert after.is_error and "Could not reach" in result_text(after)
        else:
            assert not after.is_error, result_text(after)
