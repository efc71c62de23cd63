"""The research loop: plan, search in parallel, reflect, repeat, write, then check every citation in code.

Money and time are budgets, not hopes. Before each call its worst case is reserved against `max_cost_usd` (the
writer's share is held back from the start), and a call that does not fit is not started. Search work stops at
the work deadline so the writer always has its share of `max_seconds`; if the writer cannot run, a report is
assembled in code from what was found. The run is saved after every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from .._util import Progress
from ..config import Settings
from ..errors import AuthError, BudgetExceededError, CreditsError, OpenRouterError
from ..openrouter.budget import Budget, Reservation
from ..openrouter.client import OpenRouterClient
from ..openrouter.completion import ChatResult
from ..openrouter.models import ModelInfo
from ..openrouter.pricing import worst_case_cost
from ..openrouter.request import WebPlan, provider_body, structured_params, web_params
from ..openrouter.structured import ask_for_json
from .ledger import SNIPPET_CHARS, CitationLedger
from .prompts import (
    PLAN_SCHEMA,
    REFLECT_SCHEMA,
    checked_questions,
    plan_messages,
    reflect_messages,
    search_messages,
    write_messages,
)
from .run import ResearchRun, Round, Stage, SubQuestion
from .store import RunStore
from .verify import source_list, verify_citations

__all__ = ["ResearchEngine", "preflight"]

log = logging.getLogger(__name__)


SEARCHES_PER_QUESTION = 1  # searches one searcher call may run
PLAN_MAX_TOKENS = 800
SEARCH_MAX_TOKENS = 900
REFLECT_MAX_TOKENS = 700
WRITE_MAX_TOKENS = 3000
MAX_SOURCES_PER_SEARCH = 8  # citations kept from one search; the writer's budget hold assumes no more
UNSAVED = "This run could not be saved to disk"
HEARTBEAT_S = 5.0  # progress is re-sent at least this often while work runs (hosts want one every 10 s)


class _Stop(Exception):
    """No more work may start (budget or time)."""


class _AccountProblem(Exception):
    """The key or the credits failed: every further call would fail too, so the run ends with this error."""

    def __init__(self, error: OpenRouterError) -> None:
        super().__init__(error.message)
        self.error = error


class ResearchEngine:
    """Runs one `ResearchRun` to its end, saving it as it goes."""

    def __init__(self, client: OpenRouterClient, store: RunStore, settings: Settings) -> None:
        self.client = client
        self.store = store
        self.web_mode = settings.web_search
        self.search_engine = settings.web_engine
        self.fetch_engine = settings.fetch_engine
        self.concurrency = settings.research_concurrency
        self.provider = provider_body(settings)

    def web_plan(self) -> WebPlan:
        """A searcher's web work: forced to search, within a bounded number of searches."""
        return WebPlan(
            searches=SEARCHES_PER_QUESTION,
            max_results=5,
            search_engine=self.search_engine,
            fetch_engine=self.fetch_engine,
            force="search",
        )

    async def run(
        self,
        run: ResearchRun,
        models: dict[str, ModelInfo | None],
        progress: Progress,
        started: float | None = None,
        stopped_as: Callable[[str], Literal["cancelled", "interrupted"]] = lambda _id: "cancelled",
    ) -> ResearchRun:
        """Carry `run` through every stage; returns it finished (done, budget, time or failed). When its task is
        cancelled, the run is saved with its partial report as `stopped_as(research_id)` says; the cancel goes on."""
        return await _Run(self, run, models, progress, started, stopped_as).execute()

    async def save(self, run: ResearchRun) -> None:
        """Save a copy of `run` on a worker thread. When the disk refuses, the run stays in memory for the session
        and its warnings say why, once."""
        problem = await asyncio.to_thread(self.store.save, run.model_copy(deep=True))
        if problem is not None and not any(w.startswith(UNSAVED) for w in run.warnings):
            run.warnings.append(
                f"{UNSAVED}: {problem}. It is kept in memory until the server stops; fix the data "
                "directory (OPENROUTER_DATA_DIR) to keep future runs."
            )


class _Run:
    def __init__(
        self,
        engine: ResearchEngine,
        run: ResearchRun,
        models: dict[str, ModelInfo | None],
        progress: Progress,
        started: float | None,
        stopped_as: Callable[[str], Literal["cancelled", "interrupted"]],
    ) -> None:
        self.engine, self.run, self.models, self.report_progress = engine, run, models, progress
        self.stopped_as = stopped_as
        p = run.params
        self.started = time.monotonic() if started is None else started
        self.deadline = self.started + p.max_seconds
        # The writer's share of the time: a quarter, at least 10 s where the run allows it.
        self.work_deadline = self.deadline - min(max(p.max_seconds * 0.25, 10.0), p.max_seconds * 0.5)
        self.budget = Budget(p.max_cost_usd)
        self.ledger = CitationLedger(run.sources)
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
            await self.say(f"{self.message.split(' (')[0]} ({elapsed:.0f} s, ${self.budget.spent:.4f} spent)")

    async def save(self) -> None:
        self.run.sources = list(self.ledger.entries)
        self.run.updated_at = time.time()
        self.run.timings["elapsed_s"] = round(time.monotonic() - self.started, 3)
        await self.engine.save(self.run)

    def stop(self, why: str) -> None:
        if self.run.stopped_because is None:
            self.run.stopped_because = why  # type: ignore[assignment]

    def reserve(
        self, stage: Stage, model: str, prompt_chars: int, max_tokens: int, web: WebPlan | None = None
    ) -> Reservation:
        if time.monotonic() >= (self.deadline if stage == "write" else self.work_deadline):
            self.stop("time")
            raise _Stop
        info = self.models.get(model)
        web = web or WebPlan()
        worst = (
            worst_case_cost(
                info.pricing,
                prompt_chars,
                max_tokens,
                web_searches=web.searches,
                search_engine=web.search_engine,
                web_fetches=web.fetches,
                fetch_engine=web.fetch_engine,
                extra_prompt_tokens=web.extra_prompt_tokens(),
            )
            if info
            else None
        )
        try:
            return self.budget.reserve(worst, f"the {stage} call to `{model}`")
        except BudgetExceededError:
            self.stop("budget")
            raise _Stop from None

    async def call(
        self,
        stage: Stage,
        model: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        reservation: Reservation,
        stream: bool = True,
        **extra: Any,
    ) -> ChatResult:
        deadline = self.deadline if stage == "write" else self.work_deadline
        extra.setdefault("provider", self.engine.provider)
        try:
            result = await self.engine.client.chat(
                messages,
                model=model,
                fallback_models=[],
                stream=stream,
                deadline=deadline,
                max_tokens=max_tokens,
                **extra,
            )
        except OpenRouterError as exc:
            self.run.upstream_requests += sum(1 + a.retries for a in exc.attempts) or 1
            self.budget.settle_failure(reservation, exc)
            if isinstance(exc, AuthError | CreditsError):
                raise _AccountProblem(exc) from None
            raise
        self.run.upstream_requests += sum(1 + a.retries for a in result.attempts)
        self.budget.settle(reservation, result.usage.cost_usd)
        self.run.spend_line(stage, result.model).record(result.usage)
        return result

    async def structured(
        self,
        stage: Stage,
        model: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        name: str,
        schema: dict[str, Any],
        check: Callable[[str, str], dict[str, Any]],
    ) -> dict[str, Any]:
        """A JSON answer held to `schema` (non-streamed, so upstream response healing works) and to `check` in code;
        one more call, reserved like the first, when the first answer is unusable."""
        params = structured_params(name, schema, self.engine.provider)

        async def call(attempt: list[dict[str, Any]]) -> ChatResult:
            chars = sum(len(str(m["content"])) for m in attempt)
            reservation = self.reserve(stage, model, chars, max_tokens)
            return await self.call(
                stage, model, attempt, max_tokens, reservation, stream=False, temperature=0, **params
            )

        return await ask_for_json(call, messages, check)

    # ------------------------------------------------------------------------------------------------ stages

    async def plan(self) -> list[SubQuestion]:
        p = self.run.params
        await self.say("planning")
        t = time.monotonic()
        try:
            data = await self.structured(
                "plan",
                p.planner_model,
                plan_messages(p.question, p.breadth),
                PLAN_MAX_TOKENS,
                "research_plan",
                PLAN_SCHEMA,
                functools.partial(checked_questions, "sub_questions", 1, p.breadth),
            )
        except (OpenRouterError, _Stop) as exc:
            log.warning("planning failed (%s); researching the question as asked", exc)
            data = {}
        finally:
            self.run.timings["plan_s"] = round(time.monotonic() - t, 3)
        subs = _sub_questions(data.get("sub_questions"), p.breadth)
        return subs or [SubQuestion(question=p.question, rationale="the question as asked")]

    def web_plan(self) -> WebPlan:
        """A searcher's web work: forced to search, within a bounded number of searches."""
        return WebPlan(
            searches=SEARCHES_PER_QUESTION,
            max_results=5,
            search_engine=self.engine.search_engine,
            fetch_engine=self.engine.fetch_engine,
            force="search",
        )

    async def search_one(self, sq: SubQuestion, index: int, total: int, gate: asyncio.Semaphore) -> None:
        p = self.run.params
        async with gate:
            messages = search_messages(p.question, sq.question)
            web = self.engine.web_plan()
            try:
                reservation = self.reserve(
                    "search", p.searcher_model, sum(len(m["content"]) for m in messages), SEARCH_MAX_TOKENS, web
                )
            except _Stop:
                sq.status = "skipped"
                return
            await self.say(f"searching {index}/{total}: {sq.question[:80]}")
            try:
                # The server-tool loop may spend at most what was reserved for the whole call.
                web_fields = web_params(web, self.engine.web_mode, reservation.amount)
                result = await self.call(
                    "search", p.searcher_model, messages, SEARCH_MAX_TOKENS, reservation, **web_fields
                )
            except OpenRouterError as exc:
                sq.status, sq.error = "failed", exc.message
                if time.monotonic() >= self.work_deadline:
                    self.stop("time")
                return
            numbers = [
                self.ledger.add(c.url, c.title, c.snippet, sq.question)
                for c in result.citations[:MAX_SOURCES_PER_SEARCH]
            ]
            sq.sources = [n for n in numbers if n is not None]
            sq.finding = _renumber(result.text, numbers)
            sq.status = "done"
        await self.save()

    async def search(self, round_: Round) -> int:
        before = len(self.ledger)
        gate = asyncio.Semaphore(self.engine.concurrency)
        t = time.monotonic()
        total = len(round_.sub_questions)
        try:
            async with asyncio.TaskGroup() as group:
                for i, sq in enumerate(round_.sub_questions, start=1):
                    group.create_task(self.search_one(sq, i, total, gate))
        except* _AccountProblem as problems:  # the other searches were cancelled by the group
            raise problems.exceptions[0] from None
        self.run.timings[f"search_round_{round_.n}_s"] = round(time.monotonic() - t, 3)
        return len(self.ledger) - before

    async def reflect(self, breadth: int) -> tuple[list[str], list[SubQuestion]]:
        p = self.run.params
        await self.say("reflecting on the findings")
        done = [sq for r in self.run.rounds for sq in r.sub_questions if sq.status == "done"]
        t = time.monotonic()
        try:
            data = await self.structured(
                "reflect",
                p.planner_model,
                reflect_messages(p.question, done, breadth),
                REFLECT_MAX_TOKENS,
                "research_gaps",
                REFLECT_SCHEMA,
                functools.partial(checked_questions, "follow_up_questions", 0, breadth),
            )
        finally:
            self.run.timings["reflect_s"] = round(self.run.timings.get("reflect_s", 0) + time.monotonic() - t, 3)
        gaps = list(data["gaps"])
        asked = {sq.question.strip().lower() for r in self.run.rounds for sq in r.sub_questions}
        follow = [
            sq
            for sq in _sub_questions(data.get("follow_up_questions"), breadth)
            if sq.question.strip().lower() not in asked
        ]
        return gaps, follow

    async def write(self) -> None:
        p = self.run.params
        await self.say("writing the report")
        done = [sq for r in self.run.rounds for sq in r.sub_questions if sq.status == "done"]
        partial = self.run.stopped_because not in (None, "done")
        messages = write_messages(p.question, done, self.ledger.entries, partial)
        t = time.monotonic()
        report = ""
        try:
            if done:
                reservation = self.reserve(
                    "write", p.writer_model, sum(len(m["content"]) for m in messages), WRITE_MAX_TOKENS
                )
                report = (await self.call("write", p.writer_model, messages, WRITE_MAX_TOKENS, reservation)).text
        except (_Stop, OpenRouterError) as exc:
            log.warning("writer unavailable (%s); assembling the report from the findings", exc)
        self.run.timings["write_s"] = round(time.monotonic() - t, 3)
        if not report.strip():
            report = _assembled_report(p.question, done, self.run.open_questions)
        checked, removed = verify_citations(report, self.ledger)
        self.run.removed_citations = removed
        self.run.report = f"{checked.rstrip()}\n\n{source_list(self.ledger)}\n"

    # ------------------------------------------------------------------------------------------------- driver

    def keep_partial_report(self) -> None:
        """A report assembled in code from the findings so far (no model call), for runs that end abruptly."""
        done = [sq for r in self.run.rounds for sq in r.sub_questions if sq.status == "done"]
        checked, _ = verify_citations(
            _assembled_report(self.run.params.question, done, self.run.open_questions), self.ledger
        )
        self.run.report = f"{checked}\n\n{source_list(self.ledger)}\n"

    async def execute(self) -> ResearchRun:
        p = self.run.params
        writer_hold = self.budget.reserve(_writer_worst_case(self.run, self.models), _writer_label(self.run))
        beat = asyncio.create_task(self.heartbeat())
        try:
            await self.research(p.breadth, p.depth)
            self.budget.release(writer_hold)
            subs = [sq for r in self.run.rounds for sq in r.sub_questions]
            if subs and not any(sq.status == "done" for sq in subs) and any(sq.status == "failed" for sq in subs):
                self.stop("failed")  # every search failed: say why rather than report nothing as done
                self.run.error = next(sq.error for sq in subs if sq.status == "failed")
            await self.write()
            self.stop("done")
            self.run.status = self.run.stopped_because or "done"
            self.run.progress = f"finished ({self.run.stopped_because})"
        except _AccountProblem as problem:
            self.stop("failed")
            self.run.status, self.run.error = "failed", problem.error.message
            self.run.progress = "failed: " + problem.error.message
            self.keep_partial_report()
            await self.save()
            raise problem.error from None
        except asyncio.CancelledError:
            why = self.stopped_as(self.run.research_id)
            self.stop(why)
            self.run.status = why
            self.run.progress = f"{why}; the findings so far are kept" + (
                " (resume it with deep_research resume=<id>)" if why == "interrupted" else ""
            )
            self.keep_partial_report()
            await asyncio.shield(self.save())
            raise
        finally:
            beat.cancel()
            # asyncio.wait never raises the heartbeat's own CancelledError, so a cancel of this task still lands.
            await asyncio.wait([beat])
        self.run.timings["total_s"] = round(time.monotonic() - self.started, 3)
        await self.save()
        return self.run

    async def research(self, breadth: int, depth: int) -> None:
        subs = await self.plan()
        for n in range(1, depth + 1):
            round_ = Round(n=n, sub_questions=subs)
            self.run.rounds.append(round_)
            await self.save()
            new_sources = await self.search(round_)
            if self.run.stopped_because or n == depth:
                break
            if new_sources == 0:
                log.info("round %d brought no new sources; stopping", n)
                break
            breadth = max(1, breadth // 2)
            try:
                gaps, subs = await self.reflect(breadth)
            except (_Stop, OpenRouterError) as exc:
                if time.monotonic() >= self.work_deadline:
                    self.stop("time")
                log.info("no further round: %s", exc)
                break
            round_.gaps = gaps
            self.run.open_questions = gaps
            if not subs:
                break


def _renumber(text: str, ledger_numbers: Sequence[int | None]) -> str:
    """A search answer numbers its own citations [1], [2]…; point them at the ledger's numbers instead."""

    def swap(match: re.Match[str]) -> str:
        i = int(match.group(1))
        n = ledger_numbers[i - 1] if 0 < i <= len(ledger_numbers) else None
        return f"[{n}]" if n is not None else ""

    return re.sub(r"\[(\d+)\]", swap, text)


def _sub_questions(raw: Any, limit: int) -> list[SubQuestion]:
    out: list[SubQuestion] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and str(item.get("question") or "").strip():
            out.append(SubQuestion(question=str(item["question"]).strip(), rationale=str(item.get("rationale") or "")))
    return out[:limit]


def _assembled_report(question: str, done: Sequence[SubQuestion], open_questions: Sequence[str]) -> str:
    """A plain report built in code from the findings, for when the writer cannot run."""
    lines = [f"# {question}", "", "_Assembled from the research findings without a writer model._", ""]
    if not done:
        lines.append("No findings were gathered before the run stopped.")
    for sq in done:
        cites = "".join(f"[{n}]" for n in sq.sources)
        lines += [f"## {sq.question}", "", f"{sq.finding.strip()} {cites}".strip(), ""]
    if open_questions:
        lines += ["## Open questions", "", *(f"- {q}" for q in open_questions)]
    return "\n".join(lines)


def _writer_label(run: ResearchRun) -> str:
    return f"writing the report with `{run.params.writer_model}`"


def _writer_worst_case(run: ResearchRun, models: dict[str, ModelInfo | None]) -> float | None:
    """The writer's worst case, set aside before anything else is spent so a report can always be written."""
    p = run.params
    # Every search's answer (at most SEARCH_MAX_TOKENS) and its sources (at most MAX_SOURCES_PER_SEARCH, each a
    # snippet plus title and URL) are what the writer reads, so this bounds its prompt.
    searches = sum(max(1, p.breadth // 2**n) for n in range(p.depth))
    findings = searches * (SEARCH_MAX_TOKENS * 4 + 300 + MAX_SOURCES_PER_SEARCH * (SNIPPET_CHARS + 2400))
    info = models.get(p.writer_model)
    return worst_case_cost(info.pricing, len(p.question) + findings + 3000, WRITE_MAX_TOKENS) if info else None


def preflight(run: ResearchRun, models: dict[str, ModelInfo | None], web: WebPlan) -> None:
    """Refuse, before anything is spent, a run whose budget cannot cover writing, planning and one search."""
    p = run.params
    budget = Budget(p.max_cost_usd)
    budget.reserve(_writer_worst_case(run, models), _writer_label(run))
    plan_chars = sum(len(m["content"]) for m in plan_messages(p.question, p.breadth))
    search_chars = sum(len(m["content"]) for m in search_messages(p.question, p.question))
    for stage, model, chars, tokens, plan in (
        ("plan", p.planner_model, plan_chars, PLAN_MAX_TOKENS, WebPlan()),
        ("search", p.searcher_model, search_chars, SEARCH_MAX_TOKENS, web),
    ):
        info = models.get(model)
        worst = (
            worst_case_cost(
                info.pricing,
                chars,
                tokens,
                web_searches=plan.searches,
                search_engine=plan.search_engine,
                extra_prompt_tokens=plan.extra_prompt_tokens(),
            )
            if info
            else None
        )
        budget.reserve(worst, f"the {stage} call to `{model}`")
