"""The error tree. Every message says what happened and what to do, and never contains the API key.

```
OpenRouterError
├── ConfigError                  a setting is missing or malformed
├── AuthError                    401: key missing, wrong, revoked or expired
├── CreditsError                 402: not enough credits (a negative balance blocks free models too)
├── ModerationError              403: input flagged by moderation or a guardrail (keeps the reasons)
├── NotFoundError                something the caller named does not exist (a research run id)
│   └── ModelNotFoundError       unknown model id (with close matches)
├── ModelUnavailableError        the model exists but cannot serve this request (privacy settings, a free variant
│                                that ended, no endpoint with the needed parameters); keeps suggested fallbacks
├── RequestError                 400/413/422: the request itself was refused; retrying will not help
│   └── ContextLengthError       the prompt plus max_tokens exceed the model's context
├── TransientError               may succeed if tried again
│   ├── RateLimitError           429
│   ├── UpstreamUnavailableError 5xx, 524, 529, or a connection that failed
│   └── UpstreamTimeoutError     the upstream took longer than the timeout or the caller's deadline
├── BadResponseError             HTTP 200 that carries an error, no choices, or a body that is not JSON
│   ├── StreamError              a stream that ended in an error chunk (keeps the partial text)
│   └── StructuredOutputError    the model's JSON did not match the schema asked for
└── BudgetExceededError          a call would cross the spending cap
    └── QuotaExceededError       a caller's quota on a team server (USD per day or month, calls per minute, jobs)
```
"""

from __future__ import annotations

from typing import Any

from ._constants import CREDITS_URL, KEYS_URL, PRIVACY_URL

__all__ = [
    "AuthError",
    "BadResponseError",
    "BudgetExceededError",
    "ConfigError",
    "ContextLengthError",
    "CreditsError",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "ModerationError",
    "NotFoundError",
    "OpenRouterError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestError",
    "StreamError",
    "StructuredOutputError",
    "TransientError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "error_for_status",
]


class OpenRouterError(Exception):
    """Root of every error this package raises on purpose."""

    def __init__(self, message: str, *, status: int | None = None, model: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.model = model
        self.attempts: list[Any] = []  # filled by the client when fallback tried several models
        self.retries = 0  # how many times the client retried before giving up
        self.usage: Any = None  # what the failed attempts cost (a `Usage`), when any may have been billed
        self.generation_id: str | None = None  # the upstream generation this attempt started, when known
        self.received_tokens = 0  # the most tokens the answer text that arrived before the failure can be
        self.attempt_cost: float | None = None  # what this failed attempt was billed, when known
        self.explained = False  # whether `message` already says what the caller's own sign-in makes of it

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, model={self.model!r})"


class ConfigError(OpenRouterError):
    """A setting is missing or malformed."""


class AuthError(OpenRouterError):
    """The API key is missing or was refused (401)."""

    @classmethod
    def missing(cls) -> AuthError:
        return cls(
            "OPENROUTER_API_KEY is not set and no key is stored. Run `openrouter-research-mcp login` to sign in "
            f"with OpenRouter (no key to paste), or create a key at {KEYS_URL} and set OPENROUTER_API_KEY in your "
            "MCP client's env block or in a .env file; then restart the server."
        )


class CreditsError(OpenRouterError):
    """The account lacks credits for this request (402)."""


class ModerationError(OpenRouterError):
    """The input was flagged (403); `reasons` lists why."""

    def __init__(self, message: str, *, reasons: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reasons = reasons or []


class NotFoundError(OpenRouterError):
    """Something the caller named (a model, a research run) does not exist."""


class ModelNotFoundError(NotFoundError):
    """The model id is unknown; `suggestions` holds close matches."""

    def __init__(self, model: str, suggestions: list[str] | None = None, *, detail: str = "") -> None:
        self.suggestions = suggestions or []
        hint = (
            f" Did you mean {', '.join(f'`{s}`' for s in self.suggestions)}?"
            if self.suggestions
            else " Use list_models to find a model id."
        )
        extra = f" ({detail})" if detail else ""
        super().__init__(f"Model `{model}` was not found on OpenRouter{extra}.{hint}", status=404, model=model)


class ModelUnavailableError(OpenRouterError):
    """The model exists but cannot serve this request; `fallback_models` holds OpenRouter's suggestions."""

    def __init__(self, message: str, *, fallback_models: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.fallback_models = fallback_models or []


class RequestError(OpenRouterError):
    """The upstream refused the request as malformed (400, 413, 422); retrying will not help."""


class ContextLengthError(RequestError):
    """The prompt and `max_tokens` do not fit the model's context; a longer-context model may succeed."""


class TransientError(OpenRouterError):
    """A failure that may pass if tried again later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RateLimitError(TransientError):
    """Too many requests (429)."""


class UpstreamUnavailableError(TransientError):
    """The provider is down, overloaded or unreachable (5xx, 524, 529, connection failure)."""


class UpstreamTimeoutError(TransientError):
    """The upstream did not answer in time."""


class BadResponseError(OpenRouterError):
    """The upstream answered 200 but the answer is unusable (error body, no choices, not JSON)."""


class StreamError(BadResponseError):
    """A stream ended with an error chunk; `partial_text` keeps what arrived before it."""

    def __init__(self, message: str, *, partial_text: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial_text = partial_text


class StructuredOutputError(BadResponseError):
    """The model answered, but not with JSON matching the schema (after one repair attempt)."""


class BudgetExceededError(OpenRouterError):
    """Starting this call could cross the spending cap."""


class QuotaExceededError(BudgetExceededError):
    """The caller's quota on this server is used up for now (the message says which, how much, and when it resets).
    `limit` names it for the metrics: usd_per_day, usd_per_month, unpriced, calls_per_minute, jobs, or unavailable
    (the database that keeps the quotas cannot be reached, so none can be checked)."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


def _context_length_exceeded(message: str, metadata: dict[str, Any]) -> bool:
    if metadata.get("error_type") == "context_length_exceeded":
        return True
    low = message.lower()
    return "context length" in low or "context_length" in low or "maximum context" in low


def _unavailable(code: str, upstream: str, on: str, fallbacks: list[str], **kw: Any) -> ModelUnavailableError | None:
    """The 2026 availability codes that mean "this model, not this way", each with what the user can do."""
    offer = f" OpenRouter suggests: {', '.join(f'`{m}`' for m in fallbacks)}." if fallbacks else ""
    if code == "privacy_restricted":
        advice = (
            f"Your privacy settings exclude every provider of this model. Allow providers that may train on or "
            f"log prompts at {PRIVACY_URL}, or pick another model."
        )
    elif code == "free_variant_ended":
        advice = "The free variant of this model has ended: drop `:free` from the id to use the paid one."
    elif code in ("no_endpoints", "no_compatible_endpoints", "parameters_unsupported"):
        advice = "No provider of this model supports the parameters this call needs; pick another model."
    else:
        return None
    return ModelUnavailableError(
        f"The model{on} is not available for this request ({upstream}). {advice}{offer}",
        fallback_models=fallbacks,
        **kw,
    )


def error_for_status(
    status: int,
    message: str,
    *,
    model: str | None = None,
    metadata: dict[str, Any] | None = None,
    availability: dict[str, Any] | None = None,
    retry_after: float | None = None,
) -> OpenRouterError:
    """Map an upstream status and message (from the HTTP status or a 200 body's `error.code`) to our tree; the 2026
    `error.availability.code` and `metadata.error_type` take precedence where they say more."""
    metadata = metadata or {}
    availability = availability or {}
    upstream = message.strip() or "no message"
    on = f" for `{model}`" if model else ""
    fallbacks = [str(m) for m in availability.get("fallback_models") or [] if isinstance(m, str)][:5]
    code = availability.get("code") or metadata.get("error_type")
    if not code and status in (400, 404) and "no endpoints found" in upstream.lower():
        code = "no_endpoints"
    unavailable = _unavailable(str(code), upstream, on, fallbacks, status=status, model=model) if code else None
    if unavailable is not None:
        return unavailable
    if status == 401:
        return AuthError(
            f"OpenRouter rejected the API key (401: {upstream}). Check OPENROUTER_API_KEY, or create "
            f"a new key at {KEYS_URL}. A key from `openrouter-research-mcp login` may have expired or been revoked: "
            "run `openrouter-research-mcp login` again.",
            status=status,
            model=model,
        )
    if status == 402:
        return CreditsError(
            f"OpenRouter says the account lacks credits{on} (402: {upstream}). Add credits at "
            f"{CREDITS_URL}, lower max_tokens, or pick a cheaper or `:free` model.",
            status=status,
            model=model,
        )
    if status == 403:
        reasons = [str(r) for r in metadata.get("reasons") or []]
        why = f" Reasons: {', '.join(reasons)}." if reasons else ""
        return ModerationError(
            f"The request{on} was blocked by moderation (403: {upstream}).{why} Rephrase the "
            "input or choose a model without provider moderation.",
            reasons=reasons,
            status=status,
            model=model,
        )
    if status == 404 and model:
        return ModelNotFoundError(model, detail=upstream)
    low = upstream.lower()
    if status == 400 and model and ("not a valid model" in low or ("model" in low and "not found" in low)):
        return ModelNotFoundError(model, detail=upstream)
    if status == 429:
        return RateLimitError(
            f"OpenRouter rate-limited the request{on} (429: {upstream}). Wait a moment, or use a "
            "fallback model; `:free` models allow about 20 requests a minute.",
            retry_after=retry_after,
            status=status,
            model=model,
        )
    if status in (408, 524):
        return UpstreamTimeoutError(
            f"The provider timed out{on} ({status}: {upstream}). Try again, lower max_tokens, or use a faster model.",
            retry_after=retry_after,
            status=status,
            model=model,
        )
    if status >= 500:
        return UpstreamUnavailableError(
            f"The provider{on} is unavailable ({status}: {upstream}). Try again shortly or add fallback models.",
            retry_after=retry_after,
            status=status,
            model=model,
        )
    if status in (400, 413, 422) and _context_length_exceeded(upstream, metadata):
        return ContextLengthError(
            f"The prompt is too long{on} ({status}: {upstream}). Shorten it, lower "
            "max_tokens, or pick a model with a longer context.",
            status=status,
            model=model,
        )
    return RequestError(
        f"OpenRouter refused the request{on} ({status}: {upstream}). Check the arguments.", status=status, model=model
    )
