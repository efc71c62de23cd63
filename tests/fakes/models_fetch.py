"""Fakes for driving `ModelCatalog` without a network or real time: a wall clock and a `GET /models` stand-in."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fakes.catalog_data import catalog

__all__ = ["FakeClock", "FakeModelsFetch"]


class FakeClock:
    """Wall-clock time that moves only when the test advances it."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeModelsFetch:
    """Stands in for `GET /models`: counts calls, returns `body`, raises `error`, or first waits for `gate`."""

    def __init__(self) -> None:
        self.body: Any = catalog()
        self.error: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.calls = 0
        self.cancelled = False

    async def __call__(self) -> Any:
        self.calls += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            raise self.error
        return self.body
