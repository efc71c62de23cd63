"""What the fake OpenRouter refuses before answering.

`request_rejection` looks at the request alone: malformed parameters are HTTP 400 whatever the model.
`model_rejection` looks at one candidate model of the request's fallback walk: a routing rule that none of its
endpoints meets (data policy, provider filters, max_price, input modalities, require_parameters) is a 404, a
parameter its provider refuses (context length, reasoning effort, a strict schema keyword) a 400. The fallback walk
skips a rejected candidate; when none is left, the requested model's rejection is the answer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .common import ACCOUNT_DEFAULT_MODEL, Rejection, as_dict, base_id, dicts, provider_name
from .parts import attachments, content_problem

if TYPE_CHECKING:
    from .openrouter import FakeOpenRouter

__all__ = ["EFFORTS", "MAX_FALLBACKS", "STRICT_UNSUPPORTED", "model_rejection", "request_rejection"]

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
MAX_FALLBACKS = 3  # the live API's cap on `models` (2026)
STRICT_UNSUPPORTED = (
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minLength",
    "maxLength",
)
_SORTS = ("price", "throughput", "latency")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_NOT_SCHEMAS = ("enum", "const", "default", "examples", "required")  # values here are data, not subschemas


def _money(value: Any) -> float | None:
    """A max_price value: a number or a decimal string; None when it is neither."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def request_rejection(body: dict[str, Any]) -> Rejection | None:
    """A 400 for parameters no model accepts, or None."""
    models = body.get("models")
    if models is not None and not _strings(models):
        return Rejection(400, "'models' must be an array of model IDs")
    if isinstance(models, list) and len(models) > MAX_FALLBACKS:
        return Rejection(400, "'models' array must have 3 items or fewer.")
    if (problem := content_problem(body)) is not None:
        return Rejection(400, problem)
    effort = as_dict(body.get("reasoning")).get("effort")
    if effort is not None and effort not in EFFORTS:
        return Rejection(400, f"reasoning.effort must be one of {', '.join(EFFORTS)}; got {effort!r}")
    provider = body.get("provider")
    if provider is not None and not isinstance(provider, dict):
        return Rejection(400, "provider must be an object")
    return _provider_problem(as_dict(provider))


def _provider_problem(provider: dict[str, Any]) -> Rejection | None:
    for key in ("order", "only", "ignore"):
        if key in provider and not _strings(provider[key]):
            return Rejection(400, f"provider.{key} must be an array of provider names")
    sort = provider.get("sort")
    if sort is not None and sort not in _SORTS and not isinstance(sort, dict):
        return Rejection(400, f"provider.sort must be one of {', '.join(_SORTS)}; got {sort!r}")
    if provider.get("data_collection") not in (None, "allow", "deny"):
        return Rejection(400, "provider.data_collection must be 'allow' or 'deny'")
    if "max_price" in provider and not isinstance(provider["max_price"], dict):
        return Rejection(400, "provider.max_price must be an object")
    for key, value in as_dict(provider.get("max_price")).items():
        if _money(value) is None:
            return Rejection(400, f"provider.max_price.{key} must be a number (USD per million tokens)")
    return None


def model_rejection(fake: FakeOpenRouter, body: dict[str, Any], candidate: str) -> Rejection | None:
    """Why `candidate` (as routed) cannot answer this request, or None when it can."""
    model = fake._routed(candidate)
    entry, provider = fake._entry(model) or {}, as_dict(body.get("provider"))
    needed, context = fake.context_needed(body), fake.context_length(candidate)
    if context and needed > context:
        return Rejection(
            400,
            f"This endpoint's maximum context length is {context} tokens. However, you requested about {needed} "
            "tokens. Please reduce the length of the messages or completion.",
        )
    private = provider.get("data_collection") == "deny" or provider.get("zdr") is True
    if private and not fake.data_collecting.isdisjoint({candidate, model, base_id(model)}):
        fallbacks = [m for m in (ACCOUNT_DEFAULT_MODEL,) if m != model and m not in fake.data_collecting]
        availability = {
            "code": "privacy_restricted",
            "retryable": False,
            "requested_models": [candidate],
            "fallback_models": fallbacks,
        }
        return Rejection(404, "No endpoints found matching your data policy", availability)
    if not _provider_allowed(provider_name(model), provider):
        return Rejection(404, "No allowed providers are available for the selected model.")
    if _over_max_price(entry, model, as_dict(provider.get("max_price"))):
        return Rejection(404, "No endpoints found that match your max_price")
    if (missing := _missing_modality(entry, body)) is not None:
        return Rejection(404, f"No endpoints found that support {missing} input")
    params = set(entry.get("supported_parameters") or [])
    honours_format = bool(params & {"structured_outputs", "response_format"})
    if provider.get("require_parameters") is True and body.get("response_format") and not honours_format:
        return Rejection(404, "No endpoints found that can handle the requested parameters.")
    effort = as_dict(body.get("reasoning")).get("effort")
    supported = as_dict(entry.get("reasoning")).get("supported_efforts")
    if effort is not None and isinstance(supported, list) and effort not in supported:
        return Rejection(400, f"Reasoning effort '{effort}' is not supported by {model}")
    response_format = as_dict(body.get("response_format"))
    spec = as_dict(response_format.get("json_schema"))
    if response_format.get("type") == "json_schema" and spec.get("strict") is True:
        if model.startswith(tuple(fake.strict_schema_rejecters)) and (key := _unsupported(spec.get("schema"))):
            return Rejection(400, f"Provider returned error: output_format.schema: '{key}' is not supported")
    return None


def _provider_allowed(name: str, provider: dict[str, Any]) -> bool:
    """`only`/`ignore` (and `order` without fallbacks) against the provider's name or slug, case-insensitively."""

    def names(key: str) -> set[str]:
        return {str(v).lower().replace(" ", "-") for v in provider.get(key) or []}

    ours = name.lower().replace(" ", "-")
    if "only" in provider and ours not in names("only"):
        return False
    if provider.get("allow_fallbacks") is False and provider.get("order") and ours not in names("order"):
        return False
    return ours not in names("ignore")


def _over_max_price(entry: dict[str, Any], model: str, limits: dict[str, Any]) -> bool:
    """Whether a base price exceeds `max_price`: prompt and completion in USD per million tokens, request and image
    per unit."""
    pricing = as_dict(entry.get("pricing"))
    for key, limit in limits.items():
        ceiling, price = _money(limit), 0.0 if model.endswith(":free") else _money(pricing.get(key, 0))
        if ceiling is None or price is None or price < 0:
            continue
        price *= 1_000_000 if key in ("prompt", "completion") else 1
        if price > ceiling * (1 + 1e-9) + 1e-12:  # 0.15 $/M must pass a 0.15 ceiling despite binary rounding
            return True
    return False


def _missing_modality(entry: dict[str, Any], body: dict[str, Any]) -> str | None:
    inputs = as_dict(entry.get("architecture")).get("input_modalities")
    if not isinstance(inputs, list):
        return None
    counts = attachments(body)
    parser = any(p.get("id") == "file-parser" for p in dicts(body.get("plugins")))
    if counts["image"] and "image" not in inputs:
        return "image"
    if counts["audio"] and "audio" not in inputs:
        return "audio"
    if (counts["pdf"] or counts["file"]) and "file" not in inputs and not parser:
        return "file"
    return None


def _unsupported(schema: Any) -> str | None:
    """The first keyword of STRICT_UNSUPPORTED used anywhere in `schema` (property names are not keywords)."""
    if isinstance(schema, list):
        return next((found for item in schema if (found := _unsupported(item))), None)
    if not isinstance(schema, dict):
        return None
    for key, value in schema.items():
        if key in STRICT_UNSUPPORTED:
            return str(key)
        if key in _NOT_SCHEMAS:
            continue
        children = list(value.values()) if key in _SCHEMA_MAPS and isinstance(value, dict) else [value]
        if found := _unsupported(children):
            return found
    return None
