"""The research loop: plan, research in parallel (researchers that search and read), reflect, repeat, write, then
check every citation against its source.

Money and time are budgets, not hopes. The plan is scaled up front so its worst case fits `max_cost_usd`
(`planning.py`); before each call its worst case is reserved (the writer's and verifier's share is held back from
the start) and a call that does not fit is not started. Research stops at the work deadline so the writer keeps its
share of `max_seconds`; if the writer cannot run, a report is assembled in code from the findings, and its citations
are checked all the same. The run is saved after every step, and a stopped run can be resumed without repeating
(or paying again for) the research already done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Literal

from .._util import Progress, usd
from ..config import Settings
from ..errors import AuthError, BudgetExceededError, CreditsError, OpenRouterError
from ..openrouter.budget import Budget, Meter, Reservation
from ..openrouter.completion import ChatResult
from ..openrouter.models import ModelInfo
from ..openrouter.pricing import Usage
from ..openrouter.request import WebPlan, provider_body, structured_params, web_params
from ..openrouter.structured import ask_for_json
from ..openrouter.tokens import messages_bound
from .ledger import CitationLedger
from .marks import renumber
from .planning import (
    MAX_SOURCES_PER_CALL,
    PLAN_MAX_TOKENS,
    REFLECT_MAX_TOKENS,
    RESEARCH_MAX_TOKENS,
    choose_plan,
)
from .prompts import PLAN_SCHEMA, REFLECT_SCHEMA, checked_questions, plan_messages, reflect_messages, search_messages
from .run import ResearchParams, ResearchPlan, ResearchRun, Round, Stage, Stop, SubQuestion
from .writing import MethodFacts, Report, assemble_report, finish_hold, write_report

__all__ = ["ActiveRun", "Chat", "ResearchEngine", "RunFailed", "Saver", "Stop"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # progress is re-sent at least this often while work runs (hosts want one every 10 s)
FINISHING: tuple[Stage, ...] = ("outline", "write", "verify")  # stages that may use the writer's share of the time


# One upstream chat call on the caller's behalf (their key, their usage ledger): `OpenRouterClient.chat`, bound.
Chat = Callable[..., Awaitable[ChatResult]]
# Saves the run (its whole data) wherever the job system keeps it.
Saver = Callable[[ResearchRun], Awaitable[None]]


class RunFailed(OpenRouterError):
    """The run ended without any usable research (every researcher failed); its report says why."""


class _AccountProblem(Exception):
    """The key or the credits failed: every further call would fail too, so the run ends with this error."""

    def __init__(self, error: OpenRouterError) -> None:
        super().__init__(error.message)
        self.error = error


class ResearchEngine:
    """Runs one `ResearchRun` to its end, saving it as it goes."""

    def __init__(self, settings: Settings) -> None:
        self.web_mode = settings.web_search
        self.search_engine = settings.web_engine
        self.fetch_engine = settings.fetch_engine
        self.concurrency = settings.research_concurrency
        self.provider = provider_body(settings)

    def web_plan(self, plan: ResearchPlan | None = None) -> WebPlan:
        """A researcher's web work: forced to search, then free to open and read pages, within the plan's counts."""
        base = WebPlan(
            searches=1,
            fetches=0,
            max_results=5,
            search_engine=self.search_engine,
            fetch_engine=self.fetch_engine,
            force="search",
        )
        return replace(base, searches=plan.searches, fetches=plan.fetches) if plan is not None else base

    def plan_for(self, run: ResearchRun, models: dict[str, ModelInfo | None]) -> ResearchPlan:
        """The largest plan that fits the run's budget and time (raises `BudgetExceededError` when none does)."""
        return choose_plan(run.params, models, self.web_plan())

    async def run(
        self,
        run: ResearchRun,
        models: dict[str, ModelInfo | None],
        *,
        chat: Chat,
        save: Saver,
        progress: Progress,
        started: float | None = None,
        stopped_as: Callable[[], Literal["cancelled", "interrupted"]] = lambda: "cancelled",
    ) -> ResearchRun:
        """Carry `run` through every stage (or on from where it stopped), making its calls with `chat` and saving it
        with `save` after every step; returns it finished (done, with why it stopped). When its task is cancelled,
        it is saved with its partial report as `stopped_as()` says, and the cancel goes on."""
        return await ActiveRun(self, run, models, progress, started, stopped_as, chat, save).execute()


class ActiveRun:
    """One run being carried out: its budget, deadlines, ledger and stages."""

    def __init__(
        self,
        engine: ResearchEngine,
        run: ResearchRun,
        models: dict[str, ModelInfo | None],
        progress: Progress,
        started: float | None,
        stopped_as: Callable[[], Literal["cancelled", "interrupted"]],
        chat: Chat,
        saver: Saver,
    ) -> None:
        self.engine, self.run, self.models, self.report_progress = engine, run, models, progress
        self.stopped_as, self.chat, self.saver = stopped_as, chat, saver
        p = run.params
        self.plan = run.plan or engine.plan_for(run, models)
        run.plan = self.plan
        self.started = time.monotonic() if started is None else started
        self.deadline = self.started + p.max_seconds
        # The writer's share of the time: a quarter, at least 10 s where the run allows it.
        self.work_deadline = self.deadline - min(max(p.max_seconds * 0.25, 10.0), p.max_seconds * 0.5)
        self.budget = Budget(p.max_cost_usd)  # for this session's spend (a resumed run's earlier spend is paid)
        self.ledger = CitationLedger(run.sources, run.evidence)
        self.tick = 0
        self.message = "starting"

    # ----------------------------------------------------------------------------------------------- helpers

    async def say(self, message: str) -> None:
        self.tick += 1
        self.message = self.run.progress = message
        with contextlib.suppress(Exception):  # a client that went away must not stop the research
            await self.report_progress(self.tick, None, message)

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            elapsed = time.monotonic() - self.started
            await self.say(f"{self.message.split(' (')[0]} ({elapsed:.0f} s, {usd(self.budget.spent)} spent)")

    async def save(self) -> None:
        self.run.sources = list(self.ledger.entries)
        self.run.evidence = dict(self.ledger.evidence)
        self.run.updated_at = time.time()
        self.run.timings["elapsed_s"] = round(time.monotonic() - self.started, 3)
        await self.saver(self.run)

    def stop(self, why: str) -> None:
        if self.run.stopped_because is None:
            self.run.stopped_because = why  # type: ignore[assignment]

    def reserve(
        self, stage: Stage, model: str, messages: list[dict[str, Any]], max_tokens: int, web: WebPlan | None = None
    ) -> Reservation:
        """Set aside a call's worst case (its messages at their token bound), or stop the run (time or budget) when
        it cannot start."""
        if time.monotonic() >= (self.deadline if stage in FINISHING else self.work_deadline):
            self.stop("time")
            raise Stop
        info = self.models.get(model)
        web = web or WebPlan()
        worst = web.worst_case(info.pricing, messages_bound(messages), max_tokens) if info else None
        try:
            return self.budget.reserve(worst, f"the {stage} call to `{model}`")
        except BudgetExceededError:
            self.stop("budget")
            raise Stop from None

    async def call(
        self,
        stage: Stage,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        reservation: Reservation,
        stream: bool = True,
        **extra: Any,
    ) -> ChatResult:
        """One upstream call whose first attempt uses `reservation` (a retry reserves the same again, or is not made),
        each attempt settled with what it cost, and all of it counted in the run's spend."""
        deadline = self.deadline if stage in FINISHING else self.work_deadline
        extra.setdefault("provider", self.engine.provider)
        label = f"a retry of the {stage} call to `{model}`"
        meter = Meter(self.budget, lambda _model: reservation.amount, label, first=reservation)
        try:
            result = await self.chat(
                messages,
                meter=meter,
                model=model,
                fallback_models=[],
                stream=stream,
                deadline=deadline,
                max_tokens=max_tokens,
                **extra,
            )
        except OpenRouterError as exc:
            self.run.upstream_requests += sum(1 + a.retries for a in exc.attempts) or 1
            if isinstance(exc.usage, Usage):  # failed attempts that were billed all the same
                self.run.spend_line(stage, model).record(exc.usage)
            if isinstance(exc, AuthError | CreditsError):
                raise _AccountProblem(exc) from None
            raise
        finally:
            meter.close()
        self.run.upstream_requests += sum(1 + a.retries for a in result.attempts)
        self.run.spend_line(stage, result.model).record(result.usage)
        for warning in result.warnings:
            if warning not in self.run.warnings:
                self.run.warnings.append(warning)
        return result

    async def structured(
        self,
        stage: Stage,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        name: str,
        schema: dict[str, Any],
        check: Callable[[str, str], dict[str, Any]],
    ) -> dict[str, Any]:
        """A JSON answer held to `schema` (non-streamed, so upstream response healing works) and to `check` in code;
        one more call, reserved like the first, when the first answer is unusable."""
        params = structured_params(name, schema, self.engine.provider)

        async def call(attempt: list[dict[str, Any]]) -> ChatResult:
            reservation = self.reserve(stage, model, attempt, max_tokens)
            return await self.call(
                stage, model, attempt, max_tokens, reservation, stream=False, temperature=0, **params
            )

        return await ask_for_json(call, messages, check)

    async def _keep_partial(self) -> None:
        self.publish(await assemble_report(self))
        await self.save()

    # ---------------------------------------------------------------------- what writing the report needs (Drafting)

    @property
    def params(self) -> ResearchParams:
        return self.run.params

    @property
    def open_questions(self) -> list[str]:
        return self.run.open_questions

    @property
    def partial(self) -> bool:
        return self.run.stopped_because not in (None, "done")

    def findings(self) -> list[SubQuestion]:
        return self.done()

    def model_info(self, model: str) -> ModelInfo | None:
        return self.models.get(model)

    @property
    def budget_left(self) -> float:
        return self.budget.remaining

    def facts(self) -> MethodFacts:
        run = self.run
        return MethodFacts(
            searches=run.searches,
            pages_read=run.pages_read,
            researcher_calls=sum(1 for r in run.rounds for sq in r.sub_questions if sq.status in ("done", "failed")),
            rounds=len(run.rounds),
            cost_usd=run.cost_usd,
            seconds=round(time.monotonic() - self.started + run.timings.get("earlier_s", 0.0), 1),
        )

    async def complete(self, stage: Stage, model: str, messages: list[dict[str, Any]], max_tokens: int) -> str:
        reservation = self.reserve(stage, model, messages, max_tokens)
        return (await self.call(stage, model, messages, max_tokens, reservation)).text

    def publish(self, report: Report) -> None:
        """Keep a finished report in the run; its duration is the one the report's Method section states."""
        run = self.run
        run.report, run.citations, run.verification = report.text, report.citations, report.verification
        run.removed_citations = report.removed
        run.sources, run.evidence = list(self.ledger.entries), dict(self.ledger.evidence)
        run.timings.update(report.timings)
        run.timings["total_s"] = report.seconds
        for warning in report.warnings:
            if warning not in run.warnings:
                run.warnings.append(warning)

    def done(self) -> list[SubQuestion]:
        return [sq for r in self.run.rounds for sq in r.sub_questions if sq.status == "done"]

    # ------------------------------------------------------------------------------------------------ stages

    async def plan_questions(self) -> list[SubQuestion]:
        p, breadth = self.run.params, self.plan.breadth
        await self.say("planning")
        t = time.monotonic()
        try:
            data = await self.structured(
                "plan",
                p.planner_model,
                plan_messages(p.question, breadth, p.clarifications),
                PLAN_MAX_TOKENS,
                "research_plan",
                PLAN_SCHEMA,
                functools.partial(checked_questions, "sub_questions", 1, breadth),
            )
        except (OpenRouterError, Stop) as exc:
            log.warning("planning failed (%s); researching the question as asked", exc)
            data = {}
        finally:
            self.run.timings["plan_s"] = round(time.monotonic() - t, 3)
        subs = _sub_questions(data.get("sub_questions"), breadth)
        return subs or [SubQuestion(question=p.question, rationale="the question as asked")]

    async def research_one(self, sq: SubQuestion, index: int, total: int, gate: asyncio.Semaphore) -> None:
        p = self.run.params
        async with gate:
            messages = search_messages(p.question, sq.question, self.plan.fetches)
            web = self.engine.web_plan(self.plan)
            try:
                reservation = self.reserve("search", p.searcher_model, messages, RESEARCH_MAX_TOKENS, web)
            except Stop:
                sq.status = "skipped"
                return
            await self.say(f"researching {index}/{total}: {sq.question[:80]}")
            try:
                # The server-tool loop may spend at most what was reserved for the whole call.
                fields = web_params(web, self.engine.web_mode, reservation.amount)
                result = await self.call(
                    "search", p.searcher_model, messages, RESEARCH_MAX_TOKENS, reservation, **fields
                )
            except OpenRouterError as exc:
                sq.status, sq.error = "failed", exc.message
                if time.monotonic() >= self.work_deadline:
                    self.stop("time")
                return
            self.run.searches += result.usage.web_search_requests
            self.run.pages_read += result.usage.web_fetch_requests
            numbers = [
                self.ledger.add(c.url, c.title, c.snippet, sq.question) for c in result.citations[:MAX_SOURCES_PER_CALL]
            ]
            sq.sources = sorted({n for n in numbers if n is not None})
            sq.finding = renumber(result.text, numbers)
            sq.status = "done"
        await self.save()

    async def research_round(self, round_: Round) -> int:
        """Research every pending sub-question of the round in parallel; returns how many new sources it found."""
        before = len(self.ledger)
        gate = asyncio.Semaphore(self.engine.concurrency)
        t = time.monotonic()
        pending = [sq for sq in round_.sub_questions if sq.status == "pending"]
        try:
            async with asyncio.TaskGroup() as group:
                for i, sq in enumerate(pending, start=1):
                    group.create_task(self.research_one(sq, i, len(pending), gate))
        except* _AccountProblem as problems:  # the other researchers were cancelled by the group
            raise problems.exceptions[0] from None
        key = f"research_round_{round_.n}_s"
        self.run.timings[key] = round(self.run.timings.get(key, 0.0) + time.monotonic() - t, 3)
        return len(self.ledger) - before

    async def reflect(self, breadth: int) -> tuple[list[str], list[SubQuestion]]:
        p = self.run.params
        await self.say("reflecting on the findings")
        t = time.monotonic()
        try:
            data = await self.structured(
                "reflect",
                p.planner_model,
                reflect_messages(p.question, self.done(), breadth),
                REFLECT_MAX_TOKENS,
                "research_gaps",
                REFLECT_SCHEMA,
                functools.partial(checked_questions, "follow_up_questions", 0, breadth),
            )
        finally:
            self.run.timings["reflect_s"] = round(self.run.timings.get("reflect_s", 0) + time.monotonic() - t, 3)
        asked = {sq.question.strip().lower() for r in self.run.rounds for sq in r.sub_questions}
        follow = [
            sq
            for sq in _sub_questions(data.get("follow_up_questions"), breadth)
            if sq.question.strip().lower() not in asked
        ]
        return list(data["gaps"]), follow

    async def research(self) -> None:
        """Every round up to the plan's depth; a resumed run finishes its last round's open questions first."""
        breadth = self.plan.breadth
        if self.run.rounds:
            round_ = self.run.rounds[-1]
            for sq in round_.sub_questions:
                if sq.status != "done":
                    sq.status, sq.error = "pending", None
            breadth = max(1, self.plan.breadth // 2 ** (round_.n - 1))
        else:
            round_ = Round(n=1, sub_questions=await self.plan_questions())
            self.run.rounds.append(round_)
        while True:
            await self.save()
            new_sources = await self.research_round(round_)
            if self.run.stopped_because or round_.n >= self.plan.depth:
                return
            if new_sources == 0:
                log.info("round %d brought no new sources; stopping", round_.n)
                return
            breadth = max(1, breadth // 2)
            try:
                gaps, subs = await self.reflect(breadth)
            except (Stop, OpenRouterError) as exc:
                if time.monotonic() >= self.work_deadline:
                    self.stop("time")
                log.info("no further round: %s", exc)
                return
            round_.gaps = gaps
            self.run.open_questions = gaps
            if not subs:
                return
            round_ = Round(n=round_.n + 1, sub_questions=subs)
            self.run.rounds.append(round_)

    # ------------------------------------------------------------------------------------------------- driver

    async def execute(self) -> ResearchRun:
        self.run.status, self.run.stopped_because = "running", None
        hold = self.budget.reserve(finish_hold(self.run, self.models), f"writing with `{self.run.params.writer_model}`")
        beat = asyncio.create_task(self.heartbeat())
        try:
            await self.research()
            self.budget.release(hold)
            subs = [sq for r in self.run.rounds for sq in r.sub_questions]
            if subs and not any(sq.status == "done" for sq in subs) and any(sq.status == "failed" for sq in subs):
                self.stop("failed")  # every researcher failed: say why rather than report nothing as done
                self.run.error = next(sq.error for sq in subs if sq.status == "failed")
            self.publish(await write_report(self))
            self.stop("done")
            self.run.progress = f"finished ({self.run.stopped_because})"
        except _AccountProblem as problem:
            self.stop("failed")
            self.run.error = problem.error.message
            self.run.progress = "failed: " + problem.error.message
            await self._keep_partial()
            raise problem.error from None
        except asyncio.CancelledError:
            why = self.stopped_as()
            self.stop(why)
            self.run.status = why
            resumable = " (resume it with deep_research resume=<id>)" if why == "interrupted" else ""
            self.run.progress = f"{why}; the findings so far are kept{resumable}"
            await asyncio.shield(self._keep_partial())
            raise
        finally:
            beat.cancel()
            # asyncio.wait never raises the heartbeat's own CancelledError, so a cancel of this task still lands.
            await asyncio.wait([beat])
        await self.save()
        if self.run.stopped_because == "failed":
            raise RunFailed(self.run.error or "every researcher failed")
        return self.run


def _sub_questions(raw: Any, limit: int) -> list[SubQuestion]:
    out: list[SubQuestion] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and str(item.get("question") or "").strip():
            out.append(SubQuestion(question=str(item["question"]).strip(), rationale=str(item.get("rationale") or "")))
    return out[:limit]
