"""Unit fixtures: OpenRouter faked by respx, and the tools' shared state wired to the fake OpenRouter on loopback,
without MCP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import respx

from openrouter_research_mcp.tools.state import CallState

from ..fakes.openrouter import FakeOpenRouter
from ..support import tool_state
from .helpers import BASE, mock_upstream


@pytest.fixture
def respx_openrouter() -> Iterator[respx.MockRouter]:
    """OpenRouter faked at the transport by respx: tests add the routes they need."""
    with mock_upstream(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def app_state(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[CallState]:
    """What a tool call sees (the shared client, catalog and job managers, and the local caller), talking to
    `fake_openrouter`."""
    async with tool_state(fake_openrouter, tmp_path) as state:
        yield state
