"""`ask`: one model's answer, with fallbacks, sources, usage and cost."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from .._constants import DEFAULT_ANSWER_TOKENS, PROGRESS_INTERVAL
from .._util import Progress, is_web_url, no_progress
from ..errors import RequestError
from ..openrouter.completion import ChatResult, Source
from ..openrouter.models import ModelInfo
from ..openrouter.request import ProviderPrefs, WebPlan, provider_body, split_domains, web_params
from .attachments import Attachments, load_attachments, unsupported_by
from .checks import chat_messages, check_context, check_effort, require_inputs, resolve_chain
from .results import AskResult
from .state import AppState

__all__ = ["ask"]


MAX_SOURCES = 20  # sources listed per answer; the rest are counted
ASK_SEARCHES = 3  # searches one `ask` may run
SNIPPET_CHARS = 300


def _sources(result: ChatResult) -> list[Source]:
    return [s.model_copy(update={"snippet": s.snippet[:SNIPPET_CHARS]}) for s in result.citations[:MAX_SOURCES]]


def _warnings(result: ChatResult) -> list[str]:
    notes = list(result.warnings)
    if result.finish_reason == "length":
        notes.append("The answer was cut off at max_tokens; raise max_tokens for the rest.")
    if not result.text.strip() and not result.refusal:
        notes.append(
            "The model returned no text"
            + (" (its reasoning used the token allowance)" if result.usage.reasoning_tokens else "")
            + "."
        )
    if result.usage.cost_usd is None:
        notes.append("OpenRouter reported no cost and the catalog has no price for this model.")
    if len(result.citations) > MAX_SOURCES:
        notes.append(f"{len(result.citations) - MAX_SOURCES} more sources were cited than are listed here.")
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


def _web_plan(state: AppState, web_search: bool, urls: Sequence[str], domains: Sequence[str] | None) -> WebPlan:
    bad = [url for url in urls if not is_web_url(url)]
    if bad:
        raise RequestError(f"urls must be http(s) addresses; not {', '.join(repr(u[:80]) for u in bad)}.")
    allowed, excluded = split_domains(domains)
    force: Literal["search", "fetch", "any"] | None = None
    if web_search or urls:
        force = "any" if web_search and urls else "search" if web_search else "fetch"
    return WebPlan(
        searches=ASK_SEARCHES if web_search else 0,
        fetches=len(urls),
        search_engine=state.settings.web_engine,
        fetch_engine=state.settings.fetch_engine,
        allowed_domains=allowed,
        excluded_domains=excluded,
        force=force,
    )


def _with_urls(prompt: str, urls: Sequence[str]) -> str:
    if not urls:
        return prompt
    pages = "\n".join(f"- {url}" for url in urls)
    return f"{prompt}\n\nRead these pages and answer from what they say, citing them:\n{pages}"


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
    urls: Sequence[str] = (),
    domains: Sequence[str] | None = None,
    provider: ProviderPrefs | None = None,
    attachments: Sequence[str] | None = None,
    progress: Progress = no_progress,
) -> AskResult:
    """Ask one model (with fallbacks) and return its answer, sources, usage and cost."""
    if not prompt.strip():
        raise RequestError("The prompt is empty. Pass the question to ask in `prompt`.")
    deadline = time.monotonic() + state.settings.timeout
    files = await load_attachments(attachments, state.settings)
    primary = model or state.settings.default_model
    plan = _web_plan(state, web_search, urls, domains)
    text = _with_urls(prompt, urls)
    fallbacks = state.settings.fallback_models if fallback_models is None else fallback_models
    # The catalog check may use at most a fifth of the call's time; the answer gets the rest.
    infos, kept, warnings = await resolve_chain(
        state, primary, fallbacks, time.monotonic() + state.settings.timeout / 5
    )
    info = infos[primary]
    check_context(info, len(text) + len(system or ""), max_tokens, files.prompt_tokens())
    check_effort(info, reasoning_effort)
    require_inputs(state, info, files)
    kept, skipped = _able(kept, infos, files, state.settings.pdf_engine)
    warnings += skipped
    # The server-tool loop may spend at most what the whole call could cost at worst.
    stop_at = None
    if plan.active and info is not None:
        stop_at = plan.worst_case(
            info.pricing,
            len(text) + len(system or ""),
            max_tokens or info.max_completion_tokens or DEFAULT_ANSWER_TOKENS,
            extra_prompt_tokens=files.prompt_tokens(),
            images=files.count("image"),
            fees=files.fees(state.settings.pdf_engine),
        )
    extra: dict[str, Any] = {
        "temperature": temperature,
        "max_tokens": max_tokens,
        "provider": provider_body(state.settings, provider),
        **web_params(plan, state.settings.web_search, stop_at),
    }
    plugins = [*extra.get("plugins", []), *files.plugins(state.settings.pdf_engine)]
    if plugins:
        extra["plugins"] = plugins
    if reasoning_effort:
        extra["reasoning"] = {"effort": reasoning_effort}
    await progress(0, 2, f"asking {primary}")
    result = await state.client.chat(
        chat_messages(files.content(text), system),
        model=primary,
        fallback_models=kept,
        stream=True,
        deadline=deadline,
        on_text=_streamed_progress(progress, primary),
        **extra,
    )
    await progress(2, 2, f"answered by {result.model}")
    fell_back = len(result.attempts) > 1 or any(a.answered_by for a in result.attempts)
    return AskResult(
        answer=result.text,
        refusal=result.refusal,
        model=result.model,
        model_requested=primary,
        usage=result.usage,
        latency_s=result.latency_s,
        generation_id=result.generation_id,
        finish_reason=result.finish_reason,
        sources=_sources(result),
        more_sources=max(len(result.citations) - MAX_SOURCES, 0),
        attempts=result.attempts if fell_back else [],
        warnings=warnings + files.notes() + _warnings(result),
    )


def _able(
    fallbacks: Sequence[str], infos: Mapping[str, ModelInfo | None], files: Attachments, pdf_engine: str
) -> tuple[list[str], list[str]]:
    """The fallbacks that can take the attachments, and a warning for each that cannot (it is skipped)."""
    kept, skipped = [], []
    for model_id in fallbacks:
        missing = unsupported_by(infos.get(model_id), files, pdf_engine)
        if missing:
            skipped.append(f"Fallback model `{model_id}` cannot take {' or '.join(missing)} input and was skipped.")
        else:
            kept.append(model_id)
    return kept, skipped
