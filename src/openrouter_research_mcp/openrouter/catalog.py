"""`ModelCatalog`: the OpenRouter model list, cached in memory and on disk, looked up and searched.

Freshness rules:
- fresh (younger than the TTL): served from memory, or from the disk cache after a restart;
- stale: served at once while one background refresh runs (stale-while-revalidate);
- refresh failed: the stale copy keeps being served, and `snapshot.refresh_error` says why and how old it is;
- nothing cached and the fetch fails: an error the user can act on.
Concurrent callers share one in-flight fetch. The cache file is written atomically and discarded when corrupt or
written for another base URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._util import strict_json, write_atomically
from ..errors import ModelNotFoundError, OpenRouterError, UpstreamUnavailableError
from .models import ModelInfo, SearchPage, SearchQuery, SortKey, search_models, sort_models
from .pricing import Pricing

__all__ = ["CACHE_FORMAT", "CatalogSnapshot", "ModelCatalog", "VARIANT_SUFFIXES"]

log = logging.getLogger(__name__)

CACHE_FORMAT = "openrouter-research-mcp/models/v1"
CACHE_FILE = "models.json"
VARIANT_SUFFIXES = ("free", "online", "nitro", "floor", "thinking", "extended", "beta", "exacto")
# Routers that pick a model at request time; a catalog may omit them, and their price is known only afterwards.
ROUTER_IDS = ("openrouter/auto", "openrouter/free")
# Seconds before the next fetch after a failure: a few at first (an outage at start-up is often a blip), doubling
# while failures go on, at most a minute, so an outage is not hammered and a recovery is noticed quickly.
REFRESH_BACKOFF_FIRST = 2.0
REFRESH_BACKOFF_MAX = 60.0
CLOCK_SKEW = 300.0  # a cache written up to this far "in the future" is a clock difference, not a forgery


@dataclass
class CatalogSnapshot:
    """The models as of `fetched_at` (wall-clock seconds), and where they came from."""

    models: dict[str, ModelInfo]
    fetched_at: float
    source: str  # "network" or "disk"
    refresh_error: str | None = None
    by_slug: dict[str, list[str]] = field(default_factory=dict)
    _orders: dict[str, list[ModelInfo]] = field(default_factory=dict, repr=False)

    def ordered(self, sort: SortKey) -> list[ModelInfo]:
        """The models sorted by `sort`, computed once per snapshot and key."""
        if sort not in self._orders:
            self._orders[sort] = sort_models(self.models.values(), sort)
        return self._orders[sort]

    def age(self, now: float | None = None) -> float:
        age = (time.time() if now is None else now) - self.fetched_at
        return max(age, 0.0) if math.isfinite(age) else 0.0


def parse_catalog(body: Any) -> dict[str, ModelInfo]:
    """Parse `GET /models` (either shape); skip, and log, any entry that cannot be read."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ValueError("no `data` list in the catalog")
    models: dict[str, ModelInfo] = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        try:
            models[entry["id"]] = ModelInfo.from_api(entry)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("skipping catalog entry %r: %s", entry.get("id"), exc)
    return models


def _snapshot(raw: Any, fetched_at: float, source: str) -> CatalogSnapshot:
    models = parse_catalog(raw)
    by_slug: dict[str, list[str]] = {}
    for model_id in models:
        by_slug.setdefault(model_id.split("/", 1)[-1], []).append(model_id)
    return CatalogSnapshot(models=models, fetched_at=fetched_at, source=source, by_slug=by_slug)


class ModelCatalog:
    """The model catalog with memory and disk caching.

    `fetch` returns the raw `GET /models` JSON (normally `OpenRouterClient.get_json("/models")`); `cache_dir` holds
    the cache file (None disables disk caching); `base_url` is recorded in the file so a cache made for another
    gateway is never used; `clock` is wall-clock time, injectable for tests.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Any]],
        *,
        cache_dir: Path | None,
        ttl: float,
        base_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._path = cache_dir / CACHE_FILE if cache_dir is not None else None
        self._ttl = ttl
        self._base_url = base_url
        self._clock = clock
        self._snapshot: CatalogSnapshot | None = None
        self._inflight: asyncio.Task[CatalogSnapshot] | None = None
        self._disk_checked = False
        self._next_refresh = 0.0  # wall-clock time before which no refresh starts (after a failure)
        self._failures = 0  # fetches failed in a row
        self._last_error: UpstreamUnavailableError | None = None  # the last failed fetch while nothing is cached
        self._disk_lock = asyncio.Lock()

    @property
    def cache_path(self) -> Path | None:
        return self._path

    @property
    def loaded(self) -> CatalogSnapshot | None:
        """The snapshot in memory, if any, without fetching."""
        return self._snapshot

    def _fresh(self, snap: CatalogSnapshot) -> bool:
        return snap.age(self._clock()) < self._ttl

    # ------------------------------------------------------------------------------------------------- disk

    def _read_disk(self) -> CatalogSnapshot | None:
        if self._path is None or not self._path.is_file():
            return None
        try:
            doc = json.loads(self._path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
                raise ValueError("not a cache file of ours")
            if doc.get("base_url") != self._base_url:
                raise ValueError(f"made for {doc.get('base_url')!r}")
            fetched_at = float(doc["fetched_at"])
            now = self._clock()
            if not math.isfinite(fetched_at) or fetched_at > now + CLOCK_SKEW:
                # A time in the future (or none at all) would keep the copy fresh forever: treat it as expired.
                log.warning(
                    "model cache %s has an impossible fetched_at (%r); treating it as expired",
                    self._path,
                    doc["fetched_at"],
                )
                fetched_at = now - self._ttl - 1
            return _snapshot(doc["data"], fetched_at, "disk")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("discarding model cache %s: %s", self._path, exc)
            with contextlib.suppress(OSError):
                self._path.unlink()
            return None

    def _write_disk(self, raw: Any, fetched_at: float) -> None:
        if self._path is None:
            return
        doc = {"format": CACHE_FORMAT, "base_url": self._base_url, "fetched_at": fetched_at, "data": raw}
        try:
            write_atomically(self._path, strict_json(doc, separators=(",", ":")))
        except OSError as exc:  # a read-only cache dir must not break the server
            log.warning("could not write the model cache %s: %s", self._path, exc)

    # ------------------------------------------------------------------------------------------------ fetching

    async def _refresh(self) -> CatalogSnapshot:
        raw = await self._fetch()
        fetched_at = self._clock()
        try:
            snap = await asyncio.to_thread(_snapshot, raw, fetched_at, "network")
        except ValueError as exc:
            raise UpstreamUnavailableError(
                f"The model catalog from {self._base_url or 'OpenRouter'} could not be "
                f"read ({exc}). Check OPENROUTER_BASE_URL."
            ) from None
        if not snap.models:  # never let an empty answer replace a good catalog
            raise UpstreamUnavailableError(
                f"The model catalog from {self._base_url or 'OpenRouter'} was empty. Check OPENROUTER_BASE_URL."
            )
        self._snapshot = snap
        self._last_error = None
        self._failures = 0
        await asyncio.to_thread(self._write_disk, raw, fetched_at)
        log.info("model catalog: %d models fetched", len(snap.models))
        return snap

    def _start_refresh(self) -> asyncio.Task[CatalogSnapshot]:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._refresh())
            self._inflight.add_done_callback(self._refresh_done)
        return self._inflight

    def _refresh_done(self, task: asyncio.Task[CatalogSnapshot]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # During an outage, do not refetch on every call: wait a while (longer each time) before the next try.
            self._failures += 1
            pause = min(REFRESH_BACKOFF_FIRST * 2 ** (self._failures - 1), REFRESH_BACKOFF_MAX)
            self._next_refresh = self._clock() + pause
            if self._snapshot is not None:
                age = self._snapshot.age(self._clock())
                self._snapshot.refresh_error = (
                    f"refresh failed ({exc}); serving the catalog from {age / 60:.0f} min ago"
                )
                log.warning("model catalog %s", self._snapshot.refresh_error)

    async def get(self) -> CatalogSnapshot:
        """The current snapshot: fresh from memory or disk, stale while a refresh runs, or fetched now."""
        if self._snapshot is None and not self._disk_checked:
            async with self._disk_lock:  # callers arriving during the disk read wait for it instead of fetching
                if not self._disk_checked:
                    try:
                        self._snapshot = await asyncio.to_thread(self._read_disk)
                    finally:
                        self._disk_checked = True
        snap = self._snapshot
        if snap is not None:
            if not self._fresh(snap) and self._clock() >= self._next_refresh:
                self._start_refresh()
            return snap
        if self._last_error is not None and self._clock() < self._next_refresh:
            raise self._last_error  # failed moments ago: answer at once instead of retrying on every call
        try:
            return await asyncio.shield(self._start_refresh())
        except OpenRouterError as exc:
            self._last_error = UpstreamUnavailableError(
                f"The model catalog could not be loaded: {exc.message}", status=exc.status
            )
            raise self._last_error from None

    async def aclose(self) -> None:
        """Cancel a background refresh, if one runs."""
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._inflight

    # ------------------------------------------------------------------------------------------------- lookup

    def resolve(self, snap: CatalogSnapshot, model_id: str) -> ModelInfo:
        """The entry for `model_id`, accepting router ids and variant suffixes; raises with close matches."""
        wanted = model_id.strip()
        if wanted in snap.models:
            return snap.models[wanted]
        base, _, suffix = wanted.partition(":")
        # `:free` is a separate catalog entry (checked above); the other variants route the base model.
        if suffix in VARIANT_SUFFIXES and suffix != "free" and base in snap.models:
            return snap.models[base]
        if wanted in ROUTER_IDS:
            price = Pricing() if wanted == "openrouter/free" else Pricing(prompt=-1, completion=-1)
            return ModelInfo(
                id=wanted, name=wanted, pricing=price, description="OpenRouter router: the model is chosen per request."
            )
        raise ModelNotFoundError(model_id, self.suggest(snap, base))

    def suggest(self, snap: CatalogSnapshot, model_id: str, n: int = 3) -> list[str]:
        """Up to `n` catalog ids close to `model_id`."""
        key = model_id.lower()
        exact_slug = snap.by_slug.get(key.split("/", 1)[-1], [])
        close = difflib.get_close_matches(key, list(snap.models), n=n, cutoff=0.6)
        slugs = difflib.get_close_matches(key.split("/", 1)[-1], list(snap.by_slug), n=n, cutoff=0.6)
        from_slugs = [model for slug in slugs for model in snap.by_slug[slug]]
        return list(dict.fromkeys([*exact_slug, *close, *from_slugs]))[:n]

    async def lookup(self, model_id: str) -> ModelInfo:
        """Resolve `model_id` against the current snapshot (see `resolve`)."""
        return self.resolve(await self.get(), model_id)

    def pricing_for(self, model_id: str) -> Pricing | None:
        """Pricing from the loaded snapshot, without fetching; None if unknown (used for cost fallbacks)."""
        if self._snapshot is None:
            return None
        try:
            return self.resolve(self._snapshot, model_id).pricing
        except ModelNotFoundError:
            return None

    def complete(self, snap: CatalogSnapshot, typed: str, limit: int = 100) -> tuple[list[str], int]:
        """Model ids for a completion request: those starting with the last comma-separated part of `typed`, else
        those containing it; at most `limit`, and how many matched in all."""
        part = typed.rsplit(",", 1)[-1].strip().lower()
        ids = sorted(snap.models)
        hits = [i for i in ids if i.lower().startswith(part)] or [i for i in ids if part in i.lower()]
        return hits[:limit], len(hits)

    async def search(self, query: SearchQuery) -> tuple[SearchPage, CatalogSnapshot]:
        """Search the catalog; returns the page and the snapshot it came from (for its age)."""
        snap = await self.get()
        return search_models(snap.ordered(query.sort), query, presorted=True), snap
