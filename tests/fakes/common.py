"""What every part of the fake OpenRouter shares: constants, request readers, faults and refusals-before-answering.

A `Rejection` is an HTTP error decided from the request alone (a bad parameter, or a routing rule no endpoint of
the model meets); a `Fault` is one a test queued with `FakeOpenRouter.fail`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ACCOUNT_DEFAULT_MODEL",
    "API_PREFIX",
    "DEFAULT_STATUS",
    "FAULT_KINDS",
    "MESSAGES",
    "PROVIDERS",
    "VARIANT_SUFFIXES",
    "Fault",
    "Recorded",
    "Rejection",
    "as_dict",
    "base_id",
    "dicts",
    "host_of",
    "in_domains",
    "last_prompt",
    "provider_name",
    "tokens_of",
    "within_tokens",
    "text_of",
]

API_PREFIX = "/api/v1"
VARIANT_SUFFIXES = (":free", ":online", ":nitro", ":floor", ":thinking")
ACCOUNT_DEFAULT_MODEL = "openai/gpt-4o-mini"  # what `openrouter/auto` routes to and what an omitted `model` means
FAULT_KINDS = frozenset(
    {
        "http",
        "body",
        "empty",
        "nonjson",
        "finish_error",
        "stream_error",
        "hang",
        "model_down",
        "drop",
        "bad_json",
        "wrong_json",
        "open_after_done",
        "no_done",
        "bad_chunk",
        "cut",
    }
)
DEFAULT_STATUS = {"http": 500, "body": 502, "stream_error": 502, "model_down": 503}
MESSAGES = {
    400: "Bad Request",
    401: "User not found.",
    402: "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
    403: "Your chosen model requires moderation and your input was flagged",
    404: "Not Found",
    408: "Request timed out",
    413: "Payload Too Large",
    429: "Rate limit exceeded: free-models-per-min.",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No endpoints found that can handle the requested parameters.",
    524: "Provider timed out",
    529: "Provider overloaded",
}
PROVIDERS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google AI Studio",
    "deepseek": "DeepSeek",
    "meta-llama": "Together",
    "perplexity": "Perplexity",
}


def provider_name(model: str) -> str:
    """The provider the fake routes `model` to (what `provider` in a response and `provider.only` name)."""
    author = model.split("/")[0]
    return PROVIDERS.get(author, author.title())


def base_id(model: str) -> str:
    """`model` without a variant suffix such as `:free`."""
    return next((model.removesuffix(s) for s in VARIANT_SUFFIXES if model.endswith(s)), model)


def text_of(content: Any) -> str:
    """A message's text: the string, or its text parts joined."""
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def tokens_of(text: str) -> int:
    """The fake's tokenizer, like real ones on the texts tests use: four ASCII characters a token, one token per
    other character (CJK, Cyrillic, ...), two per character outside the Basic Multilingual Plane (emoji)."""
    ascii_chars = sum(1 for c in text if ord(c) < 128)
    astral = sum(1 for c in text if ord(c) > 0xFFFF)
    return -(-ascii_chars // 4) + (len(text) - ascii_chars - astral) + 2 * astral


def within_tokens(text: str, limit: int) -> str:
    """The longest start of `text` that is at most `limit` tokens (`tokens_of`)."""
    if tokens_of(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if tokens_of(text[:mid]) <= limit else (low, mid - 1)
    return text[:low]


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def last_prompt(body: dict[str, Any]) -> str:
    """The last user message's text (or the last message's, when no user spoke)."""
    messages = dicts(body.get("messages"))
    users = [m for m in messages if m.get("role") == "user"] or messages
    return text_of(users[-1].get("content")) if users else ""


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def in_domains(host: str, domains: list[str]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one (how domain filters read)."""
    host = host.lower()
    return any(host == d or host.endswith("." + d) for d in (str(d).lower().strip(".") for d in domains))


@dataclass
class Recorded:
    """One request as the fake received it; `status` stays None when no response was sent (drop, hang)."""

    method: str
    path: str  # relative to /api/v1, e.g. "/chat/completions"
    query: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    model: str | None
    started: float  # time.monotonic()
    finished: float | None = None
    status: int | None = None
    answered: bool = False  # an answer was made (and billed), whether or not the client got all of it

    @property
    def key(self) -> str | None:
        """The bearer key the request was sent with (None without one): whose account it was billed to."""
        given = self.headers.get("authorization", "")
        return given.removeprefix("Bearer ") if given.startswith("Bearer ") else None


@dataclass(frozen=True)
class Rejection:
    """A request refused before any answer: the HTTP status, message and, for routing failures, availability."""

    status: int
    message: str
    availability: dict[str, Any] | None = None

    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.availability is not None:
            error["availability"] = self.availability
            error["metadata"] = {"error_type": self.availability.get("code")}
        return error


@dataclass
class Fault:
    """A queued failure: `times` more chat requests for `model` (None: any) fail as `kind`."""

    kind: str
    status: int
    times: int
    model: str | None
    retry_after: str | None
    message: str | None
    metadata: dict[str, Any] | None
    availability: dict[str, Any] | None = None
    payload: Any = None  # "bad_chunk": the chunk sent after the first piece of text

    def error(self, model: str, prompt: str) -> dict[str, Any]:
        metadata = self.metadata
        if metadata is None and self.status == 403:
            metadata = {
                "reasons": ["violence"],
                "flagged_input": prompt[:100],
                "provider_name": provider_name(model),
                "model_slug": model,
            }
        error: dict[str, Any] = {"code": self.status, "message": self.message or MESSAGES.get(self.status, "Error")}
        if self.availability is not None:
            error["availability"] = self.availability
            # The 2026 API names the same code in both places; a client may read either.
            metadata = {**(metadata or {}), "error_type": self.availability.get("code")}
        if metadata is not None:
            error["metadata"] = metadata
        return error
