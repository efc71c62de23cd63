"""Every attempt of a paid call is reserved before it starts and settled after, at what it really cost: retries
and fallbacks escape no budget, failed attempts that were billed are reported, and an answer without usage is
never booked at $0. Checked against what the fake OpenRouter billed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openrouter_research_mcp.benchmark.plan import worst_case as benchmark_worst_case
from openrouter_research_mcp.benchmark.report import BenchmarkInput, BenchmarkParams
from openrouter_research_mcp.openrouter.budget import Budget, Meter
from openrouter_research_mcp.openrouter.pricing import worst_case_cost
from openrouter_research_mcp.openrouter.request import chat_messages
from openrouter_research_mcp.openrouter.tokens import messages_bound
from openrouter_research_mcp.tools.ask import AskInput, ask
from openrouter_research_mcp.tools.benchmark import benchmark_models
from openrouter_research_mcp.tools.compare import CompareInput, compare_models
from openrouter_research_mcp.tools.state import CallState

from ..fakes.openrouter import FakeOpenRouter
from ..support import tool_state
from .helpers import RecordingSleep

MODELS = ["openai/gpt-4o-mini", "openai/gpt-4o"]
PROMPT = "Explain why the sky is blue, in detail."


@pytest.fixture
async def retrying_state(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[CallState]:
    """A tool call's state whose client retries twice (its pauses recorded, not waited)."""
    async with tool_state(fake_openrouter, tmp_path, max_retries=2, sleep=RecordingSleep()) as state:
        yield state


def billed(fake: FakeOpenRouter) -> float:
    return sum(cost for _id, cost in fake.billed)


async def one_call_worst_case(state: CallState, model: str, max_tokens: int) -> float:
    snap = await state.catalog.get()
    worst = worst_case_cost(snap.models[model].pricing, messages_bound(chat_messages(PROMPT, None)), max_tokens)
    assert worst is not None
    return worst


async def test_money_compare_with_streams_that_drop_stays_within_budget_and_reports_the_bill(
    fake_openrouter: FakeOpenRouter, retrying_state: CallState
) -> None:
    fake_openrouter.fail(kind="cut", times=100)  # every stream delivers half its answer, then the connection drops
    # Answers fill max_tokens (the fake cuts them there), so each attempt is billed near its worst case.
    worst = sum([await one_call_worst_case(retrying_state, m, 8) for m in MODELS])
    cap = worst * 2  # room for the first attempts and some retries, not for all six attempts
    result = await compare_models(
        retrying_state, CompareInput(prompt=PROMPT, models=MODELS, max_tokens=8, max_cost_usd=cap)
    )
    assert not any(e.ok for e in result.entries)
    attempts = fake_openrouter.count("/chat/completions")
    assert 2 < attempts < 6  # retries were made while they fitted, and not after
    assert billed(fake_openrouter) <= cap  # what OpenRouter billed stays within the cap
    assert result.totals.cost_usd == pytest.approx(billed(fake_openrouter))  # and is what the result reports
    assert any("not tried again" in (e.error or "") for e in result.entries)


async def test_money_a_retry_after_a_drop_is_counted_with_the_answer(
    fake_openrouter: FakeOpenRouter, retrying_state: CallState
) -> None:
    fake_openrouter.fail(kind="cut", times=1, model="openai/gpt-4o")
    result = await compare_models(retrying_state, CompareInput(prompt=PROMPT, models=MODELS, max_tokens=400))
    assert all(e.ok for e in result.entries) and fake_openrouter.count("/chat/completions") == 3
    dropped = next(e for e in result.entries if e.model == "openai/gpt-4o")
    assert result.totals.cost_usd == pytest.approx(billed(fake_openrouter))
    other = result.entries[0].usage.cost_usd
    assert other is not None and dropped.usage.cost_usd == pytest.approx(billed(fake_openrouter) - other)
    assert retrying_state.caller.usage.totals().cost_usd == pytest.approx(billed(fake_openrouter))


async def test_money_an_answer_without_usage_is_estimated_never_free(
    fake_openrouter: FakeOpenRouter, retrying_state: CallState
) -> None:
    fake_openrouter.send_usage = False
    result = await ask(retrying_state, AskInput(prompt=PROMPT, model="openai/gpt-4o"))
    assert result.usage.cost_source == "estimate" and result.usage.cost_usd and result.usage.cost_usd > 0
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert any("sent no usage" in w for w in result.warnings)


def test_money_meter_reserves_every_attempt_and_settles_each() -> None:
    budget = Budget(1.0)
    meter = Meter(budget, lambda model: 0.4 if model == "a/b" else 0.6, "the call")
    first = meter.reserve(["a/b"])
    assert budget.reserved == pytest.approx(0.4)
    meter.settle(first, 0.1)
    second = meter.reserve(["a/b", "c/d"])  # a native fallback window: the dearest model's worst case
    assert budget.reserved == pytest.approx(0.6) and budget.spent == pytest.approx(0.1)
    meter.settle(second, None)  # an unknown cost counts at its worst case
    assert budget.spent == pytest.approx(0.7) and budget.reserved == 0


async def test_money_every_call_lands_in_the_callers_usage_ledger(
    fake_openrouter: FakeOpenRouter, retrying_state: CallState
) -> None:
    fake_openrouter.fail(kind="cut", times=1, model="openai/gpt-4o")
    await ask(retrying_state, AskInput(prompt=PROMPT, model="openai/gpt-4o"))
    rows = await retrying_state.ledger()
    assert sum(r.calls for r in rows) == 1 and sum(r.cost_usd for r in rows) == pytest.approx(billed(fake_openrouter))
    stranger = retrying_state.shared.for_caller(retrying_state.shared.caller("mallory"))
    assert await stranger.ledger() == []  # one caller's usage is nobody else's


# --------------------------------------------------------------------------- prompts in any script


CJK_PROMPT = "请详细解释为什么天空是蓝色的，并比较瑞利散射与米氏散射。" * 1_100  # about 30,000 characters
EMOJI_PROMPT = "😀🚀" * 10_000  # 20,000 emoji


@pytest.mark.parametrize("prompt", [CJK_PROMPT, EMOJI_PROMPT], ids=["cjk", "emoji"])
async def test_money_compare_in_any_script_stays_within_the_servers_own_worst_case(
    fake_openrouter: FakeOpenRouter, retrying_state: CallState, prompt: str
) -> None:
    snap = await retrying_state.catalog.get()
    bound = messages_bound(chat_messages(prompt, None))
    worst = [worst_case_cost(snap.models[m].pricing, bound, 256) for m in MODELS]
    cap = 1.05 * sum(w for w in worst if w is not None)  # the fake bills 1 token per CJK character, 2 per emoji
    result = await compare_models(
        retrying_state, CompareInput(prompt=prompt, models=MODELS, max_tokens=256, max_cost_usd=cap)
    )
    assert all(e.ok for e in result.entries)  # the cap was enough to run...
    assert billed(fake_openrouter) <= cap  # ...and what was billed stayed under it
    assert result.totals.cost_usd == pytest.approx(billed(fake_openrouter))


@pytest.mark.parametrize("prompt", [CJK_PROMPT, EMOJI_PROMPT], ids=["cjk", "emoji"])
async def test_money_benchmark_in_any_script_stays_within_the_servers_own_worst_case(
    fake_openrouter: FakeOpenRouter, retrying_state: CallState, prompt: str
) -> None:
    params = BenchmarkParams(prompts=[prompt, prompt[:5_000]], models=MODELS, max_tokens=256)
    infos = {m: (await retrying_state.catalog.get()).models[m] for m in MODELS}
    cap = 1.05 * benchmark_worst_case(params, infos)
    report = await benchmark_models(
        retrying_state, BenchmarkInput(prompts=params.prompts, models=MODELS, max_tokens=256, max_cost_usd=cap)
    )
    assert report.status == "done" and all(c.ok for c in report.calls) and len(report.calls) == 4
    assert billed(fake_openrouter) <= cap
    assert report.totals.cost_usd == pytest.approx(billed(fake_openrouter))
