"""Parts of a chat request body that carry policy: web search and page reading as server tools (or the older
plugins), provider routing and privacy preferences, and structured output that every provider accepts.

Each function returns keyword arguments for `OpenRouterClient.chat`, so callers compose them with `|`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import ProviderSort, Settings
from .pricing import Pricing, worst_case_cost

__all__ = [
    "NON_PORTABLE_KEYWORDS",
    "chat_messages",
    "ProviderPrefs",
    "WebPlan",
    "configured_provider",
    "non_portable_keywords",
    "provider_body",
    "split_domains",
    "structured_params",
    "web_params",
]

WebMode = Literal["server_tool", "plugin"]
# JSON-schema keywords some providers reject in strict mode (Anthropic answers 400): counts and ranges are enforced in
# code after parsing instead.
NON_PORTABLE_KEYWORDS = frozenset(
    {
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "pattern",
        "minLength",
        "maxLength",
        "format",
    }
)


class ProviderPrefs(BaseModel):
    """Where prompts may go: OpenRouter's provider routing and privacy preferences."""

    model_config = ConfigDict(extra="forbid")

    sort: ProviderSort | None = Field(default=None, description="route by this first")
    only: list[str] | None = Field(default=None, description="provider slugs to allow")
    ignore: list[str] | None = Field(default=None, description="provider slugs to skip")
    data_collection: Literal["allow", "deny"] | None = Field(default=None, description="deny: no training on prompts")
    zdr: bool | None = Field(default=None, description="zero data retention only")
    max_price: float | None = Field(default=None, ge=0, description="USD per million tokens")


def configured_provider(settings: Settings) -> ProviderPrefs | None:
    """The provider routing and privacy preferences set in the configuration (None when nothing is set)."""
    prefs = ProviderPrefs(
        sort=settings.provider_sort,
        data_collection=settings.data_collection,
        zdr=settings.zdr or None,
        only=list(settings.provider_only) or None,
        ignore=list(settings.provider_ignore) or None,
    )
    return prefs if prefs.model_dump(exclude_none=True) else None


def _max_price(value: float | Mapping[str, float] | None) -> dict[str, str] | None:
    """OpenRouter's `max_price` object; prices go as decimal strings, as in its API schema."""
    if value is None:
        return None
    prices = {"prompt": value, "completion": value} if isinstance(value, int | float) else dict(value)
    return {kind: f"{price:g}" for kind, price in prices.items()}


def provider_body(settings: Settings, override: ProviderPrefs | None = None) -> dict[str, Any] | None:
    """The request's `provider` object: the call's `override` over the configured preferences; None when empty."""
    merged: dict[str, Any] = {}
    for prefs in (configured_provider(settings), override):
        if prefs is not None:
            merged.update(prefs.model_dump(exclude_none=True))
    body: dict[str, Any] = {key: value for key, value in merged.items() if key != "max_price"}
    price = _max_price(merged.get("max_price", settings.max_price or None))
    if price:
        body["max_price"] = price
    return body or None


def split_domains(domains: Sequence[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`["arxiv.org", "-reddit.com"]` -> allowed `("arxiv.org",)`, excluded `("reddit.com",)`."""
    allowed, excluded = [], []
    for raw in domains or ():
        domain = raw.strip().lower()
        if domain.startswith("-"):
            excluded.append(domain[1:].strip())
        elif domain:
            allowed.append(domain)
    return tuple(d for d in allowed if d), tuple(d for d in excluded if d)


@dataclass(frozen=True)
class WebPlan:
    """What one call may do on the web: up to `searches` searches and `fetches` page reads."""

    searches: int = 0
    fetches: int = 0
    max_results: int = 5
    search_engine: str = "auto"
    fetch_engine: str = "auto"
    max_content_tokens: int = 3000
    allowed_domains: tuple[str, ...] = ()
    excluded_domains: tuple[str, ...] = ()
    force: Literal["search", "fetch", "any"] | None = None

    @property
    def active(self) -> bool:
        return self.searches > 0 or self.fetches > 0

    def extra_prompt_tokens(self) -> int:
        """A pessimistic count of the web text a server-tool loop adds to the model's input: every result and page,
        read again at each later step of the loop."""
        per_step = self.max_results * 250 * min(self.searches, 1) + self.max_content_tokens * min(self.fetches, 1)
        steps = self.searches + self.fetches
        return per_step * steps * (steps + 1) // 2

    def worst_case(
        self,
        pricing: Pricing,
        prompt_tokens: int,
        max_tokens: int,
        *,
        extra_prompt_tokens: int = 0,
        images: int = 0,
        fees: float = 0.0,
    ) -> float | None:
        """The most a call following this plan can cost (`worst_case_cost`): its searches and page reads, and the
        web text they add to the prompt."""
        return worst_case_cost(
            pricing,
            prompt_tokens,
            max_tokens,
            web_searches=self.searches,
            search_engine=self.search_engine,
            web_fetches=self.fetches,
            fetch_engine=self.fetch_engine,
            extra_prompt_tokens=self.extra_prompt_tokens() + extra_prompt_tokens,
            images=images,
            fees=fees,
        )


def web_params(plan: WebPlan, mode: WebMode, max_cost_usd: float | None = None) -> dict[str, Any]:
    """Request fields for `plan`: the `openrouter:web_search` / `openrouter:web_fetch` server tools with their
    parameters, a `tool_choice` that makes a call meant to search (or read) actually do it, and a cost stop for the
    server-tool loop; or, with `mode="plugin"`, the older `web` / `web-fetch` plugins."""
    if not plan.active:
        return {}
    if mode == "plugin":
        plugins: list[dict[str, Any]] = []
        if plan.searches:
            web: dict[str, Any] = {"id": "web", "max_results": plan.max_results, "engine": plan.search_engine}
            if plan.allowed_domains:
                web["include_domains"] = list(plan.allowed_domains)
            if plan.excluded_domains:
                web["exclude_domains"] = list(plan.excluded_domains)
            plugins.append(web)
        if plan.fetches:
            plugins.append({"id": "web-fetch"})
        return {"plugins": plugins}
    tools: list[dict[str, Any]] = []
    if plan.searches:
        search: dict[str, Any] = {
            "engine": plan.search_engine,
            "max_results": plan.max_results,
            "max_uses": plan.searches,
        }
        if plan.allowed_domains:
            search["allowed_domains"] = list(plan.allowed_domains)
        if plan.excluded_domains:
            search["excluded_domains"] = list(plan.excluded_domains)
        tools.append({"type": "openrouter:web_search", "parameters": search})
    if plan.fetches:
        fetch: dict[str, Any] = {
            "engine": plan.fetch_engine,
            "max_uses": plan.fetches,
            "max_content_tokens": plan.max_content_tokens,
        }
        if plan.allowed_domains:
            fetch["allowed_domains"] = list(plan.allowed_domains)
        if plan.excluded_domains:
            fetch["blocked_domains"] = list(plan.excluded_domains)
        tools.append({"type": "openrouter:web_fetch", "parameters": fetch})
    params: dict[str, Any] = {"tools": tools}
    if plan.force == "search" and plan.searches:
        params["tool_choice"] = {"type": "openrouter:web_search"}
    elif plan.force == "fetch" and plan.fetches:
        params["tool_choice"] = {"type": "openrouter:web_fetch"}
    elif plan.force == "any":
        params["tool_choice"] = "required"
    if max_cost_usd is not None and max_cost_usd > 0:
        params["stop_server_tools_when"] = [{"type": "max_cost", "max_cost_in_dollars": round(max_cost_usd, 6)}]
    return params


def non_portable_keywords(schema: Any) -> set[str]:
    """The keywords in `schema` that some providers reject in strict mode (property names are not keywords)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in NON_PORTABLE_KEYWORDS:
                found.add(key)
            if key == "properties" and isinstance(value, dict):
                for sub in value.values():
                    found |= non_portable_keywords(sub)
            else:
                found |= non_portable_keywords(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= non_portable_keywords(item)
    return found


def structured_params(name: str, schema: dict[str, Any], provider: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fields for a call that must answer with JSON matching `schema`: strict `json_schema`, routed only to endpoints
    that honour it (`require_parameters`), and repaired upstream by the `response-healing` plugin (which works only
    on non-streamed calls, so send these with `stream=False`). `schema` must keep to the portable core."""
    bad = non_portable_keywords(schema)
    if bad:
        raise ValueError(f"schema {name!r} uses keywords some providers reject: {sorted(bad)}")
    return {
        "response_format": {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}},
        "provider": {**(provider or {}), "require_parameters": True},
        "plugins": [{"id": "response-healing"}],
    }


def chat_messages(prompt: str | list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """A system message (when given) and the user's message (text, or text and attachment parts)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]
