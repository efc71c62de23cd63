"""The MCP surface: builds the `MCPServer`, owns the shared client and catalog for the server's lifetime."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mcp.server.mcpserver import MCPServer

from ._version import __version__
from .catalog import ModelCatalog
from .client import OpenRouterClient
from .config import Settings
from .usage import UsageLedger

__all__ = ["AppState", "build_server"]

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Research tools over the whole OpenRouter model catalog. Every result reports tokens and USD cost."
)


@dataclass
class AppState:
    """What every tool shares for the server's lifetime."""

    settings: Settings
    client: OpenRouterClient
    catalog: ModelCatalog
    ledger: UsageLedger


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    """Create the shared client and catalog, and close them on the way out."""
    ledger = UsageLedger()
    client = OpenRouterClient(settings, ledger=ledger)
    catalog = ModelCatalog(lambda: client.get_json("/models"), cache_dir=settings.cache_dir,
                           ttl=settings.models_ttl, base_url=settings.base_url)
    client.pricing = catalog.pricing_for
    try:
        yield AppState(settings=settings, client=client, catalog=catalog, ledger=ledger)
    finally:
        await catalog.aclose()
        await client.aclose()
        sys.stdout.flush()  # drain any stray buffered output to stderr while fd 1 still points there


def build_server(settings: Settings) -> MCPServer:
    """The MCP server for `settings`."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[AppState]:
        async with open_state(settings) as state:
            log.info("openrouter-research-mcp %s ready (key %s)", __version__,
                     "present" if settings.has_api_key else "missing")
            yield state

    return MCPServer("openrouter-research-mcp", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan)
