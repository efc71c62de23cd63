"""What every tool shares for the server's lifetime: settings, the client, the catalog and the session usage."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .._store import JsonStore
from ..config import Settings
from ..openrouter.catalog import ModelCatalog
from ..openrouter.client import OpenRouterClient
from ..openrouter.pricing import SessionUsage
from ..research.engine import ResearchEngine
from ..research.manager import ResearchManager
from ..research.store import RunStore
from .benchmark_report import BENCHMARK_ID, BenchmarkReport
from .benchmark_runs import BenchmarkManager

__all__ = ["AppState", "open_state"]


@dataclass
class AppState:
    """Shared state, created once in the server's lifespan."""

    settings: Settings
    client: OpenRouterClient
    catalog: ModelCatalog
    usage: SessionUsage
    research: ResearchManager
    benchmarks: BenchmarkManager


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    """Create the shared client and catalog, and close them on the way out."""
    usage = SessionUsage()
    client = OpenRouterClient(settings, usage=usage)
    catalog = ModelCatalog(
        lambda: client.get_json("/models"),
        cache_dir=settings.cache_dir,
        ttl=settings.models_ttl,
        base_url=settings.base_url,
    )
    client.pricing = catalog.pricing_for
    store = RunStore(settings.data_dir / "research")
    engine = ResearchEngine(client, store, settings)
    research = ResearchManager(engine, store, catalog)
    research.start()  # index saved runs on a worker thread, off the start-up path
    benchmarks = BenchmarkManager(JsonStore(settings.data_dir / "benchmarks", BenchmarkReport, BENCHMARK_ID))
    try:
        yield AppState(
            settings=settings, client=client, catalog=catalog, usage=usage, research=research, benchmarks=benchmarks
        )
    finally:
        await asyncio.gather(research.aclose(), benchmarks.aclose())
        await catalog.aclose()
        await client.aclose()
        sys.stdout.flush()  # drain any stray buffered output to stderr while fd 1 still points there
