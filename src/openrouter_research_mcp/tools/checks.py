"""Checks every tool makes before it spends anything: model ids against the catalog, prompts against contexts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ContextLengthError, ModelNotFoundError, RequestError, UpstreamUnavailableError
from ..openrouter.models import ModelInfo
from ..openrouter.request import chat_messages
from ..openrouter.tokens import messages_estimate
from .attachments import Attachments, alternatives, unsupported_by
from .state import CallState

__all__ = [
    "chat_messages",
    "check_context",
    "check_effort",
    "require_inputs",
    "require_structured",
    "resolve_chain",
    "resolve_models",
]

log = logging.getLogger(__name__)


async def resolve_models(
    state: CallState, model_ids: Sequence[str], deadline: float | None = None
) -> dict[str, ModelInfo | None]:
    """Check every id against the catalog before anything is spent; unknown ids raise with close matches.

    When the catalog cannot be loaded (or not before `deadline`), ids map to None and the caller decides: `ask`
    goes ahead unchecked, since an outage of `/models` should not block answers.
    """
    try:
        async with asyncio.timeout(None if deadline is None else max(deadline - time.monotonic(), 0)):
            snap = await state.catalog.get()  # the fetch itself is shielded and carries on for the next call
    except (UpstreamUnavailableError, TimeoutError) as exc:
        log.warning("model ids not checked: %s", getattr(exc, "message", "the catalog took too long"))
        return dict.fromkeys(model_ids)
    return {model_id: state.catalog.resolve(snap, model_id) for model_id in model_ids}


async def resolve_chain(
    state: CallState, primary: str, fallbacks: Sequence[str], deadline: float | None = None
) -> tuple[dict[str, ModelInfo | None], list[str], list[str]]:
    """Check a fallback chain: an unknown primary raises (with suggestions); an unknown fallback is dropped with a
    warning, since one delisted id in OPENROUTER_FALLBACK_MODELS must not fail every call. Returns the known
    models' metadata (None when the catalog is unavailable), the fallbacks kept, and the warnings."""
    infos = await resolve_models(state, [primary], deadline)
    snap = state.catalog.loaded
    kept: list[str] = []
    warnings: list[str] = []
    for model_id in dict.fromkeys(m.strip() for m in fallbacks if m.strip() and m.strip() != primary):
        if snap is None or infos[primary] is None:
            infos[model_id] = None
            kept.append(model_id)
            continue
        try:
            infos[model_id] = state.catalog.resolve(snap, model_id)
        except ModelNotFoundError as exc:
            hint = f" (did you mean {', '.join(f'`{s}`' for s in exc.suggestions)}?)" if exc.suggestions else ""
            warnings.append(f"Fallback model `{model_id}` is not in the OpenRouter catalog and was skipped{hint}.")
            continue
        kept.append(model_id)
    return infos, kept, warnings


def check_effort(info: ModelInfo | None, effort: str | None) -> None:
    """Refuse a reasoning effort the model does not accept, before anything is sent."""
    if effort is None or info is None:
        return
    if "reasoning" not in info.capabilities:
        raise RequestError(
            f"`{info.id}` is not a reasoning model, so reasoning_effort does not apply. Drop it, or "
            'pick a model with list_models supports=["reasoning"].',
            model=info.id,
        )
    efforts = info.reasoning_efforts
    if efforts and effort not in efforts:
        raise RequestError(f"`{info.id}` accepts reasoning_effort {', '.join(efforts)}; not {effort!r}.", model=info.id)


def require_structured(state: CallState, info: ModelInfo | None, role: str) -> None:
    """Refuse, before anything is spent, a model that cannot be held to a JSON schema for `role` (a planner, a
    judge), naming models near its price that can."""
    if info is None or info.structured:
        return
    snap = state.catalog.loaded
    able = [m for m in (snap.models.values() if snap else []) if m.structured and m.pricing.known]
    price = info.pricing.prompt + info.pricing.completion if info.pricing.known else 0.0
    near = sorted(able, key=lambda m: abs(m.pricing.prompt + m.pricing.completion - price))[:3]
    names = ", ".join(f"`{m.id}`" for m in near) or "none in the catalog just now"
    raise RequestError(
        f"`{info.id}` cannot return structured output (JSON held to a schema), which the {role} "
        f"needs. Models that can, at a similar price: {names}.",
        model=info.id,
    )


def require_inputs(state: CallState, info: ModelInfo | None, files: Attachments) -> None:
    """Refuse, before anything is sent, attachments the model cannot take, naming models that can."""
    missing = unsupported_by(info, files, state.settings.pdf_engine)
    if info is None or not missing:
        return
    snap = state.catalog.loaded
    able = alternatives(snap.models.values() if snap else [], info, missing)
    names = ", ".join(f"`{m}`" for m in able) or "none in the catalog just now"
    raise RequestError(
        f"`{info.id}` cannot take {' or '.join(missing)} input ({'+'.join(info.input_modalities)} "
        f"only). Models that can, at a similar price: {names}.",
        model=info.id,
    )


def check_context(
    info: ModelInfo | None, messages: Sequence[Mapping[str, Any]], max_tokens: int | None, extra_tokens: int = 0
) -> None:
    """Refuse, before paying, a prompt that clearly cannot fit the model (its likely token count, see `tokens.py`,
    plus `extra_tokens` for attachments)."""
    why = info.misfit(messages_estimate(messages) + extra_tokens, max_tokens) if info else None
    if info is not None and why:
        raise ContextLengthError(
            f"{why} Shorten it, lower max_tokens, or pick a longer-context model (list_models with sort='context').",
            model=info.id,
        )
