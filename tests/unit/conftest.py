"""Unit fixtures: the tools' shared state wired to the fake OpenRouter on loopback, without MCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.tools.state import AppState, open_state

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter


@pytest.fixture
async def app_state(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[AppState]:
    """The state every tool shares (client, catalog, research manager), talking to `fake_openrouter`."""
    settings = load_settings(
        api_key=FAKE_KEY,
        base_url=fake_openrouter.base_url,
        cache_dir=str(tmp_path / "cache"),
        data_dir=str(tmp_path / "data"),
        max_retries=0,
    )
    async with open_state(settings) as state:
        yield state
