"""`ask`: one model's answer, with fallbacks, sources, usage and cost."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._constants import PROGRESS_INTERVAL
from .._util import Progress, no_progress
from ..errors import RequestError
from ..openrouter.completion import ChatResult, Source
from .checks import chat_messages, check_context, resolve_models
from .results import AskResult
from .state import AppState

__all__ = ["ask"]


def _sources(result: ChatResult) -> list[Source]:
    return [source.model_copy(update={"snippet": source.snippet[:300]}) for source in result.citations]


def _warnings(result: ChatResult) -> list[str]:
    notes = []
    if result.finish_reason == "length":
        notes.append("The answer was cut off at max_tokens; raise max_tokens for the rest.")
    if not result.text.strip():
        notes.append(
            "The model returned no text"
            + (" (its reasoning used the token allowance)" if result.usage.reasoning_tokens else "")
            + "."
        )
    if result.usage.cost_usd is None:
        notes.append("OpenRouter reported no cost and the catalog has no price for this model.")
    return notes


def _streamed_progress(progress: Progress, model: str) -> Callable[[str], Awaitable[None]]:
    received = 0
    last = 0.0

    async def on_text(piece: str) -> None:
        nonlocal received, last
        received += len(piece)
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL:
            last = now
            await progress(1, 2, f"receiving the answer from {model}: {received:,} characters")

    return on_text


async def ask(
    state: AppState,
    prompt: str,
    *,
    model: str | None = None,
    system: str | None = None,
    fallback_models: Sequence[str] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    reasoning_effort: str | None = None,
    web_search: bool = False,
    progress: Progress = no_progress,
) -> AskResult:
    """Ask one model (with fallbacks) and return its answer, sources, usage and cost."""
    if not prompt.strip():
        raise RequestError("The prompt is empty. Pass the question to ask in `prompt`.")
    deadline = time.monotonic() + state.settings.timeout
    primary = model or state.settings.default_model
    fallbacks = list(state.settings.fallback_models if fallback_models is None else fallback_models)
    # The catalog check may use at most a fifth of the call's time; the answer gets the rest.
    infos = await resolve_models(state, [primary, *fallbacks], time.monotonic() + state.settings.timeout / 5)
    check_context(infos[primary], len(prompt) + len(system or ""), max_tokens)
    extra: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
    if reasoning_effort:
        extra["reasoning"] = {"effort": reasoning_effort}
    if web_search:
        extra["plugins"] = [{"id": "web", "max_results": 5}]
    await progress(0, 2, f"asking {primary}")
    result = await state.client.chat(
        chat_messages(prompt, system),
        model=primary,
        fallback_models=fallbacks,
        stream=True,
        deadline=deadline,
        on_text=_streamed_progress(progress, primary),
        **extra,
    )
    await progress(2, 2, f"answered by {result.model}")
    fell_back = len(result.attempts) > 1 or any(a.answered_by for a in result.attempts)
    return AskResult(
        answer=result.text,
        model=result.model,
        model_requested=primary,
        usage=result.usage,
        latency_s=result.latency_s,
        generation_id=result.generation_id,
        finish_reason=result.finish_reason,
        sources=_sources(result),
        attempts=result.attempts if fell_back else [],
        warnings=_warnings(result),
    )
