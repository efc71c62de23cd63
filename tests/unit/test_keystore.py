"""Where `login` keeps the key (keyring, else a 0600 file), which key wins (OPENROUTER_API_KEY, then the stored
one), what `doctor` says about it, and `logout`."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import PasswordDeleteError, PasswordSetError

from openrouter_research_mcp import main
from openrouter_research_mcp._constants import KEYS_URL
from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.doctor import _expiry, run_doctor
from openrouter_research_mcp.keystore import (
    KEYRING_SERVICE,
    KEYRING_USER,
    default_key_file,
    delete_key,
    load_key,
    save_key,
    with_stored_key,
)

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter

STORED = "sk-or-v1-" + "5" * 64


class MemoryKeyring(KeyringBackend):
    """A keyring that lives in a dict, for tests; `broken` makes every write fail as a locked keyring does."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[tuple[str, str], str] = {}
        self.broken = False

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.broken:
            raise PasswordSetError("the collection is locked")
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.broken:
            raise PasswordDeleteError("the collection is locked")
        del self.items[(service, username)]


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """The OS keyring, faked in memory for this test (and the previous backend put back after)."""
    before = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """No usable keyring, as on a server without a Secret Service: the key must go to the file."""
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    yield
    keyring.set_keyring(before)


def test_key_file_lives_in_the_user_config_dir(tmp_path: Path) -> None:
    assert default_key_file() == tmp_path / "xdg-config" / "openrouter-research-mcp" / "openrouter-key"


def test_keystore_uses_the_keyring_when_there_is_one(memory_keyring: MemoryKeyring) -> None:
    saved = save_key(STORED)
    assert saved.where == "keyring" and saved.fallback_reason is None and not saved.replaced
    assert memory_keyring.items == {(KEYRING_SERVICE, KEYRING_USER): STORED}
    assert not default_key_file().exists()
    assert load_key() == (STORED, "keyring")
    assert save_key(STORED[:-1] + "6").replaced
    assert delete_key() == (["keyring"], [])
    assert load_key() is None and delete_key() == ([], [])


@pytest.mark.usefixtures("no_keyring")
def test_keystore_falls_back_to_a_private_file(tmp_path: Path) -> None:
    previous = os.umask(0)  # a permissive umask must not widen the file: it is made 0600 from the start
    try:
        saved = save_key(STORED)
    finally:
        os.umask(previous)
    path = default_key_file()
    assert saved.where == f"file {path}" and saved.fallback_reason == "no keyring backend is available on this system"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == STORED + "\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert load_key() == (STORED, f"file {path}")
    assert delete_key() == ([f"file {path}"], []) and not path.exists()
    assert not any(STORED in p.read_text() for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.usefixtures("no_keyring")
def test_keystore_file_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    path = default_key_file()
    path.parent.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.write_text("theirs")
    path.symlink_to(target)
    save_key(STORED)
    assert target.read_text() == "theirs" and not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keystore_broken_keyring_falls_back_to_the_file_with_the_reason(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.broken = True
    saved = save_key(STORED)
    assert saved.where.startswith("file ") and saved.fallback_reason is not None
    assert "PasswordSetError" in saved.fallback_reason and STORED not in saved.fallback_reason
    assert load_key() == (STORED, saved.where)
    removed, failed = delete_key()
    assert removed == [saved.where] and failed == []  # nothing was in the keyring, so nothing failed there


def test_keystore_a_keyring_save_removes_an_older_file(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.broken = True
    save_key(STORED)
    memory_keyring.broken = False
    assert save_key(STORED[:-1] + "7").replaced and not default_key_file().exists()


def test_stored_key_precedence_environment_then_dotenv_then_store(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert with_stored_key(load_settings()) == (load_settings(), None)
    save_key(STORED)
    settings, source = with_stored_key(load_settings())
    assert settings.api_key is not None and settings.api_key.get_secret_value() == STORED
    assert source is not None and (source.name, source.stored) == ("keyring", True)
    dotenv = tmp_path / "or.env"
    dotenv.write_text(f"OPENROUTER_API_KEY={FAKE_KEY}\n")
    settings, source = with_stored_key(load_settings(env_file=dotenv))
    assert settings.api_key is not None and settings.api_key.get_secret_value() == FAKE_KEY
    assert source is not None and (source.name, source.stored) == (".env file", False)
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)
    settings, source = with_stored_key(load_settings())
    assert settings.api_key is not None and settings.api_key.get_secret_value() == FAKE_KEY
    assert source is not None and source.name == "environment"
    assert memory_keyring.items  # the stored key is left alone


async def test_doctor_names_the_source_limit_and_expiry_never_the_key(
    fake_openrouter: FakeOpenRouter, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    del memory_keyring
    minted = fake_openrouter.signin.mint_key("laptop")
    save_key(minted)
    base: dict[str, Any] = {
        "base_url": fake_openrouter.base_url,
        "cache_dir": tmp_path / "cache",
        "data_dir": tmp_path / "data",
    }
    settings, source = with_stored_key(load_settings(**base))
    report, ok = await run_doctor(settings, source)
    assert ok and minted not in report
    assert "  source        keyring" in report and "  limit         $10.00" in report
    assert "  expires       " in report and "(in 7 days)" in report
    fake_openrouter.signin.revoke(minted)
    report, ok = await run_doctor(settings, source)
    assert not ok and "FAILED" in report and "run `openrouter-research-mcp login` again" in report
    report, ok = await run_doctor(load_settings(**base), None)
    assert not ok and "openrouter-research-mcp login" in report and "MISSING" in report


def test_doctor_expiry_text() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert _expiry(None, now) == ("never", True)
    assert _expiry("2026-05-08T00:00:00Z", now) == ("2026-05-08 00:00 UTC (in 7 days)", True)
    assert _expiry("2026-05-01T05:00:00+00:00", now) == ("2026-05-01 05:00 UTC (in 5 hours)", True)
    assert _expiry("2026-04-30T00:00:00Z", now) == ("EXPIRED on 2026-04-30 00:00 UTC", False)
    assert _expiry("soon", now) == ("soon (as OpenRouter says)", True)


def test_main_scrubs_the_stored_key_from_logs(
    fake_openrouter: FakeOpenRouter, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    del memory_keyring
    save_key(STORED)
    scrubbed: list[str] = []
    monkeypatch.setattr(
        "openrouter_research_mcp._logging.configure_logging", lambda _l, secret, *_: scrubbed.append(secret)
    )
    monkeypatch.setenv("OPENROUTER_BASE_URL", fake_openrouter.base_url)
    monkeypatch.setenv("OPENROUTER_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(SystemExit):
        main(["doctor"])
    assert scrubbed == [STORED]


def test_logout_removes_and_says_how_to_revoke(
    memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    save_key(STORED)
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)
    with pytest.raises(SystemExit) as done:
        main(["logout"])
    out, err = capsys.readouterr()
    assert done.value.code == 0 and out == "" and not memory_keyring.items
    assert "Removed the stored key from the OS keyring" in err and KEYS_URL in err and "still set" in err
    with pytest.raises(SystemExit) as again:
        main(["logout"])
    assert again.value.code == 0 and "nothing to remove" in capsys.readouterr().err


def test_logout_reports_what_it_could_not_remove(
    memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    save_key(STORED)
    memory_keyring.broken = True
    with pytest.raises(SystemExit) as done:
        main(["logout"])
    assert done.value.code == 1 and "could not remove the key from the OS keyring" in capsys.readouterr().err
