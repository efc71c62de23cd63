"""The command line around the server: doctor, the hint on a terminal, every handshake version, the example client."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from mcp import ClientSession, stdio_client

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter
from ..support import PROMPTLY, cli_env, result_text
from .conftest import stdio_params

ROOT = Path(__file__).resolve().parents[2]


def test_doctor_reports_without_the_key(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openrouter_research_mcp", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(fake_openrouter, tmp_path, OPENROUTER_API_KEY=FAKE_KEY),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "API key         present and valid" in done.stdout and "12 models" in done.stdout
    assert "$7.50 left" in done.stdout and "unknown" not in done.stdout and "all good" in done.stdout
    assert str(tmp_path / "cache") in done.stdout
    assert FAKE_KEY not in done.stdout + done.stderr


@pytest.mark.parametrize(("key", "words"), [("", "MISSING"), ("sk-or-v1-not-the-right-one", "401")])
def test_doctor_says_what_to_fix(fake_openrouter: FakeOpenRouter, tmp_path: Path, key: str, words: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openrouter_research_mcp", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(fake_openrouter, tmp_path, OPENROUTER_API_KEY=key),
        check=False,
    )
    assert done.returncode == 1 and words in done.stdout and "OPENROUTER_API_KEY" in done.stdout
    assert "problems found" in done.stdout and (not key or key not in done.stdout)


def _controlling_terminal() -> None:
    """In the child, after setsid: make stdin (the pty) the controlling terminal, as a shell does."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.parametrize("wait", [0.0, 1.5], ids=["at-the-hint", "while-serving"])
def test_terminal_ctrl_c_quits_at_once_as_the_hint_says(
    fake_openrouter: FakeOpenRouter, tmp_path: Path, wait: float
) -> None:
    """Started by hand in a terminal: a hint says how to quit, and Ctrl-C (the terminal's ^C, not a signal sent
    by the test) stops the server within a second, exit code 0, no traceback: pressed at once or later."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "openrouter_research_mcp"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=cli_env(fake_openrouter, tmp_path),
        start_new_session=True,
        preexec_fn=_controlling_terminal,
    ) as proc:
        os.close(follower)
        screen = b""
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and b"Ctrl-C to quit" not in screen:
                if select.select([leader], [], [], 0.5)[0]:
                    screen += os.read(leader, 4096)
            time.sleep(wait)
            os.write(leader, b"\x03")
            pressed = time.monotonic()
            code = proc.wait(timeout=10)
            took = time.monotonic() - pressed
            with contextlib.suppress(OSError):  # the terminal is gone once the server has exited
                while select.select([leader], [], [], 0.2)[0]:
                    chunk = os.read(leader, 4096)
                    if not chunk:
                        break
                    screen += chunk
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(leader)
    text = screen.decode(errors="replace")
    hint = [line for line in text.splitlines() if "waiting for an MCP client" in line]
    assert len(hint) == 1 and "press Ctrl-C to quit" in hint[0] and "Client setup" in hint[0], text
    assert code == 0 and took < PROMPTLY, (code, took, text)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_every_classic_handshake_version(fake_openrouter: FakeOpenRouter, tmp_path: Path, version: str) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    with subprocess.Popen(
        [sys.executable, "-m", "openrouter_research_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cli_env(fake_openrouter, tmp_path),
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(init) + "\n")
            proc.stdin.flush()
            assert select.select([proc.stdout], [], [], 30)[0], "no answer to initialize"
            answer = json.loads(proc.stdout.readline())
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert answer["result"]["protocolVersion"] == version
    assert answer["result"]["capabilities"]["tools"] is not None


def store_signed_in_key(fake: FakeOpenRouter, config_home: Path) -> str:
    """A key the fake's sign-in made, where `login` keeps it when there is no keyring (under `config_home`)."""
    stored = config_home / "openrouter-research-mcp" / "openrouter-key"
    stored.parent.mkdir(parents=True, mode=0o700)
    key = fake.signin.mint_key("laptop")
    stored.write_text(key + "\n")
    stored.chmod(0o600)
    return key


@pytest.mark.parametrize("source", ["environment", "login"])
def test_example_client_script(source: str, fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    key = FAKE_KEY if source == "environment" else store_signed_in_key(fake_openrouter, tmp_path / "config")
    env = cli_env(fake_openrouter, tmp_path, XDG_CONFIG_HOME=str(tmp_path / "config"))
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env.update({"OPENROUTER_API_KEY": key} if source == "environment" else {})
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "client.py"), "What is OpenRouter?"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert {r.key for r in fake_openrouter.chat_requests()} == {key}
    assert "tools: ask, compare_models, list_models, deep_research, get_research" in done.stdout
    assert "[openai/gpt-4o-mini] Answer: What is OpenRouter?" in done.stdout
    assert re.search(r"tokens · \$0\.\d+", done.stdout) and not re.search(r"\de-\d", done.stdout)  # no 3.195e-05


@pytest.mark.parametrize("name", ["claude_desktop_config.json", "cursor-mcp.json", "vscode-mcp.json"])
async def test_example_configs_need_no_key_after_a_login(
    name: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    """Each example starts the server with its own `env` block only (no key in it); the key `login` stored is
    the one every call is billed to."""
    config = json.loads((ROOT / "examples" / name).read_text())
    servers = config.get("mcpServers") or config.get("servers")
    entry = servers["openrouter-research"]
    assert entry["command"].endswith("openrouter-research-mcp") and "OPENROUTER_API_KEY" not in entry.get("env", {})
    key = store_signed_in_key(fake_openrouter, tmp_path / "config")  # XDG_CONFIG_HOME in stdio_params
    params = stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_API_KEY="", **entry.get("env", {}))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        answer = await client.call_tool("ask", {"prompt": "What causes tides?"})
    assert not answer.is_error, result_text(answer)
    chats = fake_openrouter.chat_requests()
    assert chats and {r.key for r in chats} == {key}
