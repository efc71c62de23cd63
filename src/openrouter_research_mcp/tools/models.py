"""`list_models`: one compact page of the catalog."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..openrouter.models import Capability, SearchQuery, SortKey
from .results import ModelRow, ModelsPage
from .state import CallState

__all__ = ["ListModelsInput", "list_models", "search_query"]


class ListModelsInput(BaseModel):
    """What `list_models` takes (the tool's schema is made from it)."""

    query: str | None = Field(default=None, description="words to find in the id, name or description")
    provider: str | None = Field(default=None, description="e.g. openai, anthropic, google, meta-llama")
    free_only: bool = Field(default=False, description="only models that cost nothing")
    min_context: int | None = Field(default=None, ge=0, description="minimum context length in tokens")
    max_price: float | None = Field(default=None, ge=0, description="max USD per million tokens, prompt and completion")
    modality: str | None = Field(default=None, description="input modality (image, audio, file); '->image': output")
    supports: list[Capability] | None = Field(default=None, description="required capabilities")
    sort: SortKey = Field(default="name", description="order of results")
    limit: int = Field(default=20, ge=1, le=100, description="models per page")
    offset: int = Field(default=0, ge=0, description="start of the page (next_offset)")


def search_query(args: ListModelsInput) -> SearchQuery:
    """The catalog query for `list_models`' arguments: `max_price` caps prompt and completion prices alike, and a
    `modality` written `->image` filters by output instead of input."""
    modality = args.modality
    output = modality[2:] if modality and modality.startswith("->") else None
    return SearchQuery(
        query=args.query,
        provider=args.provider,
        free_only=args.free_only,
        min_context=args.min_context,
        max_prompt_price=args.max_price,
        max_completion_price=args.max_price,
        input_modality=None if output or not modality else modality,
        output_modality=output,
        supports=list(args.supports or []),
        sort=args.sort,
        limit=args.limit,
        offset=args.offset,
    )


async def list_models(state: CallState, query: SearchQuery) -> ModelsPage:
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
