"""What the catalog knows about one model, parsed tolerantly, and the pure search over a list of them.

Both catalog shapes load: the 2025 one (every pricing key, zeros as `"0"`) and the 2026 one (zero prices omitted,
extra fields such as `reasoning`, `knowledge_cutoff`, `links`). Unknown or oddly typed fields never break parsing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._util import as_dict
from .pricing import Pricing

__all__ = [
    "Capability",
    "ModelInfo",
    "ReasoningEffort",
    "SearchPage",
    "SearchQuery",
    "SortKey",
    "search_models",
    "sort_models",
]

Capability = Literal["tools", "reasoning", "structured_outputs", "web_search"]
SortKey = Literal["price", "context", "newest", "name"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


def _lenient_int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _str_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


class ModelInfo(BaseModel):
    """One catalog entry. `raw` keeps the upstream JSON untouched for the full-metadata view."""

    model_config = ConfigDict(extra="ignore", defer_build=True)  # built on first use, not at start-up

    id: str
    name: str = ""
    description: str = ""
    created: int = 0
    context_length: int = 0
    max_completion_tokens: int | None = None
    input_modalities: list[str] = Field(default_factory=lambda: ["text"])
    output_modalities: list[str] = Field(default_factory=lambda: ["text"])
    pricing: Pricing = Field(default_factory=Pricing)
    supported_parameters: list[str] = Field(default_factory=list)
    is_moderated: bool = False
    knowledge_cutoff: str | None = None
    expiration_date: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("name", "description", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return "" if value is None else str(value)

    @field_validator("created", "context_length", mode="before")
    @classmethod
    def _count(cls, value: Any) -> int:
        return _lenient_int(value)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ModelInfo:
        """Build from one element of `GET /models` `data`, in either shape."""
        architecture = as_dict(data.get("architecture"))
        top = as_dict(data.get("top_provider"))
        inputs = _str_list(architecture.get("input_modalities"))
        outputs = _str_list(architecture.get("output_modalities"))
        if not inputs and isinstance(architecture.get("modality"), str) and "->" in architecture["modality"]:
            left, right = architecture["modality"].split("->", 1)
            inputs, outputs = left.split("+"), right.split("+")
        max_completion = top.get("max_completion_tokens")
        return cls.model_validate(
            {
                "id": str(data["id"]),
                "name": data.get("name") or data["id"],
                "description": data.get("description"),
                "created": data.get("created"),
                "context_length": data.get("context_length") or top.get("context_length"),
                "max_completion_tokens": _lenient_int(max_completion) or None,
                "input_modalities": inputs or ["text"],
                "output_modalities": outputs or ["text"],
                # No pricing object at all means unknown, not free; a missing key inside it means 0.
                "pricing": (
                    Pricing.model_validate(data["pricing"])
                    if isinstance(data.get("pricing"), dict)
                    else Pricing(prompt=-1, completion=-1)
                ),
                "supported_parameters": _str_list(data.get("supported_parameters")),
                "is_moderated": bool(top.get("is_moderated")),
                "knowledge_cutoff": str(data["knowledge_cutoff"]) if data.get("knowledge_cutoff") else None,
                "expiration_date": str(data["expiration_date"]) if data.get("expiration_date") else None,
                "raw": data,
            }
        )

    @property
    def provider(self) -> str:
        return self.id.split("/", 1)[0] if "/" in self.id else ""

    def misfit(self, prompt_tokens: int, max_tokens: int | None) -> str | None:
        """Why a prompt of about `prompt_tokens` (a likely count) plus `max_tokens` cannot fit this model's
        context, or None when it may (or the context is unknown)."""
        if not self.context_length or prompt_tokens + (max_tokens or 0) <= self.context_length:
            return None
        plus = f" plus max_tokens {max_tokens:,}" if max_tokens else ""
        return (
            f"The prompt is about {prompt_tokens:,} tokens{plus}, more than `{self.id}`'s context of "
            f"{self.context_length:,} tokens."
        )

    @cached_property
    def haystack(self) -> str:
        """Lower-cased id, name and description, for free-text search (computed once per model)."""
        return f"{self.id} {self.name} {self.description}".lower()

    @property
    def reasoning_efforts(self) -> list[str]:
        """The reasoning efforts the catalog says this model accepts (empty: not stated)."""
        return _str_list(as_dict(self.raw.get("reasoning")).get("supported_efforts"))

    @property
    def structured(self) -> bool:
        """Whether the model can be held to a JSON schema (`structured_outputs` or `response_format`)."""
        return "structured_outputs" in self.capabilities

    @cached_property
    def capabilities(self) -> list[str]:
        """What this model can do, as declared by the catalog (computed once per model)."""
        params = set(self.supported_parameters)
        found = []
        if "tools" in params:
            found.append("tools")
        if params & {"reasoning", "include_reasoning"} or isinstance(self.raw.get("reasoning"), dict):
            found.append("reasoning")
        if params & {"structured_outputs", "response_format"}:
            found.append("structured_outputs")
        if "web_search_options" in params or (self.pricing.web_search or 0) > 0:
            found.append("web_search")
        return found


class SearchQuery(BaseModel):
    """Filters, sort and paging for `search_models`. Prices are USD per million tokens."""

    model_config = ConfigDict(defer_build=True)

    query: str | None = None
    provider: str | None = None
    free_only: bool = False
    min_context: int | None = Field(default=None, ge=0)
    max_prompt_price: float | None = Field(default=None, ge=0)
    max_completion_price: float | None = Field(default=None, ge=0)
    input_modality: str | None = None
    output_modality: str | None = None
    supports: list[Capability] = Field(default_factory=list)
    sort: SortKey = "name"
    limit: int = Field(default=20, ge=1, le=200)
    offset: int = Field(default=0, ge=0)


class SearchPage(BaseModel):
    """One page of matches and the total count before paging."""

    model_config = ConfigDict(defer_build=True)  # built on first use, not at start-up

    total: int
    offset: int
    models: list[ModelInfo]


def _price_key(model: ModelInfo) -> float:
    p = model.pricing
    total = p.prompt + p.completion
    return math.inf if math.isnan(total) else total


def _within(price: float, cap_per_million: float | None) -> bool:
    return cap_per_million is None or (not math.isnan(price) and price * 1_000_000 <= cap_per_million + 1e-12)


def _filters(q: SearchQuery) -> list[Callable[[ModelInfo], bool]]:
    """One predicate per active filter, so an unfiltered listing does no per-model work."""
    checks: list[Callable[[ModelInfo], bool]] = []
    words = (q.query or "").lower().split()
    if len(words) == 1:
        word = words[0]
        checks.append(lambda m: word in m.haystack)
    elif words:
        checks.append(lambda m: all(w in m.haystack for w in words))
    provider = (q.provider or "").lower().strip()
    if provider:
        checks.append(lambda m: m.provider.lower() == provider)
    if q.free_only:
        checks.append(lambda m: m.pricing.is_free or m.id.endswith(":free"))
    if q.min_context is not None:
        least = q.min_context
        checks.append(lambda m: m.context_length >= least)
    if q.max_prompt_price is not None or q.max_completion_price is not None:
        checks.append(
            lambda m: (
                _within(m.pricing.prompt, q.max_prompt_price) and _within(m.pricing.completion, q.max_completion_price)
            )
        )
    if q.input_modality:
        wanted_in = q.input_modality.lower()
        checks.append(lambda m: wanted_in in m.input_modalities)
    if q.output_modality:
        wanted_out = q.output_modality.lower()
        checks.append(lambda m: wanted_out in m.output_modalities)
    if q.supports:
        needed = set(q.supports)
        checks.append(lambda m: needed.issubset(m.capabilities))
    return checks


_SORT_KEYS: dict[str, Callable[[ModelInfo], Any]] = {
    "price": lambda m: (_price_key(m), m.id),
    "context": lambda m: (-m.context_length, m.id),
    "newest": lambda m: (-m.created, m.id),
    "name": lambda m: (m.name.lower(), m.id),
}


def sort_models(models: Iterable[ModelInfo], sort: SortKey) -> list[ModelInfo]:
    """`models` in the order `sort` names (the catalog keeps one such list per key and snapshot)."""
    return sorted(models, key=_SORT_KEYS[sort])


def search_models(models: Iterable[ModelInfo], q: SearchQuery, *, presorted: bool = False) -> SearchPage:
    """Filter, sort and page `models` by `q`; with `presorted`, `models` is already in `q.sort` order."""
    checks = _filters(q)
    if not checks:
        hits = list(models)
    elif len(checks) == 1:
        hits = list(filter(checks[0], models))
    else:
        hits = [m for m in models if all(check(m) for check in checks)]
    if not presorted:
        hits.sort(key=_SORT_KEYS[q.sort])
    return SearchPage(total=len(hits), offset=q.offset, models=hits[q.offset : q.offset + q.limit])
