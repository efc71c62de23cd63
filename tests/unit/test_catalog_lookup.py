"""`ModelCatalog` lookup: exact ids, variant suffixes, router ids, did-you-mean suggestions, pricing and search."""

from __future__ import annotations

import pytest

from openrouter_research_mcp.errors import ModelNotFoundError
from openrouter_research_mcp.openrouter.catalog import ModelCatalog
from openrouter_research_mcp.openrouter.models import SearchQuery
from tests.fakes.catalog_data import catalog, model_ids
from tests.fakes.models_fetch import FakeClock, FakeModelsFetch


def new_catalog(fetch: FakeModelsFetch) -> ModelCatalog:
    return ModelCatalog(fetch, cache_dir=None, ttl=3600.0, clock=FakeClock())


@pytest.fixture
def fake_models_fetch() -> FakeModelsFetch:
    return FakeModelsFetch()


@pytest.fixture
async def loaded(fake_models_fetch: FakeModelsFetch) -> ModelCatalog:
    models = new_catalog(fake_models_fetch)
    await models.get()
    return models


@pytest.mark.parametrize("model_id", model_ids())
async def test_catalog_lookup_finds_exact_ids(loaded: ModelCatalog, model_id: str) -> None:
    assert (await loaded.lookup(model_id)).id == model_id
    assert (await loaded.lookup(f"  {model_id} ")).id == model_id


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("meta-llama/llama-3.3-70b-instruct:free", "meta-llama/llama-3.3-70b-instruct:free"),
        ("openai/gpt-4o:online", "openai/gpt-4o"),
        ("meta-llama/llama-3.3-70b-instruct:nitro", "meta-llama/llama-3.3-70b-instruct"),
        ("anthropic/claude-3.5-sonnet:floor", "anthropic/claude-3.5-sonnet"),
        ("deepseek/deepseek-r1:thinking", "deepseek/deepseek-r1"),
    ],
)
async def test_catalog_lookup_accepts_variant_suffixes(loaded: ModelCatalog, wanted: str, expected: str) -> None:
    assert (await loaded.lookup(wanted)).id == expected


async def test_catalog_lookup_accepts_router_ids(loaded: ModelCatalog) -> None:
    auto = await loaded.lookup("openrouter/auto")
    assert auto.name == "Auto Router" and auto.context_length == 2000000  # the catalog's own entry
    free = await loaded.lookup("openrouter/free")  # absent from the catalog, accepted anyway
    assert free.id == "openrouter/free"
    assert not auto.pricing.known  # decided at routing time
    assert free.pricing.known and free.pricing.is_free


async def test_catalog_lookup_free_suffix_needs_a_free_entry(loaded: ModelCatalog) -> None:
    with pytest.raises(ModelNotFoundError) as caught:  # gpt-4o-mini has no `:free` variant in the catalog
        await loaded.lookup("openai/gpt-4o-mini:free")
    assert caught.value.suggestions[0] == "openai/gpt-4o-mini"


@pytest.mark.parametrize(
    ("wanted", "best"),
    [
        ("openai/gpt-4o-mni", "openai/gpt-4o-mini"),
        ("gpt-4o-mini", "openai/gpt-4o-mini"),
        ("claude-3.5-sonet", "anthropic/claude-3.5-sonnet"),
        ("deepseek/deepseek-r2:thinking", "deepseek/deepseek-r1"),
        ("anthropic/claude", "anthropic/claude-sonnet-4"),  # the slug alone is too short to match
    ],
)
async def test_catalog_lookup_unknown_id_suggests_close_matches(loaded: ModelCatalog, wanted: str, best: str) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        await loaded.lookup(wanted)
    error = info.value
    assert error.suggestions[0] == best
    assert 1 <= len(error.suggestions) <= 3
    assert all(f"`{s}`" in error.message for s in error.suggestions)
    assert f"`{wanted}`" in error.message and error.model == wanted and error.status == 404


@pytest.mark.parametrize("wanted", ["unknown/model:thinking", "openai/gpt-4o:bogus", "openai/gpt-4o-mini:pro"])
async def test_catalog_lookup_rejects_unknown_base_or_suffix(loaded: ModelCatalog, wanted: str) -> None:
    with pytest.raises(ModelNotFoundError):
        await loaded.lookup(wanted)


async def test_catalog_lookup_suggests_at_most_three(fake_models_fetch: FakeModelsFetch) -> None:
    body = catalog()
    for provider in ("azure", "groq", "fireworks"):  # four models share the slug `gpt-4o-mini`
        body["data"].append({**body["data"][0], "id": f"{provider}/gpt-4o-mini"})
    fake_models_fetch.body = body
    models = new_catalog(fake_models_fetch)
    with pytest.raises(ModelNotFoundError) as info:
        await models.lookup("gpt-4o-mini")
    assert len(info.value.suggestions) == 3
    assert all(s.endswith("/gpt-4o-mini") for s in info.value.suggestions)


async def test_catalog_lookup_without_close_match_says_how_to_find_one(loaded: ModelCatalog) -> None:
    with pytest.raises(ModelNotFoundError, match="list_models") as info:
        await loaded.lookup("zzzz")
    assert info.value.suggestions == []


async def test_catalog_pricing_for_needs_a_loaded_catalog(fake_models_fetch: FakeModelsFetch) -> None:
    models = new_catalog(fake_models_fetch)
    assert models.pricing_for("openai/gpt-4o") is None  # never fetches by itself
    assert fake_models_fetch.calls == 0
    await models.get()
    pricing = models.pricing_for("openai/gpt-4o:online")
    assert pricing is not None and pricing.per_million("prompt") == 2.5
    assert models.pricing_for("nobody/nothing") is None
    auto = models.pricing_for("openrouter/auto")
    assert auto is not None and not auto.known


async def test_catalog_search_returns_page_and_its_snapshot(loaded: ModelCatalog) -> None:
    page, snap = await loaded.search(SearchQuery(provider="openai", sort="price"))
    assert snap is loaded.loaded
    assert [m.id for m in page.models] == ["openai/gpt-4o-mini", "openai/gpt-4o", "openai/gpt-image-1"]
    assert page.total == 3
