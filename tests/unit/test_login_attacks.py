"""Attacks on the laptop sign-in (`login`, the key store): what a stored key file, OpenRouter's answer, the terminal
and the browser's return can throw at it, and what must hold regardless."""

from __future__ import annotations

import argparse
import io
import logging
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.errors import BadResponseError
from openrouter_research_mcp.keystore import default_key_file, load_key, save_key, with_stored_key
from openrouter_research_mcp.openrouter.signin import exchange_code
from openrouter_research_mcp.signin_cli import LoopbackCallback, SignInError, _Handler, read_code, run_login

from . import test_keystore as keystore_tests
from .helpers import BASE, mock_upstream

STORED = "sk-or-v1-" + "5" * 64
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


no_keyring = keystore_tests.no_keyring  # its fixture: the key goes to (and comes from) the file


@pytest.fixture
def key_path() -> Path:
    path = default_key_file()
    path.parent.mkdir(parents=True, mode=0o700)
    return path


# ---------------------------------------------------------------------------------------------- the stored file


@pytest.mark.usefixtures("no_keyring")
@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00garbage",  # not UTF-8: a crash at start-up, once
        f"{STORED}\nsk-or-v1-second\n".encode(),  # two lines: a key with a newline in it breaks every request
        f"{STORED}\x1b[2J".encode(),  # control characters
        b"k" * 100_000,  # not a key
    ],
)
def test_keystore_a_corrupt_key_file_is_not_used_and_login_replaces_it(
    key_path: Path, content: bytes, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    key_path.write_bytes(content)
    key_path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert load_key() is None
        settings, source = with_stored_key(load_settings())
    assert settings.api_key is None and source is None
    assert "login" in caplog.text and str(key_path) in caplog.text
    assert capsys.readouterr().out == ""  # the stdio server's stdout is JSON-RPC only
    saved = save_key(STORED)
    assert not saved.replaced and load_key() == (STORED, f"file {key_path}")


@pytest.mark.usefixtures("no_keyring")
def test_keystore_does_not_read_the_key_through_a_planted_symlink(
    key_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A symlink in the key file's place would have any one-line secret it points at sent to OpenRouter as the key."""
    elsewhere = tmp_path / "someone-elses-token"
    elsewhere.write_text("ghp_" + "x" * 36 + "\n")
    elsewhere.chmod(0o600)
    key_path.symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING):
        assert load_key() is None
    assert "symbolic link" in caplog.text and "ghp_" not in caplog.text


@pytest.mark.usefixtures("no_keyring")
def test_keystore_does_not_hang_on_a_fifo_in_the_key_files_place(key_path: Path) -> None:
    os.mkfifo(key_path)  # opened for reading, a FIFO waits for a writer: the server would never start
    outcome: list[object] = []
    reader = threading.Thread(target=lambda: outcome.append(load_key()), daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive():  # unblock it, so the test ends either way
        with open(key_path, "w"):
            pass
        reader.join()
        pytest.fail("load_key blocked on a FIFO")
    assert outcome == [None]


@pytest.mark.usefixtures("no_keyring")
def test_keystore_narrows_a_key_folder_others_may_write_to() -> None:
    """A config folder made 0777 before (a loose umask): others could replace the key file with their own key."""
    folder = default_key_file().parent
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    save_key(STORED)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and load_key() == (STORED, f"file {default_key_file()}")


# ---------------------------------------------------------------------------------------------- the exchange


@pytest.fixture
def respx_signin() -> Iterator[respx.MockRouter]:
    with mock_upstream(base_url=BASE, assert_all_called=True) as router:
        yield router


@pytest.mark.parametrize(
    "key",
    [
        "sk-or-v1-abc\r\nX-Injected: yes",  # would be stored, then break (or split) every request's headers
        "sk-or-v1-abc def",
        "sk-or-v1-\x00",
        "sk-or-v1-" + "a" * 100_000,
        "clé-non-ascii",
    ],
)
async def test_exchange_code_refuses_an_answer_that_is_not_a_key(respx_signin: respx.MockRouter, key: str) -> None:
    respx_signin.post("/auth/keys").mock(return_value=httpx.Response(200, json={"key": key}))
    async with httpx.AsyncClient() as http:
        with pytest.raises(BadResponseError, match="not a key") as caught:
            await exchange_code(http, BASE, "the-code", VERIFIER)
    assert key not in str(caught.value) and "X-Injected" not in str(caught.value)


# ---------------------------------------------------------------------------------------------- the terminal


def _headless() -> argparse.Namespace:
    return argparse.Namespace(headless=True, key_label=None, port=0, wait=5.0)


def test_login_headless_with_no_stdin_at_all_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`login --headless <&-`: Python's sys.stdin is None; a traceback is no answer."""
    monkeypatch.setattr(sys, "stdin", None)
    assert run_login(load_settings(base_url=BASE), _headless()) == 1
    out, err = capsys.readouterr()
    assert out == "" and "No code was entered" in err and "Traceback" not in err


class _Unreadable:
    """A stdin whose reading fails, as a closed or undecodable one does."""

    def readline(self) -> str:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")


def test_read_code_an_unreadable_stdin_is_no_code() -> None:
    with pytest.raises(SignInError, match="No code was entered"):
        read_code(_Unreadable(), lambda: None)


def test_read_code_takes_a_pasted_code_parameter_without_an_address() -> None:
    assert read_code(io.StringIO("code=abc-123\n"), lambda: None) == "abc-123"


# ---------------------------------------------------------------------------------------------- the browser's return


def test_loopback_callback_a_browser_that_hangs_up_still_brings_the_code_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The browser leaves before reading the page (the tab closed): the code it brought must still end the wait,
    not leave the terminal waiting out --wait and then blame the browser."""
    reply = _Handler._reply

    def hung_up(self: _Handler, status: int, title: str, text: str) -> None:
        if status == 200:
            raise BrokenPipeError(32, "Broken pipe")
        reply(self, status, title, text)

    monkeypatch.setattr(_Handler, "_reply", hung_up)
    with LoopbackCallback() as callback, httpx.Client(timeout=10, trust_env=False) as http:
        outcome: list[object] = []
        waiter = threading.Thread(target=lambda: outcome.append(callback.wait(60)))
        waiter.start()
        with pytest.raises(httpx.HTTPError):
            http.get(callback.callback_url + "?code=c1")
        waiter.join()
    assert outcome == ["c1"]


def test_loopback_callback_a_declined_reason_cannot_drive_the_terminal() -> None:
    with LoopbackCallback() as callback, httpx.Client(timeout=10, trust_env=False) as http:
        outcome: list[BaseException] = []

        def wait() -> None:
            try:
                callback.wait(60)
            except SignInError as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        http.get(callback.callback_url, params={"error": "access_denied\x1b]0;pwned\x07\x1b[2J\r\n"})
        waiter.join()
    assert len(outcome) == 1 and "access_denied" in str(outcome[0])
    assert not any(ord(c) < 32 or ord(c) == 127 for c in str(outcome[0]))
