"""End-to-end fixtures: a fake OpenRouter on loopback, and parameters that start the installed server over stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import StdioServerParameters

from ..conftest import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_openrouter() -> Iterator[FakeOpenRouter]:
    """A faithful fake OpenRouter on 127.0.0.1, started and stopped around each test."""
    with FakeOpenRouter() as fake:
        yield fake


def stdio_params(fake: FakeOpenRouter, cache_dir: Path, **env: str) -> StdioServerParameters:
    """Start `python -m openrouter_research_mcp` against `fake`; an empty value leaves a variable out."""
    values = {"OPENROUTER_API_KEY": FAKE_KEY, "OPENROUTER_BASE_URL": fake.base_url,
              "OPENROUTER_CACHE_DIR": str(cache_dir), "OPENROUTER_DATA_DIR": str(cache_dir.parent / "data"),
              "OPENROUTER_LOG_LEVEL": "WARNING", **env}
    values["PATH"] = os.environ.get("PATH", "")
    return StdioServerParameters(command=sys.executable, args=["-m", "openrouter_research_mcp"],
                                 env={k: v for k, v in values.items() if v}, cwd=str(cache_dir.parent))
