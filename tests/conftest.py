"""Shared fixtures. Every test runs with a clean environment: no real key, no real cache dir, no .env pickup."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fakes.openrouter import FakeOpenRouter
from .services import Postgres, postgres


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Strip OPENROUTER_* variables, run from an empty directory, and restore os.environ afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("OPENROUTER_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    # Default cache and data dirs (platformdirs) land in the test's tmp dir, never in the real home.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # Where `login` keeps a key: never the real keyring or config dir (a developer's own sign-in must not leak in).
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def fake_openrouter() -> Iterator[FakeOpenRouter]:
    """A faithful fake OpenRouter on 127.0.0.1, started and stopped around each test; its own bugs fail the test."""
    with FakeOpenRouter() as fake:
        yield fake
    assert not fake.errors, "the fake itself failed while handling a request"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    """One real PostgreSQL server for the session (initdb + pg_ctl in a temporary directory, on a loopback port);
    skipped, saying why, where PostgreSQL is not installed."""
    try:
        server_cm = postgres()
        server = server_cm.__enter__()
    except LookupError as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    try:
        yield server
    finally:
        server_cm.__exit__(None, None, None)


@pytest.fixture
def pg_url(pg_server: Postgres) -> str:
    """A new empty database on the session's PostgreSQL server: this test's own."""
    return pg_server.database()
