"""The retry policy as pure functions: which failures are retried and how long to wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from openrouter_research_mcp._constants import INITIAL_RETRY_DELAY, MAX_RETRY_DELAY
from openrouter_research_mcp.errors import (
    AuthError,
    BadResponseError,
    OpenRouterError,
    RateLimitError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    error_for_status,
)
from openrouter_research_mcp.openrouter.retry import parse_retry_after, retry_delay, should_retry


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (524, True),
        (529, True),
        (400, False),
        (401, False),
        (402, False),
        (403, False),
        (404, False),
        (413, False),
        (422, False),
        (501, False),
    ],
)
def test_should_retry_by_status(status: int, retried: bool) -> None:
    assert should_retry(error_for_status(status, "x", model="a/b")) is retried


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (UpstreamUnavailableError("connection refused"), True),  # no status: a transport failure
        (UpstreamTimeoutError("read timeout"), True),
        (BadResponseError("not json"), False),
        (AuthError("no"), False),
        (ValueError("bug"), False),
    ],
)
def test_should_retry_transport_and_other_failures(error: Exception, retried: bool) -> None:
    assert should_retry(error) is retried


def test_parse_retry_after_seconds_ms_and_date() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None


@pytest.mark.parametrize(
    ("hint", "honoured"),
    [(0.2, True), (60.0, True), (0.0, False), (-3.0, False), (61.0, False), (3600.0, False), (None, False)],
)
def test_retry_delay_honours_hint_only_within_limits(hint: float | None, honoured: bool) -> None:
    delay = retry_delay(1, hint, rand=lambda: 0.0)
    assert (delay == hint) is honoured
    if not honoured:
        assert delay == INITIAL_RETRY_DELAY


def test_retry_delay_backs_off_exponentially_with_jitter_and_cap() -> None:
    no_jitter = [retry_delay(n, rand=lambda: 0.0) for n in range(1, 8)]
    assert no_jitter[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(no_jitter) == MAX_RETRY_DELAY
    full_jitter = retry_delay(3, rand=lambda: 1.0)
    assert full_jitter == pytest.approx(2.0 * 0.75)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "AuthError"),
        (402, "CreditsError"),
        (403, "ModerationError"),
        (404, "ModelNotFoundError"),
        (408, "UpstreamTimeoutError"),
        (429, "RateLimitError"),
        (500, "UpstreamUnavailableError"),
        (502, "UpstreamUnavailableError"),
        (503, "UpstreamUnavailableError"),
        (524, "UpstreamTimeoutError"),
        (529, "UpstreamUnavailableError"),
        (400, "RequestError"),
        (413, "RequestError"),
        (422, "RequestError"),
    ],
)
def test_error_for_status_maps_each_status(status: int, kind: str) -> None:
    error = error_for_status(status, "upstream says no", model="openai/gpt-4o")
    assert type(error).__name__ == kind
    assert isinstance(error, OpenRouterError) and error.status == status
    assert "upstream says no" in error.message or kind == "ModelNotFoundError"


def test_error_for_status_context_length_and_invalid_model_on_400() -> None:
    too_long = error_for_status(400, "This endpoint's maximum context length is 8192 tokens", model="a/b")
    assert type(too_long).__name__ == "ContextLengthError" and "longer context" in too_long.message
    invalid = error_for_status(400, "openai/gpt-5x is not a valid model ID", model="openai/gpt-5x")
    assert type(invalid).__name__ == "ModelNotFoundError"


def test_error_messages_say_what_to_do() -> None:
    assert "OPENROUTER_API_KEY" in error_for_status(401, "No auth credentials found").message
    assert "credits" in error_for_status(402, "Insufficient credits").message.lower()
    moderation = error_for_status(403, "flagged", model="a/b", metadata={"reasons": ["violence", "hate"]})
    assert "violence, hate" in moderation.message and moderation.reasons == ["violence", "hate"]  # type: ignore[attr-defined]
    limited = error_for_status(429, "slow down", retry_after=3.0)
    assert isinstance(limited, RateLimitError) and limited.retry_after == 3.0
    assert "OPENROUTER_API_KEY" in AuthError.missing().message
