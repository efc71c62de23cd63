"""`ModelCatalog` caching: memory and disk, TTL and stale-while-revalidate, single flight, offline serving."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.errors import (
    BadResponseError,
    OpenRouterError,
    RateLimitError,
    UpstreamUnavailableError,
)
from openrouter_research_mcp.openrouter.catalog import (
    CACHE_FORMAT,
    REFRESH_BACKOFF_FIRST,
    REFRESH_BACKOFF_MAX,
    CatalogSnapshot,
    ModelCatalog,
)
from openrouter_research_mcp.openrouter.client import OpenRouterClient
from tests.fakes.catalog_data import catalog, model_ids, with_extra_models
from tests.fakes.models_fetch import FakeClock, FakeModelsFetch
from tests.support import eventually
from tests.unit.helpers import mock_upstream

TTL = 3600.0
BASE_URL = "http://fake.test/api/v1"


class Catalogs:
    """Builds catalogs that share one clock and cache dir (a restart is a new instance), and closes them."""

    def __init__(self, clock: FakeClock, cache_dir: Path) -> None:
        self.clock = clock
        self.cache_dir = cache_dir
        self.made: list[ModelCatalog] = []

    def new(self, fetch: FakeModelsFetch, *, base_url: str = BASE_URL, cache: bool = True) -> ModelCatalog:
        made = ModelCatalog(
            fetch, cache_dir=self.cache_dir if cache else None, ttl=TTL, base_url=base_url, clock=self.clock
        )
        self.made.append(made)
        return made


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_models_fetch() -> FakeModelsFetch:
    return FakeModelsFetch()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
async def catalogs(clock: FakeClock, cache_dir: Path) -> AsyncIterator[Catalogs]:
    made = Catalogs(clock, cache_dir)
    yield made
    for each in made.made:
        await each.aclose()


async def at_once(models: ModelCatalog) -> CatalogSnapshot:
    """`models.get()`, failing the test if it waits (stale copies must be served without awaiting a refresh)."""
    async with asyncio.timeout(1.0):
        return await models.get()


def new_model_body() -> dict[str, Any]:
    """A catalog that differs from the default one by one extra model."""
    return with_extra_models(catalog(), 1)


# ------------------------------------------------------------------------------------------------ TTL, memory


async def test_catalog_first_get_fetches_and_parses(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock
) -> None:
    snap = await catalogs.new(fake_models_fetch).get()
    assert fake_models_fetch.calls == 1
    assert snap.source == "network"
    assert snap.fetched_at == clock.now
    assert sorted(snap.models) == sorted(model_ids())
    assert snap.refresh_error is None


async def test_catalog_serves_fresh_cache_without_fetching(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock
) -> None:
    models = catalogs.new(fake_models_fetch)
    first = await models.get()
    clock.advance(TTL - 1)
    for _ in range(3):
        assert await models.get() is first
    assert fake_models_fetch.calls == 1


async def test_catalog_serves_stale_copy_while_one_background_refresh_runs(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock
) -> None:
    models = catalogs.new(fake_models_fetch)
    stale = await models.get()
    fake_models_fetch.body, fake_models_fetch.gate = new_model_body(), asyncio.Event()
    clock.advance(TTL)  # age == TTL is no longer fresh
    assert await at_once(models) is stale  # although the refresh is blocked
    await eventually(interval=0.001, probe=lambda: fake_models_fetch.calls == 2)
    for _ in range(5):
        assert await at_once(models) is stale
    assert fake_models_fetch.calls == 2  # one background refresh, not one per caller
    fake_models_fetch.gate.set()
    await eventually(interval=0.001, probe=lambda: models.loaded is not stale)
    fresh = await models.get()
    assert "synthetic/model-0000" in fresh.models
    assert "synthetic/model-0000" not in stale.models
    assert fresh.source == "network" and fresh.fetched_at == clock.now
    assert fake_models_fetch.calls == 2


async def test_catalog_keeps_serving_stale_snapshot_when_refresh_fails(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock
) -> None:
    models = catalogs.new(fake_models_fetch)
    stale = await models.get()
    clock.advance(2 * 3600)
    fake_models_fetch.error = UpstreamUnavailableError("OpenRouter is unavailable (503: down)", status=503)
    assert await models.get() is stale
    await eventually(interval=0.001, probe=lambda: stale.refresh_error is not None)
    assert stale.refresh_error is not None
    assert "120 min ago" in stale.refresh_error
    assert "503: down" in stale.refresh_error
    assert sorted(stale.models) == sorted(model_ids())

    fake_models_fetch.error, fake_models_fetch.body = None, new_model_body()
    again = await models.get()  # within the refresh backoff: served as is, no new fetch during an outage
    assert again is stale and again.refresh_error is not None and fake_models_fetch.calls == 2
    clock.advance(REFRESH_BACKOFF_FIRST)
    assert await models.get() is stale  # backoff over: still served at once, refreshed in the background
    await eventually(interval=0.001, probe=lambda: models.loaded is not stale)
    assert fake_models_fetch.calls == 3
    recovered = await models.get()
    assert recovered.refresh_error is None
    assert "synthetic/model-0000" in recovered.models


@pytest.mark.parametrize(
    "error",
    [
        UpstreamUnavailableError("Could not reach OpenRouter at http://fake.test/api/v1 (ConnectError)."),
        RateLimitError("OpenRouter rate-limited the request (429: slow down).", status=429),
        BadResponseError("OpenRouter's answer to GET /models was not JSON."),
    ],
)
async def test_catalog_without_cache_raises_upstream_unavailable_when_fetch_fails(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock, error: OpenRouterError
) -> None:
    fake_models_fetch.error = error
    models = catalogs.new(fake_models_fetch)
    with pytest.raises(UpstreamUnavailableError) as info:
        await models.get()
    assert isinstance(info.value, OpenRouterError)
    assert "model catalog could not be loaded" in info.value.message
    assert error.message in info.value.message  # the cause and its advice reach the user
    assert info.value.status == error.status
    assert models.loaded is None

    fake_models_fetch.error = None
    with pytest.raises(UpstreamUnavailableError):  # moments later: the same answer at once, no new fetch
        await models.get()
    assert fake_models_fetch.calls == 1
    clock.advance(REFRESH_BACKOFF_FIRST)  # a few seconds later it tries again: an outage at start-up is often short
    snap = await models.get()
    assert fake_models_fetch.calls == 2 and sorted(snap.models) == sorted(model_ids())


async def test_catalog_backs_off_longer_while_an_outage_goes_on(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock
) -> None:
    fake_models_fetch.error = UpstreamUnavailableError("down", status=503)
    models = catalogs.new(fake_models_fetch)
    waits = []
    for _ in range(8):
        with pytest.raises(UpstreamUnavailableError):
            await models.get()
        calls, waited = fake_models_fetch.calls, 0.0
        while fake_models_fetch.calls == calls:  # advance a second at a time until the next fetch is tried
            clock.advance(1)
            waited += 1
            with pytest.raises(UpstreamUnavailableError):
                await models.get()
        waits.append(waited)
    assert waits[0] <= REFRESH_BACKOFF_FIRST + 1 and waits == sorted(waits) and max(waits) <= REFRESH_BACKOFF_MAX + 1
    assert waits[-1] > waits[0] * 4


@pytest.mark.parametrize(
    "body",
    [{"error": {"code": 500, "message": "x"}}, [], "<html>", {"data": None}, {"data": []}, {"data": [{"no": "id"}]}],
)
async def test_catalog_rejects_body_without_model_list(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, cache_dir: Path, body: Any
) -> None:
    fake_models_fetch.body = body
    with pytest.raises(UpstreamUnavailableError, match="OPENROUTER_BASE_URL") as info:
        await catalogs.new(fake_models_fetch).get()
    assert BASE_URL in info.value.message
    assert not (cache_dir / "models.json").exists()


async def test_catalog_empty_refresh_never_replaces_a_good_catalog(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock, cache_dir: Path
) -> None:
    models = catalogs.new(fake_models_fetch)
    good = await models.get()
    on_disk = (cache_dir / "models.json").read_text()
    clock.advance(2 * 3600)
    fake_models_fetch.body = {"data": [], "total_count": 0}
    assert await models.get() is good
    await eventually(interval=0.001, probe=lambda: good.refresh_error is not None)
    assert "empty" in (good.refresh_error or "") and models.loaded is good
    assert (cache_dir / "models.json").read_text() == on_disk


# ------------------------------------------------------------------------------------------------ disk cache


async def test_catalog_restart_serves_from_disk_without_fetching(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock
) -> None:
    first = await catalogs.new(fake_models_fetch).get()
    clock.advance(TTL / 2)
    restarted = FakeModelsFetch()
    snap = await catalogs.new(restarted).get()
    assert restarted.calls == 0
    assert snap.source == "disk"
    assert snap.fetched_at == first.fetched_at
    assert sorted(snap.models) == sorted(first.models)
    assert snap.models["openai/gpt-4o-mini"] == first.models["openai/gpt-4o-mini"]


async def test_catalog_writes_cache_file_atomically(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, cache_dir: Path, clock: FakeClock
) -> None:
    models = catalogs.new(fake_models_fetch)
    await models.get()
    assert models.cache_path == cache_dir / "models.json"
    assert os.listdir(cache_dir) == ["models.json"]  # no temp file left behind
    doc = json.loads((cache_dir / "models.json").read_text(encoding="utf-8"))
    assert doc["format"] == CACHE_FORMAT
    assert doc["base_url"] == BASE_URL
    assert doc["fetched_at"] == clock.now
    assert doc["data"] == fake_models_fetch.body


async def test_catalog_removes_temp_file_when_replace_fails(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(os, "replace", refuse)
    snap = await catalogs.new(fake_models_fetch).get()
    assert sorted(snap.models) == sorted(model_ids())  # the failed write does not break the server
    assert os.listdir(cache_dir) == []


async def test_catalog_works_when_cache_dir_cannot_be_created(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, cache_dir: Path
) -> None:
    cache_dir.write_text("a file where the directory should be", encoding="utf-8")
    snap = await catalogs.new(fake_models_fetch).get()
    assert snap.source == "network" and len(snap.models) == len(model_ids())


async def test_catalog_without_cache_dir_touches_no_disk(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, cache_dir: Path
) -> None:
    models = catalogs.new(fake_models_fetch, cache=False)
    await models.get()
    assert models.cache_path is None and not cache_dir.exists()


def _cache_doc(**changes: Any) -> bytes:
    doc: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "base_url": BASE_URL,
        "fetched_at": 1_750_000_000.0,
        "data": catalog(),
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\xff\xfe\x00garbage\x80", id="garbage-bytes"),
        pytest.param(_cache_doc()[:200], id="truncated-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"format": "some-other-tool/v3", "items": []}', id="foreign-json"),
        pytest.param(b"[1, 2, 3]", id="json-list"),
        pytest.param(_cache_doc(base_url="https://other-gateway.test/v1"), id="other-base-url"),
        pytest.param(_cache_doc(format="openrouter-research-mcp/models/v0"), id="old-format"),
        pytest.param(_cache_doc(data={"models": []}), id="no-data-list"),
        pytest.param(_cache_doc(fetched_at="yesterday"), id="bad-fetched-at"),
    ],
)
async def test_catalog_discards_unusable_cache_file_and_refetches(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, cache_dir: Path, clock: FakeClock, content: bytes
) -> None:
    cache_dir.mkdir()
    (cache_dir / "models.json").write_bytes(content)
    snap = await catalogs.new(fake_models_fetch).get()
    assert fake_models_fetch.calls == 1
    assert snap.source == "network" and sorted(snap.models) == sorted(model_ids())
    doc = json.loads((cache_dir / "models.json").read_text(encoding="utf-8"))  # replaced by a good one
    assert (doc["format"], doc["base_url"], doc["fetched_at"]) == (CACHE_FORMAT, BASE_URL, clock.now)


async def test_catalog_deletes_corrupt_cache_file_even_when_fetch_fails(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, cache_dir: Path
) -> None:
    cache_dir.mkdir()
    (cache_dir / "models.json").write_bytes(b'{"format": ')
    fake_models_fetch.error = UpstreamUnavailableError("offline")
    with pytest.raises(UpstreamUnavailableError):
        await catalogs.new(fake_models_fetch).get()
    assert os.listdir(cache_dir) == []


async def test_catalog_ignores_cache_made_for_another_base_url(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch
) -> None:
    await catalogs.new(fake_models_fetch, base_url="https://gateway-a.test/v1").get()
    other = FakeModelsFetch()
    snap = await catalogs.new(other, base_url="https://gateway-b.test/v1").get()
    assert other.calls == 1 and snap.source == "network"


async def test_catalog_serves_stale_disk_copy_while_refreshing(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock, cache_dir: Path
) -> None:
    await catalogs.new(fake_models_fetch).get()
    clock.advance(TTL + 60)
    restarted = FakeModelsFetch()
    restarted.body, restarted.gate = new_model_body(), asyncio.Event()
    models = catalogs.new(restarted)
    stale = await at_once(models)
    assert stale.source == "disk" and "synthetic/model-0000" not in stale.models
    await eventually(interval=0.001, probe=lambda: restarted.calls == 1)
    restarted.gate.set()
    await eventually(interval=0.001, probe=lambda: models.loaded is not stale)
    fresh = await models.get()
    assert fresh.source == "network" and "synthetic/model-0000" in fresh.models
    assert restarted.calls == 1
    await eventually(
        interval=0.001, probe=lambda: "synthetic/model-0000" in (cache_dir / "models.json").read_text(encoding="utf-8")
    )


# ------------------------------------------------------------------------------------------------ single flight


async def test_catalog_concurrent_gets_share_one_fetch(catalogs: Catalogs, fake_models_fetch: FakeModelsFetch) -> None:
    fake_models_fetch.gate = asyncio.Event()
    models = catalogs.new(fake_models_fetch)
    callers = [asyncio.create_task(models.get()) for _ in range(10)]
    await eventually(interval=0.001, probe=lambda: fake_models_fetch.calls >= 1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not any(caller.done() for caller in callers)  # all ten are really waiting on the blocked fetch
    fake_models_fetch.gate.set()
    snaps = await asyncio.gather(*callers)
    assert fake_models_fetch.calls == 1
    assert all(snap is snaps[0] for snap in snaps)


async def test_catalog_concurrent_gets_after_restart_share_the_disk_copy(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch
) -> None:
    await catalogs.new(fake_models_fetch).get()
    restarted = FakeModelsFetch()
    models = catalogs.new(restarted)
    snaps = await asyncio.gather(*(models.get() for _ in range(10)))
    assert restarted.calls == 0
    assert {snap.source for snap in snaps} == {"disk"}


async def test_catalog_cancelled_caller_does_not_cancel_shared_fetch(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch
) -> None:
    fake_models_fetch.gate = asyncio.Event()
    models = catalogs.new(fake_models_fetch)
    impatient, patient = asyncio.create_task(models.get()), asyncio.create_task(models.get())
    await eventually(interval=0.001, probe=lambda: fake_models_fetch.calls == 1)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    fake_models_fetch.gate.set()
    snap = await patient
    assert not fake_models_fetch.cancelled and fake_models_fetch.calls == 1
    assert len(snap.models) == len(model_ids())


async def test_catalog_aclose_cancels_background_refresh(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock
) -> None:
    models = catalogs.new(fake_models_fetch)
    stale = await models.get()
    fake_models_fetch.gate = asyncio.Event()
    clock.advance(TTL + 1)
    await at_once(models)
    await eventually(interval=0.001, probe=lambda: fake_models_fetch.calls == 2)
    await models.aclose()
    assert fake_models_fetch.cancelled
    assert models.loaded is stale and stale.refresh_error is None  # a cancel is not a failure


# ------------------------------------------------------------------------------------------------ real client


async def test_catalog_loads_through_openrouter_client(tmp_path: Path, clock: FakeClock) -> None:
    settings = load_settings(base_url=BASE_URL, cache_dir=str(tmp_path / "cache"), max_retries=0)
    client = OpenRouterClient(settings)
    models = ModelCatalog(
        lambda: client.get_json("/models"),
        cache_dir=settings.cache_dir,
        ttl=settings.models_ttl,
        base_url=settings.base_url,
        clock=clock,
    )
    try:
        with mock_upstream(base_url=BASE_URL) as mock:
            route = mock.get("/models").mock(return_value=httpx.Response(200, json=catalog(2025)))
            snap = await models.get()
            assert (await models.lookup("openai/gpt-4o:online")).id == "openai/gpt-4o"
            assert route.call_count == 1
            assert "Authorization" not in route.calls.last.request.headers  # /models needs no key
        assert sorted(snap.models) == sorted(model_ids())
        doc = json.loads((settings.cache_dir / "models.json").read_text(encoding="utf-8"))
        assert doc["base_url"] == settings.base_url
    finally:
        await models.aclose()
        await client.aclose()


async def test_catalog_reports_upstream_outage_through_client(clock: FakeClock) -> None:
    settings = load_settings(base_url=BASE_URL, max_retries=0)
    client = OpenRouterClient(settings)
    models = ModelCatalog(lambda: client.get_json("/models"), cache_dir=None, ttl=TTL, base_url=BASE_URL, clock=clock)
    try:
        with mock_upstream(base_url=BASE_URL) as mock:
            mock.get("/models").mock(
                return_value=httpx.Response(503, json={"error": {"code": 503, "message": "maintenance"}})
            )
            with pytest.raises(UpstreamUnavailableError, match="maintenance") as info:
                await models.get()
        assert info.value.status == 503
    finally:
        await client.aclose()


@pytest.mark.parametrize("stamp", ["future", "1e400", "NaN", "-Infinity"])
async def test_catalog_cache_with_an_impossible_time_counts_as_expired(
    catalogs: Catalogs, fake_models_fetch: FakeModelsFetch, clock: FakeClock, cache_dir: Path, stamp: str
) -> None:
    fetched_at = str(clock.now + 10 * 365 * 86400) if stamp == "future" else stamp
    cache_dir.mkdir(parents=True)
    data = json.dumps(catalog(2026))
    (cache_dir / "models.json").write_text(
        f'{{"format": "{CACHE_FORMAT}", "base_url": "{BASE_URL}", "fetched_at": {fetched_at}, "data": {data}}}'
    )
    models = catalogs.new(fake_models_fetch)
    snap = await models.get()  # the disk copy is served at once, as stale, and never forever fresh
    assert snap.source == "disk" and 0 < snap.age(clock.now) < 2 * TTL
    await eventually(interval=0.001, probe=lambda: fake_models_fetch.calls == 1)
    await eventually(interval=0.001, probe=lambda: models.loaded is not snap)
