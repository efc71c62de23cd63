"""benchmark_models against the fake OpenRouter: measured rankings match what the fake was told, costs add up,
every rendering agrees, and the budget is checked before anything starts."""

from __future__ import annotations

import csv
import io
import json
import re
from xml.etree import ElementTree

import pytest
from pydantic import ValidationError

from openrouter_research_mcp._util import usd
from openrouter_research_mcp.benchmark.report import (
    LABEL_CHAR_PX,
    MAX_MODELS,
    MAX_PROMPTS,
    MAX_RUNS,
    MIN_MODELS,
    MIN_PROMPTS,
    MIN_RUNS,
    BenchmarkInput,
    render_chart,
    render_csv,
    render_markdown,
)
from openrouter_research_mcp.benchmark.runner import output_rate
from openrouter_research_mcp.errors import BudgetExceededError, RequestError
from openrouter_research_mcp.tools.arguments import describe_errors
from openrouter_research_mcp.tools.benchmark import benchmark_models, cancel_benchmark, get_benchmark
from openrouter_research_mcp.tools.state import CallState

from ..fakes.openrouter import FakeOpenRouter
from ..support import eventually

MODELS = ["openai/gpt-4o-mini", "google/gemini-2.5-flash", "deepseek/deepseek-r1"]
PROMPTS = ["Name a prime number.", "What is the capital of France?", "Summarise photosynthesis in a line."]


async def test_benchmark_measures_latency_cost_and_quality(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    fake_openrouter.model_latency.update({MODELS[0]: 0.30, MODELS[1]: 0.05, MODELS[2]: 0.15})
    fake_openrouter.quality.update({MODELS[0]: 9, MODELS[1]: 4, MODELS[2]: 7})
    seen: list[str] = []

    async def progress(_done: float, _total: float | None, message: str) -> None:
        seen.append(message)

    report = await benchmark_models(
        app_state,
        BenchmarkInput(prompts=PROMPTS, models=MODELS, runs=2, judge_model="openai/gpt-4o", objective="speed"),
        progress=progress,
    )
    assert report.status == "done" and len(report.calls) == 18 and all(c.ok for c in report.calls)
    # The measured latency ranking is the one the fake was given.
    assert report.ranking == [MODELS[1], MODELS[2], MODELS[0]]
    by_model = {s.model: s for s in report.stats}
    assert by_model[MODELS[0]].latency_p50_s >= 0.3 > by_model[MODELS[2]].latency_p50_s >= 0.15  # type: ignore[operator]
    assert [by_model[m].quality for m in MODELS] == [9, 4, 7]  # the judge's scores, per the fake
    assert all(s.ttft_p50_s is not None and s.success_rate == 1 for s in report.stats)
    # Costs: the per-call costs are the fake's usage.cost, and the totals add them up (answers and judge).
    answered = [r for r in fake_openrouter.chat_requests() if not r.body.get("response_format")]
    assert len(answered) == 18 and sum(c.cost_usd or 0 for c in report.calls) == pytest.approx(
        sum(s.cost_usd for s in report.stats)
    )
    assert report.totals.cost_usd is not None and report.totals.cost_usd > sum(s.cost_usd for s in report.stats)
    assert len(seen) == 18 and seen[-1].startswith("18/18")
    assert report.tradeoffs.startswith(f"For speed, `{MODELS[1]}` answers fastest")
    assert f"`{MODELS[0]}` scores highest (9.0/10)" in report.tradeoffs


async def test_benchmark_renderings_agree(fake_openrouter: FakeOpenRouter, app_state: CallState) -> None:
    fake_openrouter.model_latency.update({MODELS[0]: 0.1})
    report = await benchmark_models(
        app_state, BenchmarkInput(prompts=PROMPTS[:2], models=MODELS[:2], runs=2, judge_model="openai/gpt-4o")
    )
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    data = json.loads(report.model_dump_json())
    markdown = render_markdown(report)
    assert [r["model"] for r in rows] == report.ranking == [s["model"] for s in data["stats"]]
    for row, stats in zip(rows, data["stats"], strict=True):
        assert float(row["cost_usd"]) == pytest.approx(stats["cost_usd"])
        assert float(row["latency_p50_s"]) == pytest.approx(stats["latency_p50_s"])
        line = next(line for line in markdown.splitlines() if f"`{row['model']}`" in line and line.startswith("|"))
        assert usd(stats["cost_usd"]) in line and f"{stats['latency_p50_s']:.2f} /" in line
        assert line.startswith(f"| {row['rank']} |") and f"{stats['quality']:.1f}" in line
    svg = ElementTree.fromstring(render_chart(report))
    circles = svg.findall("{http://www.w3.org/2000/svg}circle")
    assert (
        len(circles) == 2
        and {
            c.find("{http://www.w3.org/2000/svg}title").text.split(":")[0]  # type: ignore[union-attr]
            for c in circles
        }
        == set(MODELS[:2])
    )


async def test_benchmark_each_bound_is_declared_once_for_the_schema_the_checks_and_the_messages(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    schema = BenchmarkInput.model_json_schema()
    fields = schema["properties"]
    assert fields["prompts"]["maxItems"] == MAX_PROMPTS and fields["models"]["maxItems"] == MAX_MODELS
    assert (fields["runs"]["minimum"], fields["runs"]["maximum"]) == (MIN_RUNS, MAX_RUNS)
    assert f"{MIN_PROMPTS} to {MAX_PROMPTS} prompts" in fields["prompts"]["description"]
    assert f"{MIN_MODELS} to {MAX_MODELS} model" in fields["models"]["description"]
    too_many = {"prompts": ["Hi?"] * (MAX_PROMPTS + 1), "models": MODELS[:1] * (MAX_MODELS + 1), "runs": MAX_RUNS + 1}
    with pytest.raises(ValidationError) as bad:  # the upper bounds are the model's, said in words at the surface
        BenchmarkInput.model_validate(too_many)
    said = describe_errors("benchmark_models", bad.value, schema)
    assert f"`prompts` takes at most {MAX_PROMPTS} item(s); got {MAX_PROMPTS + 1}" in said
    assert f"`models` takes at most {MAX_MODELS} item(s)" in said and f"`runs` is at most {MAX_RUNS}" in said
    few_models = [MODELS[0]] * MIN_MODELS  # the lower ones count what is left once repeats and blanks are dropped
    with pytest.raises(RequestError, match=f"needs {MIN_MODELS} to {MAX_MODELS} different models; got 1"):
        await benchmark_models(app_state, BenchmarkInput(prompts=PROMPTS, models=few_models))
    with pytest.raises(RequestError, match=f"needs {MIN_PROMPTS} to {MAX_PROMPTS} prompts, none empty; got 0"):
        await benchmark_models(app_state, BenchmarkInput(prompts=[], models=MODELS))
    assert fake_openrouter.count("/chat/completions") == 0


async def test_benchmark_budget_refusal_happens_before_any_call(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    with pytest.raises(BudgetExceededError, match=r"could cost up to \$[\d.]+ .*more than max_cost_usd \$0\.01"):
        await benchmark_models(
            app_state,
            BenchmarkInput(
                prompts=PROMPTS,
                models=["openai/gpt-4o", "anthropic/claude-3.5-sonnet"],
                runs=5,
                max_tokens=4000,
                max_cost_usd=0.01,
            ),
        )
    with pytest.raises(RequestError, match="needs a judge"):
        await benchmark_models(app_state, BenchmarkInput(prompts=PROMPTS, models=MODELS, objective="quality"))
    with pytest.raises(RequestError, match="one reference answer per prompt"):
        await benchmark_models(app_state, BenchmarkInput(prompts=PROMPTS, models=MODELS, references=["only one"]))
    assert fake_openrouter.chat_requests() == []


async def test_benchmark_a_failing_model_is_reported_and_the_rest_go_on(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    fake_openrouter.fail(402, model=MODELS[2], times=10, message="Insufficient credits")
    report = await benchmark_models(app_state, BenchmarkInput(prompts=PROMPTS[:2], models=MODELS, objective="cost"))
    broken = next(s for s in report.stats if s.model == MODELS[2])
    assert broken.succeeded == 0 and broken.rank == 3 and report.ranking[-1] == MODELS[2]
    assert all(s.succeeded == 2 for s in report.stats if s.model != MODELS[2])
    assert f"`{MODELS[2]}` failed 2 of 2 calls." in report.tradeoffs
    assert "credits" in render_markdown(report)


async def test_benchmark_in_the_background_can_be_polled_and_cancelled(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    fake_openrouter.latency = 0.3
    started = await benchmark_models(app_state, BenchmarkInput(prompts=PROMPTS, models=MODELS, runs=3, background=True))
    assert started.status == "running" and re.fullmatch(r"bench-\d{8}-\d{6}-[0-9a-f]{8}", started.benchmark_id)

    async def some_done() -> bool:
        return bool((await get_benchmark(app_state, started.benchmark_id)).calls)

    await eventually(some_done, timeout=10, what="a first call finishing")
    stopped = await cancel_benchmark(app_state, started.benchmark_id)
    assert stopped.status == "cancelled" and 0 < len(stopped.calls) < 27 and stopped.stats
    saved = await app_state.shared.store.get(started.benchmark_id, app_state.owner)
    assert saved is not None and saved.status == "cancelled" and len(saved.data["calls"]) == len(stopped.calls)
    with pytest.raises(Exception, match="No benchmark has the id"):
        await get_benchmark(app_state, "bench-20990101-000000-00000000")


# ------------------------------------------------------------------------------------- hostile judges, long prompts


@pytest.mark.parametrize("garbage", [True, False, 0, 11, 10.5, float("inf"), "9", None])
async def test_benchmark_a_judge_score_must_be_a_number_from_1_to_10(
    fake_openrouter: FakeOpenRouter, app_state: CallState, garbage: object
) -> None:
    fake_openrouter.quality[MODELS[0]] = garbage  # `{"score": true}` is not a score of 1
    report = await benchmark_models(
        app_state, BenchmarkInput(prompts=PROMPTS[:1], models=MODELS[:2], judge_model="openai/gpt-4o")
    )
    judged = {c.model: c for c in report.calls}
    assert judged[MODELS[0]].score is None and (judged[MODELS[0]].reason or "").startswith("not judged")
    assert judged[MODELS[1]].score == 5  # the other answer was judged as usual
    assert next(s for s in report.stats if s.model == MODELS[0]).quality is None


async def test_benchmark_a_judge_score_may_be_any_real_number_from_1_to_10(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    fake_openrouter.quality.update({MODELS[0]: 8.0, MODELS[1]: 7.5})  # `8.0` is a JSON Schema integer too
    report = await benchmark_models(
        app_state, BenchmarkInput(prompts=PROMPTS[:1], models=MODELS[:2], judge_model="openai/gpt-4o")
    )
    assert {c.model: c.score for c in report.calls} == {MODELS[0]: 8.0, MODELS[1]: 7.5}
    judged = [r for r in fake_openrouter.chat_requests() if r.body.get("response_format")]
    assert len(judged) == 2  # each judged once: no second, paid, attempt


async def test_benchmark_skips_a_model_whose_context_cannot_take_a_prompt(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    long = "The history of the heat pump, told at length. " * 15_500  # about 700 KB: some 180,000 tokens
    report = await benchmark_models(
        app_state, BenchmarkInput(prompts=[long, "Short one."], models=["openai/gpt-4o-mini", MODELS[1]])
    )
    assert (
        list(report.skipped) == ["openai/gpt-4o-mini"] and "context of 128,000" in report.skipped["openai/gpt-4o-mini"]
    )
    assert "Prompt 1 is about" in report.skipped["openai/gpt-4o-mini"]
    assert report.params.models == [MODELS[1]] and {c.model for c in report.calls} == {MODELS[1]}
    assert all(r.body.get("model") != "openai/gpt-4o-mini" for r in fake_openrouter.chat_requests())  # never sent
    assert "Skipped before anything was sent" in render_markdown(report)
    with pytest.raises(RequestError, match="No model can take these prompts"):
        await benchmark_models(
            app_state, BenchmarkInput(prompts=[long], models=["openai/gpt-4o-mini", "openai/gpt-4o"])
        )


async def test_benchmark_costs_add_up_with_the_judge_shown(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    report = await benchmark_models(
        app_state, BenchmarkInput(prompts=PROMPTS[:2], models=MODELS[:2], judge_model="openai/gpt-4o")
    )
    answers, judge = sum(s.cost_usd for s in report.stats), report.judge_usage.cost_usd or 0.0
    assert judge > 0 and answers + judge == pytest.approx(report.totals.cost_usd)
    assert report.totals.cost_usd == pytest.approx(sum(cost for _id, cost in fake_openrouter.billed))
    total_line = next(line for line in render_markdown(report).splitlines() if line.startswith("Total:"))
    assert f"answers {usd(answers)} + the judge {usd(judge)} = {usd(report.totals.cost_usd)}" in total_line


async def test_benchmark_times_a_paced_generation(fake_openrouter: FakeOpenRouter, app_state: CallState) -> None:
    fake_openrouter.model_tokens_per_second.update(dict.fromkeys(MODELS[:2], 100.0))  # pieces paced, as upstream
    report = await benchmark_models(app_state, BenchmarkInput(prompts=PROMPTS[2:], models=MODELS[:2]))
    rates = [c.tokens_per_s for c in report.calls]
    # The fake's pauses only lengthen the generation, so the measured rate is at most about the paced one.
    assert all(rate is not None and 0 < rate <= 150 for rate in rates), rates


def test_benchmark_output_rate_needs_a_measurable_generation() -> None:
    assert output_rate(500, [10.0]) is None  # one piece: no interval at all
    assert output_rate(500, [10.0, 10.0001, 10.0002]) is None  # all at once: 2,500,000 tok/s would be noise
    assert output_rate(0, [10.0, 11.0]) is None
    assert output_rate(100, [10.0, 10.5, 12.0]) == 50.0  # first piece to last


async def test_benchmark_chart_labels_whole_with_ticks_and_dollars(app_state: CallState) -> None:
    report = await benchmark_models(
        app_state,
        BenchmarkInput(prompts=PROMPTS[:1], models=["openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"]),
    )
    svg = ElementTree.fromstring(render_chart(report))
    width = float(svg.get("viewBox", "0 0 0 0").split()[2])
    texts = svg.findall("{http://www.w3.org/2000/svg}text")
    for text in (t for t in texts if not t.get("transform")):  # the rotated axis title is vertical
        content, x = text.text or "", float(text.get("x", "0"))
        span = len(content) * LABEL_CHAR_PX
        start = {"end": x - span, "middle": x - span / 2}.get(text.get("text-anchor", "start"), x)
        assert 0 <= start and start + span <= width, content  # every label whole, inside the chart
        assert not re.search(r"\de[-+]\d", content), content  # no scientific notation
    labels = [t.text or "" for t in texts]
    assert {"openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"} <= set(labels)
    assert [label for label in labels if label.endswith("%")] == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert sum(label.startswith("$") for label in labels) == 5 and "$0.00" in labels


def _label_boxes(svg: ElementTree.Element) -> list[tuple[float, float, float]]:
    """Each model label's start, end and baseline."""
    boxes = []
    for text in svg.findall("{http://www.w3.org/2000/svg}text"):
        content = text.text or ""
        if "/" in content and not content.startswith("Not shown"):
            x = float(text.get("x", "0"))
            boxes.append((x, x + len(content) * LABEL_CHAR_PX, float(text.get("y", "0"))))
    return boxes


async def test_benchmark_chart_keeps_bubbles_inside_labels_apart_and_names_the_unscored(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    fake_openrouter.quality.update({MODELS[0]: 10, MODELS[1]: 10})
    report = await benchmark_models(
        app_state, BenchmarkInput(prompts=PROMPTS[:1], models=MODELS, judge_model="openai/gpt-4o")
    )
    # Two models at the top score and one cost, the slowest bubble among them, and one model the judge never scored.
    twin = report.stats[0]
    stats = [
        twin.model_copy(update={"model": "a-very-long-provider/first-model-at-the-top", "quality": 10.0}),
        twin.model_copy(update={"model": "a-very-long-provider/second-model-at-the-top", "quality": 10.0}),
        twin.model_copy(update={"model": "unscored/model", "quality": None}),
    ]
    svg = ElementTree.fromstring(render_chart(report.model_copy(update={"stats": stats})))
    _, _, width, height = (float(v) for v in svg.get("viewBox", "").split())
    for circle in svg.findall("{http://www.w3.org/2000/svg}circle"):
        cx, cy, r = (float(circle.get(k, "0")) for k in ("cx", "cy", "r"))
        assert r <= cx - 84 and cy - r >= 0 and cx + r <= width and cy + r <= height  # inside the plot and chart
    boxes = _label_boxes(svg)
    assert len(boxes) == 2
    (a0, a1, ay), (b0, b1, by) = boxes
    assert a1 <= b0 or b1 <= a0 or abs(ay - by) >= 14  # the twins' labels do not cover each other
    note = [t.text for t in svg.findall("{http://www.w3.org/2000/svg}text") if (t.text or "").startswith("Not shown")]
    assert note == ["Not shown (no score): unscored/model"]
    assert "unscored/model" not in {
        c.findtext("{http://www.w3.org/2000/svg}title", "").split(":")[0]
        for c in svg.findall("{http://www.w3.org/2000/svg}circle")
    }
