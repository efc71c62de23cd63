"""Spending caps enforced in code: reserve each attempt's worst case before it starts, settle its real cost after.

An attempt (a request, a retry of it, a fallback to another model) is started only when its worst case fits what
is left; once it ends, its reservation is replaced by what it really cost. So total spend can pass the cap by at
most what in-flight attempts cost beyond their estimates, and estimates are deliberately pessimistic (every
`max_tokens` used, the prompt counted as an upper bound). `Meter` is how the client does this for every attempt.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .._util import usd
from ..errors import BudgetExceededError, OpenRouterError, StreamError

__all__ = ["Budget", "Gate", "Meter", "Reservation", "dearest", "failure_cost"]


@dataclass
class Reservation:
    """Money set aside for one call until its real cost is known."""

    amount: float
    label: str
    settled: bool = False


class Budget:
    """A spending cap in USD shared by the calls of one tool invocation. Thread- and task-safe."""

    def __init__(self, max_usd: float) -> None:
        self.max_usd = max_usd
        self.spent = 0.0
        self.reserved = 0.0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> float:
        return max(self.max_usd - self.spent - self.reserved, 0.0)

    def reserve(self, amount: float | None, label: str) -> Reservation:
        """Set aside `amount` for a call, or raise `BudgetExceededError` if it does not fit what is left."""
        if amount is None or not math.isfinite(amount) or amount < 0:
            raise BudgetExceededError(
                f"{label}: its price is decided at routing time (or unreadable), so its cost cannot be "
                "bounded in advance. Name a specific model instead."
            )
        with self._lock:
            if amount > self.max_usd - self.spent - self.reserved + 1e-12:
                raise BudgetExceededError(
                    f"{label} could cost up to {usd(amount)}, but only {usd(self.remaining)} of the "
                    f"{usd(self.max_usd)} budget is left. Raise max_cost_usd, lower max_tokens, or choose cheaper "
                    "models."
                )
            self.reserved += amount
        return Reservation(amount=amount, label=label)

    def settle(self, reservation: Reservation, actual: float | None) -> None:
        """Replace a reservation by the real cost; when the real cost is unknown, or a number no cost can be (not
        finite, negative), the reservation itself counts as spent: no figure from upstream can turn a budget off."""
        trusted = actual is not None and math.isfinite(actual) and actual >= 0
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self.reserved = max(self.reserved - reservation.amount, 0.0)
            self.spent += actual if trusted and actual is not None else reservation.amount

    def settle_failure(self, reservation: Reservation, error: OpenRouterError) -> None:
        """Settle a call that failed: free when refused before any work (a 4xx), otherwise counted at its worst case,
        since a broken stream or an upstream failure may already have been billed."""
        self.settle(reservation, failure_cost(error, None))

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back unspent (the call failed before anything was billed)."""
        self.settle(reservation, 0.0)


class Meter:
    """What the client calls around every attempt of a call: `reserve` before it starts (raising
    `BudgetExceededError` when it does not fit), `settle` after. `worst(model)` is one attempt's worst case with
    that model (None when it cannot be bounded); an attempt that may be answered by several models (OpenRouter's
    native fallback list) reserves the dearest."""

    def __init__(
        self,
        budget: Budget,
        worst: Callable[[str], float | None],
        label: str,
        first: Reservation | None = None,
    ) -> None:
        self.budget = budget
        self.worst = worst
        self.label = label
        self._first = first  # made before the call (so the whole plan was known to fit): used by its first attempt

    def reserve(self, models: Sequence[str]) -> Reservation:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return self.budget.reserve(dearest(self.worst, models), self.label)

    def settle(self, reservation: Reservation, cost: float | None) -> None:
        """What the attempt cost (None: unknown, so its worst case counts)."""
        self.budget.settle(reservation, cost)

    def close(self) -> None:
        """Give back a reservation made for a first attempt that never started."""
        if self._first is not None:
            self.budget.release(self._first)
            self._first = None

    def settle_failure(self, reservation: Reservation, error: OpenRouterError, cost: float | None) -> None:
        """A failed attempt: at its known cost, else free when refused before any work, else at its worst case."""
        self.budget.settle(reservation, failure_cost(error, cost))


class Gate(Protocol):
    """A second, shared hold around every attempt (a caller's quota on a team server): `hold` before the attempt
    starts (raising `BudgetExceededError` or a subclass when it does not fit), `settle` with its real cost after
    (None: unknown, so the whole hold counts)."""

    async def hold(self, amount: float | None, label: str) -> Any: ...

    async def settle(self, hold: Any, cost: float | None) -> None: ...


def dearest(worst: Callable[[str], float | None], models: Sequence[str]) -> float | None:
    """One attempt's worst case when any of `models` may answer it: the dearest (None when one cannot be bounded)."""
    amounts = [worst(m) for m in models]
    return None if any(a is None for a in amounts) else max(a for a in amounts if a is not None)


def failure_cost(error: OpenRouterError, cost: float | None) -> float | None:
    """What a failed attempt counts as: its known cost, else free when refused before any work (a 4xx), else
    unknown (its worst case counts)."""
    if cost is not None:
        return cost
    refused = error.status is not None and error.status < 500 and not isinstance(error, StreamError)
    return 0.0 if refused else None
