"""Running a benchmark: every model answers every prompt `runs` times, concurrently up to
OPENROUTER_BENCHMARK_CONCURRENCY; each call is timed (latency, time to first token, output tokens per second) and
priced, and with a judge each answer is scored 1-10 against the reference answer or rubric (structured output).
Each call reserves its own worst case from the benchmark's budget as it goes; a failing model is reported and the
rest go on. A resumed benchmark makes only the calls it is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._constants import JUDGE_MAX_TOKENS
from .._util import Progress, usd
from ..config import Settings
from ..errors import OpenRouterError, StructuredOutputError
from ..openrouter.budget import Budget, Meter
from ..openrouter.completion import ChatResult
from ..openrouter.models import ModelInfo
from ..openrouter.pricing import Usage, worst_case_cost
from ..openrouter.request import provider_body, structured_params
from ..openrouter.structured import ask_for_json, parse_object
from ..openrouter.tokens import messages_bound
from .plan import call_messages, judge_messages
from .report import BenchmarkReport, CallRecord, ModelStats, Objective

__all__ = ["JUDGE_SCHEMA", "MIN_RATE_INTERVAL_S", "Runner", "output_rate", "rank", "tradeoffs"]

log = logging.getLogger(__name__)

Chat = Callable[..., Awaitable[ChatResult]]
ANSWER_KEPT = 2000  # characters of each answer kept in the report
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "reason"],
    "properties": {
        "score": {"type": "number", "description": "1 (useless) to 10 (perfect)"},
        "reason": {"type": "string", "description": "one line: why this score"},
    },
}


MIN_RATE_INTERVAL_S = 0.05  # a generation shorter than this (or in one piece) has no measurable rate


def output_rate(tokens: int, arrivals: Sequence[float]) -> float | None:
    """Output tokens per second over the generation: from the first piece of the answer to the last. None when
    that cannot be measured: the answer came in one piece, or all at once (shorter than MIN_RATE_INTERVAL_S)."""
    if len(arrivals) < 2 or tokens <= 0:
        return None
    interval = arrivals[-1] - arrivals[0]
    return round(tokens / interval, 1) if interval >= MIN_RATE_INTERVAL_S else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 4)


def _stats(model: str, calls: Sequence[CallRecord], prompts: int) -> ModelStats:
    ok = [c for c in calls if c.ok]
    costs = [c.cost_usd for c in ok if c.cost_usd is not None]
    rates = [c.tokens_per_s for c in ok if c.tokens_per_s]
    firsts = [c.ttft_s for c in ok if c.ttft_s is not None]
    scores = [c.score for c in ok if c.score is not None]
    by_prompt = []
    for i in range(prompts):
        mine = [c.score for c in ok if c.prompt == i and c.score is not None]
        by_prompt.append(round(statistics.mean(mine), 2) if mine else None)
    return ModelStats(
        model=model,
        calls=len(calls),
        succeeded=len(ok),
        success_rate=round(len(ok) / max(len(calls), 1), 4),
        latency_p50_s=_percentile([c.latency_s for c in ok], 0.5),
        latency_p95_s=_percentile([c.latency_s for c in ok], 0.95),
        ttft_p50_s=_percentile(firsts, 0.5),
        tokens_per_s=round(statistics.median(rates), 1) if rates else None,
        prompt_tokens_per_call=round(statistics.mean([c.prompt_tokens for c in ok]), 1) if ok else 0.0,
        completion_tokens_per_call=round(statistics.mean([c.completion_tokens for c in ok]), 1) if ok else 0.0,
        cost_per_call_usd=round(statistics.mean(costs), 8) if costs else None,
        cost_usd=round(sum(c.cost_usd or 0.0 for c in calls), 8),
        quality=round(statistics.mean(scores), 2) if scores else None,
        quality_by_prompt=by_prompt,
    )


def _value(s: ModelStats, judged: bool) -> float:
    """Quality per dollar (success rate stands in for quality without a judge)."""
    quality = (s.quality or 0.0) if judged else s.success_rate * 10
    return quality / max(s.cost_per_call_usd or 0.0, 1e-9)


def rank(stats: Sequence[ModelStats], objective: Objective, judged: bool, max_latency_s: float) -> list[ModelStats]:
    """`stats` best first for `objective`; a model that never answered is always last."""
    inf = float("inf")
    keys: dict[str, Callable[[ModelStats], tuple[Any, ...]]] = {
        "quality": lambda s: (-(s.quality or 0.0), s.cost_per_call_usd or inf),
        "cost": lambda s: (s.cost_per_call_usd if s.cost_per_call_usd is not None else inf, s.latency_p50_s or inf),
        "speed": lambda s: (s.latency_p50_s or inf, s.cost_per_call_usd or inf),
        # the best quality per dollar among the models within the latency limit, then the rest
        "balanced": lambda s: ((s.latency_p95_s or inf) > max_latency_s, -_value(s, judged)),
    }
    ordered = sorted(stats, key=lambda s: (s.succeeded == 0, *keys[objective](s)))
    for i, s in enumerate(ordered, start=1):
        s.rank = i
    return ordered


def tradeoffs(ordered: Sequence[ModelStats], objective: Objective, judged: bool, max_latency_s: float) -> str:
    """One paragraph: the pick for the objective, and what the others do better or worse."""
    working = [s for s in ordered if s.succeeded]
    if not working:
        return "No model answered, so there is nothing to rank."
    best = working[0]
    why = {
        "quality": f"scores highest ({best.quality or 0:.1f}/10)",
        "cost": f"costs least ({usd(best.cost_per_call_usd)} per call)",
        "speed": f"answers fastest (median {best.latency_p50_s or 0:.2f} s)",
        "balanced": f"gives the best {'quality' if judged else 'success'} per dollar within the {max_latency_s:g} s "
        "latency limit",
    }[objective]
    parts = [f"For {objective}, `{best.model}` {why}."]
    fastest = min(working, key=lambda s: s.latency_p50_s or float("inf"))
    cheapest = min(working, key=lambda s: s.cost_per_call_usd if s.cost_per_call_usd is not None else float("inf"))
    if fastest is not best:
        parts.append(f"`{fastest.model}` is fastest (median {fastest.latency_p50_s or 0:.2f} s).")
    if cheapest is not best and cheapest.cost_per_call_usd and best.cost_per_call_usd:
        times = best.cost_per_call_usd / cheapest.cost_per_call_usd
        parts.append(
            f"`{cheapest.model}` is cheapest ({usd(cheapest.cost_per_call_usd)} per call, "
            f"{times:.1f}× less than the pick)."
        )
    if judged:
        top = max(working, key=lambda s: s.quality or 0.0)
        if top is not best:
            dearer = (top.cost_per_call_usd or 0) / max(best.cost_per_call_usd or 0, 1e-12)
            parts.append(f"`{top.model}` scores highest ({top.quality or 0:.1f}/10) at {dearer:.1f}× the pick's cost.")
    shaky = [s for s in ordered if s.succeeded < s.calls]
    parts += [f"`{s.model}` failed {s.calls - s.succeeded} of {s.calls} calls." for s in shaky]
    return " ".join(parts)


class Runner:
    """One benchmark run: its calls, judged, timed and priced within the budget. `chat` makes the caller's calls."""

    def __init__(
        self,
        report: BenchmarkReport,
        infos: dict[str, ModelInfo | None],
        *,
        chat: Chat,
        settings: Settings,
        progress: Progress,
    ) -> None:
        self.report, self.infos, self.progress, self.chat, self.settings = report, infos, progress, chat, settings
        spent = report.totals.cost_usd or 0.0  # a resumed benchmark has spent this already, within the same cap
        self.budget = Budget(max(report.params.max_cost_usd - spent, 0.0))
        self.routing = provider_body(settings)
        self.done = len(report.calls)
        self.total = len(report.params.models) * len(report.params.prompts) * report.params.runs

    async def _judge(self, record: CallRecord, answer: str) -> None:
        judge = self.report.params.judge_model
        assert judge is not None
        usages: list[Usage] = []

        async def call(messages: list[dict[str, Any]]) -> ChatResult:
            info = self.infos[judge]
            worst = worst_case_cost(info.pricing, messages_bound(messages), JUDGE_MAX_TOKENS) if info else None
            try:
                result = await self.chat(
                    messages,
                    meter=Meter(self.budget, lambda _model: worst, f"the judge `{judge}`"),
                    model=judge,
                    fallback_models=[],
                    max_tokens=JUDGE_MAX_TOKENS,
                    temperature=0,
                    deadline=time.monotonic() + self.settings.timeout,
                    **structured_params("judgement", JUDGE_SCHEMA, self.routing),
                )
            except OpenRouterError as exc:
                if isinstance(exc.usage, Usage):
                    usages.append(exc.usage)
                raise
            usages.append(result.usage)
            return result

        def check(text: str, model: str) -> dict[str, Any]:
            data = parse_object(text, ["score", "reason"], model)
            score = data["score"]
            real = isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score)
            if not real or not 1 <= score <= 10:  # `true` is no score of 1, nor "9" a score of 9
                raise StructuredOutputError(
                    f"`{model}` gave score {data['score']!r}, not a number from 1 to 10.", model=model
                )
            data["score"] = float(score)
            return data

        messages = judge_messages(self.report.params, record.prompt, answer, record.model)
        try:
            verdict = await ask_for_json(call, messages, check)
            record.score, record.reason = verdict["score"], str(verdict["reason"])[:300]
        except OpenRouterError as exc:
            record.reason = f"not judged: {exc.message}"
        for usage in usages:
            self.report.totals.add(usage)
            self.report.judge_usage.add(usage)

    async def _one(self, model: str, prompt: int, run: int, gate: asyncio.Semaphore) -> None:
        p = self.report.params
        record = CallRecord(model=model, prompt=prompt, run=run, ok=False)
        async with gate:
            info, messages = self.infos[model], call_messages(p, prompt)
            worst = worst_case_cost(info.pricing, messages_bound(messages), p.max_tokens) if info else None
            arrivals: list[float] = []  # when each piece of the answer arrived

            async def on_text(_piece: str) -> None:
                arrivals.append(time.monotonic())

            started = time.monotonic()
            try:
                result = await self.chat(
                    messages,
                    meter=Meter(self.budget, lambda _model: worst, f"`{model}`"),
                    model=model,
                    fallback_models=[],
                    stream=True,
                    deadline=started + self.settings.timeout,
                    on_text=on_text,
                    max_tokens=p.max_tokens,
                    provider=self.routing,
                )
            except OpenRouterError as exc:
                record.error, record.latency_s = exc.message, round(time.monotonic() - started, 4)
                if isinstance(exc.usage, Usage):  # failed attempts that were billed all the same
                    self.report.totals.add(exc.usage)
                    record.cost_usd = exc.usage.cost_usd
            else:
                ended = time.monotonic()
                self.report.totals.add(result.usage)
                record = record.model_copy(
                    update={
                        "ok": True,
                        "latency_s": round(ended - started, 4),
                        "ttft_s": round(arrivals[0] - started, 4) if arrivals else None,
                        "tokens_per_s": output_rate(result.usage.completion_tokens, arrivals),
                        "prompt_tokens": result.usage.prompt_tokens,
                        "completion_tokens": result.usage.completion_tokens,
                        "cost_usd": result.usage.cost_usd,
                        "answer": result.text[:ANSWER_KEPT],
                    }
                )
                if p.judge_model:
                    await self._judge(record, result.text)
        self.report.calls.append(record)
        self.done += 1
        message = f"{self.done}/{self.total}: {model}, prompt {prompt + 1}, run {run + 1}" + (
            "" if record.ok else " (failed)"
        )
        self.report.progress = message
        with contextlib.suppress(Exception):
            await self.progress(self.done, self.total, message)

    def finish(self) -> None:
        p, r = self.report.params, self.report
        judged = p.judge_model is not None
        stats = [_stats(m, [c for c in r.calls if c.model == m], len(p.prompts)) for m in p.models]
        ordered = rank(stats, p.objective, judged, p.max_latency_s)
        r.stats, r.ranking = ordered, [s.model for s in ordered]
        r.tradeoffs = tradeoffs(ordered, p.objective, judged, p.max_latency_s)
        r.calls.sort(key=lambda c: (p.models.index(c.model), c.prompt, c.run))

    def missing(self) -> list[tuple[str, int, int]]:
        """The calls (model, prompt, run) this benchmark has not made yet."""
        p, made = self.report.params, {(c.model, c.prompt, c.run) for c in self.report.calls}
        return [
            (model, prompt, run)
            for run in range(p.runs)
            for prompt in range(len(p.prompts))
            for model in p.models
            if (model, prompt, run) not in made
        ]

    async def run(self, save: Callable[[], Awaitable[None]]) -> BenchmarkReport:
        """Make every missing call; `save` is called after each, so a stop keeps what was made."""
        started = time.monotonic()
        earlier = self.report.wall_time_s
        gate = asyncio.Semaphore(self.settings.benchmark_concurrency)
        self.report.status, self.report.stopped_because = "running", None

        async def one(model: str, prompt: int, run: int) -> None:
            await self._one(model, prompt, run, gate)
            await save()

        try:
            async with asyncio.TaskGroup() as group:
                for model, prompt, run in self.missing():
                    group.create_task(one(model, prompt, run))
            short = any(c.error and "budget is left" in c.error for c in self.report.calls)
            self.report.stopped_because = "budget" if short else "done"
        finally:
            self.report.wall_time_s = round(earlier + time.monotonic() - started, 3)
            self.finish()
        self.report.progress = f"finished ({self.report.stopped_because})"
        return self.report
