"""Checks every tool makes before it spends anything: model ids against the catalog, prompts against contexts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from ..errors import ContextLengthError, UpstreamUnavailableError
from ..openrouter.models import ModelInfo
from .state import AppState

__all__ = ["chat_messages", "check_context", "resolve_models"]

log = logging.getLogger(__name__)


async def resolve_models(
    state: AppState, model_ids: Sequence[str], deadline: float | None = None
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


def chat_messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def check_context(info: ModelInfo | None, chars: int, max_tokens: int | None) -> None:
    """Refuse, before paying, a prompt that clearly cannot fit the model (at a typical 4 characters a token)."""
    if info is None or not info.context_length:
        return
    prompt_tokens = chars // 4
    if prompt_tokens + (max_tokens or 0) > info.context_length:
        plus = f" plus max_tokens {max_tokens:,}" if max_tokens else ""
        raise ContextLengthError(
            f"The prompt is about {prompt_tokens:,} tokens{plus}, more than `{info.id}`'s context of "
            f"{info.context_length:,} tokens. Shorten it, lower max_tokens, or pick a longer-context model "
            "(list_models with sort='context').",
            model=info.id,
        )
