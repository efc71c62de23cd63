"""Model catalogs in both of OpenRouter's shapes, for the unit tests and the fake server.

2025: `{"data": [...]}` with every pricing key present (zeros as "0").
2026: `{"data": [...], "total_count": N, "links": {...}}`, zero prices omitted, extra fields, and pricing tiers
(`google/gemini-2.5-pro` dearer from 200,000 prompt tokens) and a discount (`deepseek/deepseek-r1`, 25%).
"""

from __future__ import annotations

import copy
from typing import Any

# (id, name, created, context, prompt $/token, completion $/token, inputs, outputs, supported_parameters, extra)
_MODELS: list[tuple[str, str, int, int, str, str, list[str], list[str], list[str], dict[str, Any]]] = [
    (
        "openai/gpt-4o-mini",
        "OpenAI: GPT-4o-mini",
        1721260800,
        128000,
        "0.00000015",
        "0.0000006",
        ["text", "image", "file"],
        ["text"],
        [
            "tools",
            "tool_choice",
            "response_format",
            "structured_outputs",
            "web_search_options",
            "temperature",
            "max_tokens",
        ],
        {},
    ),
    (
        "openai/gpt-4o",
        "OpenAI: GPT-4o",
        1715558400,
        128000,
        "0.0000025",
        "0.00001",
        ["text", "image"],
        ["text"],
        ["tools", "response_format", "structured_outputs", "temperature"],
        {},
    ),
    (
        "anthropic/claude-3.5-sonnet",
        "Anthropic: Claude 3.5 Sonnet",
        1718841600,
        200000,
        "0.000003",
        "0.000015",
        ["text", "image"],
        ["text"],
        ["tools", "temperature", "max_tokens"],
        {},
    ),
    (
        "google/gemini-2.5-flash",
        "Google: Gemini 2.5 Flash",
        1750032000,
        1048576,
        "0.0000003",
        "0.0000025",
        ["text", "image", "audio"],
        ["text"],
        ["tools", "reasoning", "include_reasoning", "structured_outputs"],
        {"internal_reasoning": "0.0000025"},
    ),
    (
        "deepseek/deepseek-r1",
        "DeepSeek: R1",
        1737331200,
        163840,
        "0.0000004",
        "0.000002",
        ["text"],
        ["text"],
        ["reasoning", "include_reasoning", "temperature"],
        {},
    ),
    (
        "meta-llama/llama-3.3-70b-instruct:free",
        "Meta: Llama 3.3 70B Instruct (free)",
        1733443200,
        65536,
        "0",
        "0",
        ["text"],
        ["text"],
        ["temperature", "max_tokens"],
        {},
    ),
    (
        "meta-llama/llama-3.3-70b-instruct",
        "Meta: Llama 3.3 70B Instruct",
        1733443200,
        131072,
        "0.00000012",
        "0.0000003",
        ["text"],
        ["text"],
        ["tools", "temperature"],
        {},
    ),
    (
        "perplexity/sonar",
        "Perplexity: Sonar",
        1738195200,
        127072,
        "0.000001",
        "0.000001",
        ["text"],
        ["text"],
        ["temperature", "web_search_options"],
        {"request": "0.005", "web_search": "0.005"},
    ),
    (
        "openai/gpt-image-1",
        "OpenAI: GPT Image 1",
        1745971200,
        32000,
        "0.000005",
        "0.00004",
        ["text", "image"],
        ["image", "text"],
        ["temperature"],
        {"image": "0.04"},
    ),
    (
        "google/gemini-2.5-pro",
        "Google: Gemini 2.5 Pro",
        1750169544,
        1048576,
        "0.00000125",
        "0.00001",
        ["text", "image", "file", "audio"],
        ["text"],
        [
            "tools",
            "tool_choice",
            "reasoning",
            "include_reasoning",
            "structured_outputs",
            "response_format",
            "temperature",
            "max_tokens",
        ],
        {"input_cache_read": "0.00000031"},
    ),
    (
        "anthropic/claude-sonnet-4",
        "Anthropic: Claude Sonnet 4",
        1747930371,
        200000,
        "0.000003",
        "0.000015",
        ["text", "image", "file"],
        ["text"],
        [
            "tools",
            "tool_choice",
            "reasoning",
            "include_reasoning",
            "structured_outputs",
            "response_format",
            "temperature",
            "max_tokens",
        ],
        {"input_cache_read": "0.0000003", "input_cache_write": "0.00000375"},
    ),
    (
        "openrouter/auto",
        "Auto Router",
        1699401600,
        2000000,
        "-1",
        "-1",
        ["text", "image"],
        ["text"],
        ["tools", "reasoning", "structured_outputs"],
        {},
    ),
]

# Pricing fields only the 2026 shape has: long-prompt tiers and discounts.
_PRICING_2026: dict[str, dict[str, Any]] = {
    "google/gemini-2.5-pro": {
        "overrides": [{"min_prompt_tokens": 200000, "prompt": "0.0000025", "completion": "0.000015"}]
    },
    "deepseek/deepseek-r1": {"discount": 0.25},
}
# 2026 `reasoning` blocks that differ from the default (low/medium/high, optional).
_REASONING: dict[str, dict[str, Any]] = {
    "google/gemini-2.5-pro": {
        "supported_efforts": ["low", "medium", "high"],
        "default_effort": "medium",
        "mandatory": True,
    },
}

PRICING_KEYS_2025 = (
    "prompt",
    "completion",
    "request",
    "image",
    "web_search",
    "internal_reasoning",
    "input_cache_read",
    "input_cache_write",
)


def _entry(row: tuple[Any, ...], shape: int) -> dict[str, Any]:
    model_id, name, created, context, prompt, completion, inputs, outputs, params, extra = row
    prices = {"prompt": prompt, "completion": completion, **extra}
    if shape == 2025:
        pricing = {key: prices.get(key, "0") for key in PRICING_KEYS_2025}
    else:
        pricing = {key: value for key, value in prices.items() if value not in ("0", 0)}
        pricing.update(_PRICING_2026.get(model_id, {}))
    entry: dict[str, Any] = {
        "id": model_id,
        "canonical_slug": f"{model_id.split(':')[0]}-20250101",
        "hugging_face_id": None,
        "name": name,
        "created": created,
        "description": f"{name} is a model for tests. It can answer questions about {model_id.split('/')[0]}.",
        "context_length": context,
        "architecture": {
            "modality": "+".join(inputs) + "->" + "+".join(outputs),
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": pricing,
        "top_provider": {
            "context_length": context,
            "max_completion_tokens": 16384,
            "is_moderated": "openai" in name.lower(),
        },
        "per_request_limits": None,
        "supported_parameters": params,
    }
    if shape == 2026:
        entry.update(
            {
                "default_parameters": {"temperature": None},
                "expiration_date": None,
                "knowledge_cutoff": "2024-10-01",
                "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
                "some_future_field": {"nested": [1, 2, 3]},
            }
        )
        if "reasoning" in params:
            entry["reasoning"] = _REASONING.get(
                model_id,
                {"supported_efforts": ["low", "medium", "high"], "default_effort": "medium", "mandatory": False},
            )
    return entry


def catalog(shape: int = 2026) -> dict[str, Any]:
    """A fresh catalog body in the given shape (2025 or 2026)."""
    data = [_entry(row, shape) for row in _MODELS]
    if shape == 2025:
        return {"data": data}
    return {"data": data, "total_count": len(data), "links": {"next": None}}


def model_ids() -> list[str]:
    return [row[0] for row in _MODELS]


def with_extra_models(body: dict[str, Any], count: int) -> dict[str, Any]:
    """A copy of `body` padded with `count` synthetic models, for size-realistic catalogs."""
    body = copy.deepcopy(body)
    template = body["data"][0]
    for i in range(count):
        entry = copy.deepcopy(template)
        entry["id"] = f"synthetic/model-{i:04d}"
        entry["name"] = f"Synthetic: Model {i}"
        body["data"].append(entry)
    if "total_count" in body:
        body["total_count"] = len(body["data"])
    return body
