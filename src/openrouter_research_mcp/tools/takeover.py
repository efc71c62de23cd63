"""Replicas take over the jobs of a replica that died (`OPENROUTER_DATABASE_URL` set: several servers, one database).

Every `job_lease_s` seconds (with some jitter, so replicas do not look at once) each replica asks the store for
orphans: research runs and benchmarks still marked running whose holder stopped renewing its lease (it was killed,
or its machine went away), with no cancel stored, paid by the operator's key. Each is resumed here exactly as its
owner's `resume` would resume it — the same code path, as that owner, with their quotas — in the background:
finished steps are kept and never paid again, and the store's lease decides which replica wins when two look at
once (the other is refused and moves on). A research run goes on with what is left of its budget. A job that cannot
be resumed (no budget left, a model gone) is saved as interrupted with the reason, for its owner to see and resume
by hand (the log says why); a job paid by a caller's own key (never stored) waits, interrupted, for its owner.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from ..benchmark.jobs import KIND as BENCHMARK
from ..benchmark.report import BenchmarkInput
from ..errors import OpenRouterError
from ..jobs.store import JobRecord, StoreError
from ..research.manager import KIND as RESEARCH
from ..research.run import ResearchInput
from .benchmark import benchmark_models
from .research import deep_research
from .state import Shared

__all__ = ["BATCH", "take_over", "take_over_forever"]

log = logging.getLogger(__name__)

BATCH = 10  # orphans looked at per round, per replica


async def take_over(shared: Shared, now: float | None = None) -> list[str]:
    """One round: resume the orphans this replica can; returns the ids it took."""
    taken: list[str] = []
    try:
        orphans = await shared.store.orphans(time.time() if now is None else now, BATCH)
    except StoreError as exc:
        log.info("no jobs to take over just now: %s", exc.message)
        return taken
    for record in orphans:
        if await _resume(shared, record):
            taken.append(record.id)
    return taken


async def _resume(shared: Shared, record: JobRecord) -> bool:
    limits = (await shared.accounts.limits_of(record.owner) or shared.default_limits()).over(shared.default_limits())
    state = shared.for_caller(shared.caller(record.owner, limits=limits))
    try:
        if record.kind == RESEARCH:
            budget = float(record.data.get("params", {}).get("max_cost_usd") or 0) - record.cost_usd
            if budget <= 0:
                raise OpenRouterError("its budget is spent")
            await deep_research(state, ResearchInput(resume=record.id, background=True, max_cost_usd=budget))
        elif record.kind == BENCHMARK:
            await benchmark_models(state, BenchmarkInput(resume=record.id, background=True))
        else:
            return False
    except OpenRouterError as exc:
        if "already running" in exc.message or "running in" in exc.message:
            return False  # another replica took it first
        await _give_up(shared, record, exc.message)
        return False
    except ValueError as exc:  # its saved parameters no longer pass the tool's checks (pydantic's ValidationError)
        await _give_up(shared, record, f"its saved parameters are not valid now ({exc.__class__.__name__})")
        return False
    except StoreError as exc:
        log.info("job %s was not taken over: %s", record.id, exc.message)
        return False
    log.info("took over %s %s of %s (its server stopped renewing its lease)", record.kind, record.id, record.owner)
    return True


async def _give_up(shared: Shared, record: JobRecord, why: str) -> None:
    """Save an orphan that cannot go on as interrupted, saying why, so no replica tries again and its owner sees it."""
    record.status = "interrupted"
    record.data = {**record.data, "status": "interrupted", "stopped_because": "interrupted"}
    try:
        await shared.store.write(record, None)
        log.warning("job %s of %s could not be taken over (%s); saved as interrupted", record.id, record.owner, why)
    except StoreError as exc:
        log.info("job %s was not taken over: %s", record.id, exc.message)


async def take_over_forever(
    shared: Shared, every: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Rounds of `take_over`, every `every` seconds (jittered by up to a quarter), until cancelled."""
    while True:
        await sleep(every * (1 + random.random() / 4))
        try:
            await take_over(shared)
        except Exception:  # a round that fails must not end the loop: the next one tries again
            log.exception("taking over orphaned jobs failed; trying again in %g s", every)
