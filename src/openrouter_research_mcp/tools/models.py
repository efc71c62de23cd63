"""`list_models`: one compact page of the catalog."""

from __future__ import annotations

from collections.abc import Sequence

from ..openrouter.models import Capability, SearchQuery, SortKey
from .results import ModelRow, ModelsPage
from .state import AppState

__all__ = ["list_models", "search_query"]


def search_query(
    *,
    query: str | None = None,
    provider: str | None = None,
    free_only: bool = False,
    min_context: int | None = None,
    max_price: float | None = None,
    modality: str | None = None,
    supports: Sequence[Capability] | None = None,
    sort: SortKey = "name",
    limit: int = 20,
    offset: int = 0,
) -> SearchQuery:
    """The catalog query for `list_models`' arguments: `max_price` caps prompt and completion prices alike, and a
    `modality` written `->image` filters by output instead of input."""
    output = modality[2:] if modality and modality.startswith("->") else None
    return SearchQuery(
        query=query,
        provider=provider,
        free_only=free_only,
        min_context=min_context,
        max_prompt_price=max_price,
        max_completion_price=max_price,
        input_modality=None if output or not modality else modality,
        output_modality=output,
        supports=list(supports or []),
        sort=sort,
        limit=limit,
        offset=offset,
    )


async def list_models(state: AppState, query: SearchQuery) -> ModelsPage:
    """Search the catalog and return one compact page."""
    page, snap = await state.catalog.search(query)
    age = snap.age()
    note = snap.refresh_error
    if note is None and age > state.settings.models_ttl:
        note = f"the catalog is {age / 60:.0f} min old; a refresh is under way"
    end = page.offset + len(page.models)
    return ModelsPage(
        models=[ModelRow.of(m) for m in page.models],
        total=page.total,
        offset=page.offset,
        next_offset=end if end < page.total else None,
        catalog_age_s=int(age),
        catalog_note=note,
    )
