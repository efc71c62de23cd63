"""`ask`: one model's answer, with fallbacks, sources, usage and cost."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .._constants import DEFAULT_ANSWER_TOKENS, PROGRESS_INTERVAL
from .._util import Progress, is_web_url, no_progress
from ..errors import RequestError
from ..openrouter.completion import ChatResult, Source
from ..openrouter.models import ModelInfo, ReasoningEffort
from ..openrouter.request import ProviderPrefs, WebPlan, provider_body, split_domains, web_params
from ..openrouter.tokens import messages_bound
from .attachments import Attachments, load_attachments, unsupported_by
from .checks import chat_messages, check_context, check_effort, require_inputs, resolve_chain
from .results import AskResult
from .state import CallState

__all__ = ["AskInput", "Files", "Prompt", "ProviderArg", "SystemArg", "TemperatureArg", "ask"]

Prompt = Annotated[str, Field(min_length=1, description="the question or task")]
SystemArg = Annotated[str | None, Field(description="optional system prompt")]
TemperatureArg = Annotated[float | None, Field(ge=0, le=2, description="sampling temperature")]
ProviderArg = Annotated[ProviderPrefs | None, Field(description="routing and privacy")]
Files = Annotated[
    list[str] | None, Field(max_length=10, description="paths, http(s) or data: URIs: images, PDFs, wav/mp3")
]


class AskInput(BaseModel):
    """What `ask` takes (the tool's schema is made from it)."""

    prompt: Prompt
    model: str | None = Field(default=None, description="default OPENROUTER_DEFAULT_MODEL")
    system: SystemArg = None
    fallback_models: list[str] | None = Field(default=None, max_length=8, description="tried in order if it fails")
    temperature: TemperatureArg = None
    max_tokens: int | None = Field(default=None, ge=1, le=200_000, description="cap on answer tokens")
    reasoning_effort: ReasoningEffort | None = Field(default=None, description="thinking effort for reasoning models")
    web_search: bool = Field(default=False, description="search the web and cite sources (about $0.007 a search)")
    urls: list[str] | None = Field(default=None, max_length=5, description="pages the model reads and answers from")
    domains: list[str] | None = Field(
        default=None, max_length=10, description='search only these; prefix - to exclude: ["-x.com"]'
    )
    provider: ProviderArg = None
    attachments: Files = None


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


def _web_plan(state: CallState, web_search: bool, urls: Sequence[str], domains: Sequence[str] | None) -> WebPlan:
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


async def ask(state: CallState, args: AskInput, progress: Progress = no_progress) -> AskResult:
    """Ask one model (with fallbacks) and return its answer, sources, usage and cost."""
    prompt, model, system, max_tokens = args.prompt, args.model, args.system, args.max_tokens
    urls, reasoning_effort = args.urls or [], args.reasoning_effort
    if not prompt.strip():
        raise RequestError("The prompt is empty. Pass the question to ask in `prompt`.")
    deadline = time.monotonic() + state.settings.timeout
    await state.attachments_payable(args.attachments)
    files = await load_attachments(args.attachments, state.settings)
    primary = model or state.settings.default_model
    plan = _web_plan(state, args.web_search, urls, args.domains)
    text = _with_urls(prompt, urls)
    fallbacks = state.settings.fallback_models if args.fallback_models is None else args.fallback_models
    # The catalog check may use at most a fifth of the call's time; the answer gets the rest.
    infos, kept, warnings = await resolve_chain(
        state, primary, fallbacks, time.monotonic() + state.settings.timeout / 5
    )
    info = infos[primary]
    sent = chat_messages(text, system)
    check_context(info, sent, max_tokens, files.prompt_tokens())
    check_effort(info, reasoning_effort)
    require_inputs(state, info, files)
    kept, skipped = _able(kept, infos, files, state.settings.pdf_engine)
    warnings += skipped
    bound = max_tokens or (info.max_completion_tokens if info else None) or DEFAULT_ANSWER_TOKENS
    prompt_tokens = messages_bound(sent)

    def worst(model: str) -> float | None:
        """What one attempt on `model` can cost at worst, with `bound` answer tokens."""
        found = infos.get(model)
        if found is None:
            return None
        return plan.worst_case(
            found.pricing,
            prompt_tokens,
            bound,
            extra_prompt_tokens=files.prompt_tokens(),
            images=files.count("image"),
            fees=files.fees(state.settings.pdf_engine),
        )

    # The server-tool loop may spend at most what the whole call could cost at worst.
    stop_at = worst(primary) if plan.active else None
    extra: dict[str, Any] = {
        "temperature": args.temperature,
        "max_tokens": max_tokens,
        "provider": provider_body(state.settings, args.provider),
        **web_params(plan, state.settings.web_search, stop_at),
    }
    if state.caller.gate is not None:  # a quota holds every attempt at its worst, so the answer gets a bound
        extra["max_tokens"] = bound
    plugins = [*extra.get("plugins", []), *files.plugins(state.settings.pdf_engine)]
    if plugins:
        extra["plugins"] = plugins
    if reasoning_effort:
        extra["reasoning"] = {"effort": reasoning_effort}
    await progress(0, 2, f"asking {primary}")
    # Streamed only for a caller who follows progress: an unstreamed answer costs the server far less to read.
    streamed = progress is not no_progress
    result = await state.chat(
        chat_messages(files.content(text), system),
        model=primary,
        fallback_models=kept,
        stream=streamed,
        deadline=deadline,
        on_text=_streamed_progress(progress, primary) if streamed else None,
        worst=worst if state.caller.gate is not None else None,
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
