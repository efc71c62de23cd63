"""Spending caps enforced in code: reserve a call's worst case before it starts, settle its real cost after.

A call is started only when its worst case fits what is left; once it finishes, the reservation is replaced by the
real `usage.cost`. So total spend can pass the cap by at most what in-flight calls cost beyond their estimates, and
estimates are deliberately pessimistic (every `max_tokens` used, the prompt rounded up).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from ..errors import BudgetExceededError, OpenRouterError, StreamError

__all__ = ["Budget", "Reservation"]


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
                    f"{label} could cost up to ${amount:.4f}, but only ${self.remaining:.4f} of the "
                    f"${self.max_usd:.2f} budget is left. Raise max_cost_usd, lower max_tokens, or choose cheaper "
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
        refused = error.status is not None and error.status < 500 and not isinstance(error, StreamError)
        self.settle(reservation, 0.0 if refused else None)

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back unspent (the call failed before anything was billed)."""
        self.settle(reservation, 0.0)
