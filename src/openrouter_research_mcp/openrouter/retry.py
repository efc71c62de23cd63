"""The retry policy: constants in `_constants.py`, decisions in small pure functions, the loop in tenacity.

`should_retry` says whether a failure is worth another try, `parse_retry_after` reads the server's hint,
`retry_delay` picks the pause, and `retrying` assembles them with the caller's deadline: a retry whose pause would
outlive the deadline is not attempted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from .._constants import INITIAL_RETRY_DELAY, MAX_RETRY_AFTER, MAX_RETRY_DELAY, RETRY_STATUSES
from ..errors import TransientError

__all__ = ["parse_retry_after", "retry_delay", "retrying", "should_retry"]


def should_retry(exc: BaseException) -> bool:
    """True for transient failures: 408, 429, 500, 502, 503, 504, 524, 529, connection failures and timeouts."""
    if not isinstance(exc, TransientError):
        return False
    return exc.status is None or exc.status in RETRY_STATUSES


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait according to `retry-after-ms` or `Retry-After` (seconds or an HTTP date), or None."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - (time.time() if now is None else now)


def retry_delay(attempt: int, retry_after: float | None = None, rand: Callable[[], float] = random.random) -> float:
    """Pause before retry number `attempt` (1-based).

    A server hint is honoured when 0 < hint <= MAX_RETRY_AFTER; otherwise exponential backoff from
    INITIAL_RETRY_DELAY, capped at MAX_RETRY_DELAY, with up to 25% jitter taken off so clients spread out.
    """
    if retry_after is not None and 0 < retry_after <= MAX_RETRY_AFTER:
        return retry_after
    base = min(INITIAL_RETRY_DELAY * 2.0 ** (attempt - 1), MAX_RETRY_DELAY)
    return base * (1 - 0.25 * rand())


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    hint = float(exc.retry_after) if isinstance(exc, TransientError) and exc.retry_after is not None else None
    return retry_delay(state.attempt_number, hint)


class _stop_past_deadline(stop_base):
    """Stop when sleeping before the next attempt would reach the deadline (a `time.monotonic()` value)."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline is None:
            return False
        return time.monotonic() + retry_state.upcoming_sleep >= self.deadline


def retrying(max_retries: int, deadline: float | None, sleep: Callable[[float], Any]) -> AsyncRetrying:
    """A tenacity loop: up to `max_retries` retries of transient errors, never past `deadline`."""
    return AsyncRetrying(
        retry=retry_if_exception(should_retry),
        wait=_wait,
        stop=stop_after_attempt(max_retries + 1) | _stop_past_deadline(deadline),
        sleep=sleep,
        reraise=True,
    )
