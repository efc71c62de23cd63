"""Argument errors in words (`tools/arguments.py`), checked against the real tools' input schemas, and the
whole-value completion of model lists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.server import build_server, whole_values
from openrouter_research_mcp.tools.arguments import unknown_arguments

from ..fakes import FAKE_KEY
from ..support import result_text


async def refusal(tmp_path: Path, tool: str, arguments: dict[str, object]) -> str:
    server = build_server(load_settings(api_key=FAKE_KEY, cache_dir=str(tmp_path), data_dir=str(tmp_path)))
    with pytest.raises(ToolError) as refused:
        await server.call_tool(tool, arguments)
    return str(refused.value)


@pytest.mark.parametrize(
    ("arguments", "sentence"),
    [
        ({"prompt": "hi", "provider": {"sort": "cheapest"}}, "- `provider.sort` is one of price, throughput, latency;"),
        (
            {"prompt": "hi", "provider": {"speed": 1}},
            "- `provider.speed` is not something `provider` takes; it takes sort,",
        ),
        ({"prompt": "hi", "provider": "fast"}, '- `provider` is an object, e.g. {"sort": …}; got "fast".'),
        ({"prompt": "hi", "fallback_models": ["a/b", 7]}, "- `fallback_models[1]` is text; got 7."),
        ({"prompt": ""}, "- `prompt` is empty; it needs text (the question or task)."),
        ({"prompt": "hi", "max_tokens": 2.5}, "- `max_tokens` is a whole number, e.g. 1; got 2.5."),
        ({"prompt": "hi", "temperature": "hot"}, '- `temperature` is a number; got "hot".'),
        ({"prompt": "hi", "urls": ["https://a.test"] * 6}, "- `urls` takes at most 5 item(s); got 6."),
        ({"prompt": "x" * 100, "max_tokens": -1}, "- `max_tokens` is at least 1; got -1."),
    ],
)
async def test_arguments_each_kind_of_mistake_is_one_sentence(
    tmp_path: Path, arguments: dict[str, object], sentence: str
) -> None:
    text = await refusal(tmp_path, "ask", arguments)
    assert sentence in text, text
    assert "input_value" not in text and "errors.pydantic.dev" not in text


async def test_arguments_long_values_are_not_echoed_whole(tmp_path: Path) -> None:
    text = await refusal(tmp_path, "ask", {"prompt": "hi", "model": ["z" * 5000]})
    assert "`model` is text; got" in text and len(text) < 300


def test_arguments_unknown_names_suggest_the_closest() -> None:
    schema: dict[str, Any] = {"properties": {"model": {}, "prompt": {}, "max_tokens": {}}}
    assert unknown_arguments("ask", ["prompt", "model"], schema) is None
    text = unknown_arguments("ask", ["promt", "maxtokens", "colour"], schema)
    assert text is not None
    assert "- `promt` is not an argument of ask; did you mean `prompt`?" in text
    assert "- `maxtokens` is not an argument of ask; did you mean `max_tokens`?" in text
    assert "- `colour` is not an argument of ask." in text and text.endswith(
        "Its arguments: model, prompt, max_tokens."
    )


@pytest.mark.parametrize(
    ("typed", "ids", "values"),
    [
        ("open", ["openai/a", "openai/b"], ["openai/a", "openai/b"]),
        ("openai/a, goo", ["google/x"], ["openai/a, google/x"]),
        ("openai/a,  google/x ,open", ["openai/a", "openai/b"], ["openai/a, google/x, openai/b"]),
        ("openai/a,", ["openai/a", "google/x"], ["openai/a, google/x"]),
    ],
)
def test_whole_values_keep_what_was_typed(typed: str, ids: list[str], values: list[str]) -> None:
    assert whole_values(typed, ids) == values


@pytest.mark.parametrize(
    ("tool", "arguments", "sentence"),
    [
        # A comma list meant as a list is shown as one, and a value the list cannot hold gives way to one it can.
        ("compare_models", {"prompt": "hi", "models": "a/b, c/d"}, '`models` is a list, e.g. ["a/b", "c/d"];'),
        ("list_models", {"supports": "tools,reasoning"}, '`supports` is a list, e.g. ["tools", "reasoning"];'),
        ("list_models", {"supports": "toolz"}, '`supports` is a list, e.g. ["tools"]; got "toolz".'),
    ],
)
async def test_arguments_examples_fit_what_was_meant(
    tmp_path: Path, tool: str, arguments: dict[str, object], sentence: str
) -> None:
    assert sentence in await refusal(tmp_path, tool, arguments)


async def test_arguments_messages_stay_short_whatever_was_sent(tmp_path: Path) -> None:
    long_value = await refusal(tmp_path, "ask", {"prompt": "hi", "urls": "https://a.test/" + "x" * 5000})
    assert len(long_value) < 400
    many = await refusal(tmp_path, "list_models", {"supports": [f"thing{i}" for i in range(30)]})
    lines = many.splitlines()
    assert len(lines) == 2 + 8 and lines[-2] == "- … and 23 more like these."


def test_arguments_union_members_and_validators_read_as_the_argument() -> None:
    from pydantic import BaseModel, ValidationError, field_validator

    from openrouter_research_mcp.tools.arguments import describe_errors

    class Args(BaseModel):
        choice: int | list[int]
        odd: int

        @field_validator("odd")
        @classmethod
        def must_be_odd(cls, value: int) -> int:
            if value % 2 == 0:
                raise ValueError("must be odd")
            return value

    with pytest.raises(ValidationError) as bad:
        Args.model_validate({"choice": "x", "odd": 2})
    text = describe_errors("demo", bad.value, Args.model_json_schema())
    assert "`choice.int`" not in text and "`choice[" not in text and "- `choice` is" in text
    assert "- `odd`: must be odd." in text


async def test_tools_added_later_are_called_not_refused(tmp_path: Path) -> None:
    server = build_server(load_settings(api_key=FAKE_KEY, cache_dir=str(tmp_path), data_dir=str(tmp_path)))

    def echo(text: str) -> str:
        """Say it back."""
        return text

    server.add_tool(echo, name="echo")
    async with Client(server) as client:
        result = await client.call_tool("echo", {"text": "hello"})
        typo = await client.call_tool("echo", {"txt": "hello"})
    assert not result.is_error and result_text(result) == "hello"
    assert typo.is_error and "did you mean `text`?" in result_text(typo)


@pytest.mark.parametrize(("command", "code"), [("serve", None), ("doctor", 130)])
def test_main_ctrl_c_at_any_moment_quits_quietly(
    monkeypatch: pytest.MonkeyPatch, command: str, code: int | None
) -> None:
    import openrouter_research_mcp as package

    def interrupted(_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(package, "_run", interrupted)
    if code is None:
        package.main([command])
    else:
        with pytest.raises(SystemExit) as stopped:
            package.main([command])
        assert stopped.value.code == code


def test_main_ctrl_c_inside_exec_run_source_still_exits_0() -> None:
    """Ctrl-C landing while start-up runs source through `exec` (as dataclasses do): exit 0, not CPython 3.11's
    SIGINT exit for a KeyboardInterrupt it wrongly takes as unhandled."""
    script = (
        "import openrouter_research_mcp as package\n"
        "package._run = lambda _args: exec('import os, signal; os.kill(os.getpid(), signal.SIGINT); "
        "[0 for _ in range(1000)]')\n"
        "package.main([])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr)
