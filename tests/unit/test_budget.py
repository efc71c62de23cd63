"""Budget: worst-case reservations before a call, settlement after it."""

from __future__ import annotations

import pytest

from openrouter_research_mcp.errors import BudgetExceededError, CreditsError, StreamError, UpstreamUnavailableError
from openrouter_research_mcp.openrouter.budget import Budget
from openrouter_research_mcp.openrouter.pricing import Pricing, worst_case_cost


def pricing(**prices: str) -> Pricing:
    return Pricing.model_validate(prices)


def test_worst_case_cost_counts_prompt_output_request_and_search() -> None:
    p = pricing(prompt="0.000001", completion="0.000002", internal_reasoning="0.000004", request="0.001")
    assert worst_case_cost(p, 300, 1000) == pytest.approx(300 * 1e-6 + 1000 * 4e-6 + 0.001)
    # Three searches at the dearest engine `auto` may pick (Exa, $0.007 a request), two page reads at $0.001.
    assert worst_case_cost(p, 300, 1000, web_searches=3, web_fetches=2) == pytest.approx(
        300 * 1e-6 + 1000 * 4e-6 + 0.001 + 3 * 0.007 + 2 * 0.001
    )
    cheaper = worst_case_cost(
        p, 300, 1000, web_searches=3, search_engine="parallel", web_fetches=2, fetch_engine="openrouter"
    )
    assert cheaper == pytest.approx(300 * 1e-6 + 1000 * 4e-6 + 0.001 + 3 * 0.005)


def test_worst_case_cost_uses_the_long_prompt_tier_and_the_discount() -> None:
    tiered = Pricing.model_validate(
        {
            "prompt": "0.00000125",
            "completion": "0.00001",
            "discount": "0.2",
            "overrides": [{"min_prompt_tokens": 200000, "prompt": "0.0000025", "completion": "0.000015"}],
        }
    )
    short = worst_case_cost(tiered, 3_000, 1000)
    long = worst_case_cost(tiered, 300_000, 1000)  # the tier above 200k applies
    assert short == pytest.approx((3_000 * 1.25e-6 + 1000 * 1e-5) * 0.8)
    assert long == pytest.approx((300_000 * 2.5e-6 + 1000 * 1.5e-5) * 0.8)
    assert tiered.at(199_999).prompt == pytest.approx(1.25e-6 * 0.8) and tiered.at(200_000).prompt == pytest.approx(
        2e-6
    )
    assert worst_case_cost(pricing(prompt="-1", completion="-1"), 300, 1000) is None


def test_budget_refuses_what_could_cross_the_cap_and_settles_real_costs() -> None:
    budget = Budget(0.10)
    first = budget.reserve(0.06, "first")
    with pytest.raises(BudgetExceededError, match=r"\$0\.04 of the \$0\.10 budget"):
        budget.reserve(0.05, "second")
    budget.settle(first, 0.01)  # cheaper than feared: the difference comes back
    second = budget.reserve(0.05, "second")
    assert budget.spent == pytest.approx(0.01) and budget.remaining == pytest.approx(0.04)
    budget.settle(second, None)  # unknown real cost: the reservation is counted as spent
    budget.settle(second, 0.0)  # settling twice changes nothing
    assert budget.spent == pytest.approx(0.06) and budget.reserved == 0


def test_budget_refuses_unpriced_calls() -> None:
    with pytest.raises(BudgetExceededError, match="routing time"):
        Budget(1.0).reserve(None, "`openrouter/auto`")


def test_budget_overspend_is_bounded_by_in_flight_overruns() -> None:
    budget = Budget(0.05)
    calls = [budget.reserve(0.01, f"call {i}") for i in range(5)]
    with pytest.raises(BudgetExceededError):
        budget.reserve(0.01, "sixth")
    # Two calls cost more than their worst case (a bad estimate): the overshoot is exactly their overruns...
    real = [0.009, 0.013, 0.009, 0.016, 0.009]
    for call, cost in zip(calls, real, strict=True):
        budget.settle(call, cost)
    overruns = sum(max(cost - 0.01, 0) for cost in real)
    assert budget.spent == pytest.approx(sum(real))
    assert budget.max_usd < budget.spent <= budget.max_usd + overruns + 1e-12
    # ...and once the cap is passed nothing more starts, not even a free call.
    assert budget.remaining == 0
    with pytest.raises(BudgetExceededError):
        budget.reserve(0.0001, "after the cap")


def test_budget_failed_calls_cost_nothing_only_when_refused_up_front() -> None:
    budget = Budget(1.0)
    budget.settle_failure(budget.reserve(0.1, "refused"), CreditsError("no credits", status=402))
    assert budget.spent == 0
    budget.settle_failure(budget.reserve(0.1, "down"), UpstreamUnavailableError("down", status=502))
    budget.settle_failure(budget.reserve(0.2, "broken stream"), StreamError("cut", partial_text="x", status=400))
    assert budget.spent == pytest.approx(0.3) and budget.reserved == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.05])
def test_budget_no_upstream_number_turns_it_off(bad: float) -> None:
    budget = Budget(0.04)
    call = budget.reserve(0.01, "a call")
    budget.settle(call, bad)  # an impossible real cost counts as the worst case, never as a refund
    assert budget.spent == pytest.approx(0.01) and budget.remaining == pytest.approx(0.03)
    with pytest.raises(BudgetExceededError):
        budget.reserve(bad, "an estimate built from a bad price")
    calls = [budget.reserve(0.01, f"call {i}") for i in range(3)]
    with pytest.raises(BudgetExceededError):
        budget.reserve(0.01, "one too many")
    assert len(calls) == 3
