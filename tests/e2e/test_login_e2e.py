"""`login`, `doctor`, the server and `logout` as a person runs them: the real CLI as subprocesses against the fake
OpenRouter, the test playing the browser. No keyring here (keyring's `fail` backend), so the key goes to the 0600
file under the test's own XDG_CONFIG_HOME; the key must turn up nowhere else."""

from __future__ import annotations

import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from mcp import ClientSession, stdio_client

from openrouter_research_mcp._constants import KEYS_URL

from ..fakes.openrouter import FakeOpenRouter
from ..support import cli_env, result_text
from .conftest import stdio_params

CLI = [sys.executable, "-m", "openrouter_research_mcp"]

# The browser: fetch the address, following the fake's redirect to the CLI's loopback callback, and note what it
# was asked to open. No proxy, so loopback is reached directly.
BROWSER = """\
import sys, urllib.request
open(sys.argv[2], "w").write(sys.argv[1])
with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(sys.argv[1], timeout=30) as page:
    page.read()
"""


def login_env(fake: FakeOpenRouter, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment: the fake, every per-user directory inside `tmp_path`, no keyring."""
    return cli_env(
        fake,
        tmp_path,
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),  # what stdio_params gives the server for cache_dir "cache"
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        **extra,
    )


def key_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "openrouter-research-mcp" / "openrouter-key"


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env, input=stdin, check=False)


def files_with(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes()]


async def test_login_in_the_browser_then_doctor_server_and_logout(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    script, opened = tmp_path / "browser.py", tmp_path / "opened.txt"
    script.write_text(BROWSER)
    env = login_env(
        fake_openrouter, tmp_path, BROWSER=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %s {opened}"
    )
    outputs: list[str] = []

    login = run(env, "login", "--key-label", "e2e laptop")
    outputs += [login.stdout, login.stderr]
    assert login.returncode == 0, login.stderr
    assert login.stdout == "" and "Signed in" in login.stderr and "no keyring backend" in login.stderr
    [(key, minted)] = fake_openrouter.signin.keys.items()
    assert minted.label == "e2e laptop" and fake_openrouter.signin.exchanges == 1
    asked = parse_qs(urlsplit(opened.read_text()).query)
    callback = urlsplit(asked["callback_url"][0])
    assert (callback.hostname, asked["code_challenge_method"]) == ("127.0.0.1", ["S256"])
    assert callback.path.startswith("/callback/") and len(callback.path) > len("/callback/") + 20  # the state
    stored = key_file(tmp_path)
    assert stored.read_text() == key + "\n" and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert files_with(tmp_path, key) == [stored]

    doctor = run(env, "doctor")
    outputs += [doctor.stdout, doctor.stderr]
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"  source        file {stored}" in doctor.stdout and "  limit         $10.00" in doctor.stdout
    assert re.search(r"  expires       \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 7 days\)", doctor.stdout)

    errlog = tmp_path / "server-stderr.log"
    params = stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_API_KEY="", OPENROUTER_LOG_LEVEL="DEBUG")
    fake_openrouter.clear()
    with errlog.open("w") as sink:
        async with stdio_client(params, errlog=sink) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            answer = await client.call_tool("ask", {"prompt": "What causes tides?"})
    assert not answer.is_error, result_text(answer)
    outputs.append(answer.model_dump_json())
    chats = fake_openrouter.chat_requests()
    assert chats and all(r.key == key for r in chats) and fake_openrouter.billed  # billed to the signed-in key
    assert "DEBUG" in errlog.read_text()

    logout = run(env, "logout")
    outputs += [logout.stdout, logout.stderr]
    assert logout.returncode == 0 and f"Removed the stored key from {stored}" in logout.stderr
    assert KEYS_URL in logout.stderr and not stored.exists()
    after = run(env, "doctor")
    outputs += [after.stdout, after.stderr]
    assert after.returncode == 1 and "MISSING" in after.stdout and "openrouter-research-mcp login" in after.stdout

    assert not any(key in text for text in outputs)
    assert files_with(tmp_path, key) == []  # the server's log, the caches, the browser's note: none has it


def test_login_headless_reads_the_code_from_stdin(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    env = login_env(fake_openrouter, tmp_path)
    pipe = subprocess.PIPE
    with subprocess.Popen(
        [*CLI, "login", "--headless"], stdin=pipe, stdout=pipe, stderr=pipe, text=True, env=env
    ) as login:
        assert login.stdin is not None and login.stdout is not None and login.stderr is not None
        try:
            shown = ""
            while "/auth?" not in shown:  # the address, printed before the code is read
                line = login.stderr.readline()
                assert line, "login ended before printing the address"
                shown = line.strip()
            assert "callback_url" not in shown and "code_challenge_method=S256" in shown
            with httpx.Client(trust_env=False, timeout=30) as http:
                page = http.get(shown)  # the user, on another device, consents and copies the code
            found = re.search(r'<code id="code">([^<]+)</code>', page.text)
            assert page.status_code == 200 and found is not None
            login.stdin.write(found.group(1) + "\n")
            login.stdin.close()
            rest, out = login.stderr.read(), login.stdout.read()
            assert login.wait(timeout=60) == 0, rest
        finally:
            if login.poll() is None:
                login.kill()
    [key] = fake_openrouter.signin.keys
    assert out == "" and "Signed in" in rest and "Code:" not in rest  # piped in: no prompt
    assert key_file(tmp_path).read_text() == key + "\n" and key not in shown + rest
    assert files_with(tmp_path, key) == [key_file(tmp_path)]


def test_login_refused_code_stores_nothing(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    login = run(login_env(fake_openrouter, tmp_path), "login", "--headless", stdin="code-made-up\n")
    assert login.returncode == 1 and login.stdout == ""
    assert "refused the sign-in code" in login.stderr and "sign in again" in login.stderr
    assert "code-made-up" not in login.stderr and not key_file(tmp_path).exists()
    nothing = run(login_env(fake_openrouter, tmp_path), "login", "--headless")
    assert nothing.returncode == 1 and "No code was entered" in nothing.stderr


def test_login_gives_up_at_the_time_limit(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    """A browser that never comes back: the wait ends at --wait, with what to do next, and nothing stored."""
    login = run(login_env(fake_openrouter, tmp_path, BROWSER="true"), "login", "--wait", "0.2")
    assert login.returncode == 1 and "No answer from the browser within 0.2 s" in login.stderr
    assert "--headless" in login.stderr and not key_file(tmp_path).exists() and not fake_openrouter.signin.keys


def test_server_starts_past_a_damaged_key_file_with_only_json_rpc_on_stdout(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    """A stored key file that is not UTF-8 (a disk error, an editor): the stdio server still starts, says on stderr
    what to do, and its stdout stays the JSON-RPC channel; it used to die at start-up with a traceback."""
    import json

    stored = key_file(tmp_path)
    stored.parent.mkdir(parents=True, mode=0o700)
    stored.write_bytes(b"\xff\xfe not a key \x00")
    stored.chmod(0o600)
    params = stdio_params(fake_openrouter, tmp_path / "cache", OPENROUTER_API_KEY="")
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    pipe = subprocess.PIPE
    with subprocess.Popen(
        [params.command, *params.args], stdin=pipe, stdout=pipe, stderr=pipe, text=True, env=params.env, cwd=params.cwd
    ) as server:
        assert server.stdin is not None and server.stdout is not None and server.stderr is not None
        try:
            server.stdin.write(json.dumps(hello) + "\n")
            server.stdin.flush()
            first = server.stdout.readline()
            server.stdin.close()
            rest, err = server.stdout.read(), server.stderr.read()
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
    assert json.loads(first)["id"] == 1 and "result" in json.loads(first), err
    assert all(json.loads(line) for line in rest.splitlines() if line.strip())
    assert "does not hold a key" in err and "login" in err and "Traceback" not in err
