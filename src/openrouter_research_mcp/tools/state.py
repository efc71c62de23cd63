"""What the tools share, and what belongs to one caller.

`Shared` lives as long as the server: settings, the HTTP connection pool (the client), the model catalog, the job
store and the job managers. A `Caller` is who is calling: their principal id (`local` over stdio), the OpenRouter
key their calls use and whose it is, and their session's usage ledger. A tool call gets a `CallState`, the two
together, built from the request: nothing a tool does reaches another caller's key, usage or jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import _metrics
from ..benchmark.jobs import BenchmarkJobs
from ..config import Settings
from ..errors import OpenRouterError
from ..jobs.accounts import Accounts, Limits, QuotaGate, open_accounts
from ..jobs.legacy import import_legacy
from ..jobs.manager import JobManager
from ..jobs.store import JobStore, StoreError, UsageRow, open_store
from ..openrouter.budget import Gate
from ..openrouter.catalog import ModelCatalog
from ..openrouter.client import OpenRouterClient
from ..openrouter.completion import ChatResult
from ..openrouter.pricing import SessionUsage, Usage
from ..research.engine import ResearchEngine
from ..research.manager import ResearchJobs
from .legacy import LEGACY_KINDS

__all__ = ["LOCAL", "CallState", "Caller", "Shared", "open_state"]

log = logging.getLogger(__name__)

LOCAL = "local"  # the one caller of a stdio server


@dataclass
class Caller:
    """Who is calling, and what is theirs for this server's lifetime. Made per request; `usage` is the one
    ledger of this principal's calls since the server started, shared by their requests."""

    principal: str
    key: str = field(default="", repr=False)  # the OpenRouter key their calls use: never stored, never logged
    key_source: Literal["operator", "own"] = "operator"
    usage: SessionUsage = field(default_factory=SessionUsage)
    limits: Limits = field(default_factory=Limits)
    gate: Gate | None = None  # their USD quota, held around every attempt (None: no USD quota applies)
    spent_usd: float = 0.0  # what this request's calls cost so far (its log line's cost)
    refused_by: str | None = None  # the quota that refused this request, if one did (its log line and metrics)
    # For a caller whose key came from signing in with OpenRouter (`remote/federation.py`): what they are told when
    # OpenRouter refuses that key (None from it: the error's own message). None: every error says its own message.
    key_refused: Callable[[OpenRouterError], str | None] | None = field(default=None, repr=False)

    def explain(self, exc: OpenRouterError) -> OpenRouterError:
        """`exc`, its message now what this caller is told (a signed-in caller whose key OpenRouter refused: how to
        sign in again), whether it ends a tool call or a job running in the background; once per error."""
        if self.key_refused is not None and not exc.explained:
            exc.explained = True
            exc.message = self.key_refused(exc) or exc.message
        return exc


@dataclass
class Shared:
    """Everything the server holds for all callers (see the module docstring)."""

    settings: Settings
    client: OpenRouterClient
    catalog: ModelCatalog
    store: JobStore
    jobs: JobManager
    research: ResearchJobs
    benchmarks: BenchmarkJobs
    accounts: Accounts
    usages: dict[str, SessionUsage] = field(default_factory=dict)
    imported: asyncio.Task[int] | None = None

    def caller(
        self, principal: str = LOCAL, key: str | None = None, *, own_key: bool = False, limits: Limits | None = None
    ) -> Caller:
        """A caller with this principal id, using `key` (default: the server's key) and `limits` (default: none).
        Each request gets its own `Caller`, so two requests never share one's key; a caller on their own key is
        held to their calls and jobs limits only."""
        operator = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        usage = self.usages.get(principal)
        if usage is None:
            usage = self.usages[principal] = SessionUsage()
        limits = limits or Limits()
        if own_key:
            limits = Limits(calls_per_minute=limits.calls_per_minute, jobs=limits.jobs)
        gate = QuotaGate(self.accounts, principal, limits) if limits.spends else None
        return Caller(
            principal=principal,
            key=key if key is not None else operator,
            key_source="own" if own_key else "operator",
            usage=usage,
            limits=limits,
            gate=gate,
        )

    def default_limits(self) -> Limits:
        """The quotas of a caller who has none of their own (OPENROUTER_QUOTA_*; unset: no limit)."""
        s = self.settings
        return Limits(s.quota_usd_per_day, s.quota_usd_per_month, s.quota_calls_per_minute, s.quota_jobs)

    def for_caller(self, caller: Caller) -> CallState:
        return CallState(self, caller)

    async def ready(self) -> None:
        """Wait until saved work from earlier releases is imported (it is, in the background, at start-up)."""
        if self.imported is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.imported)


@dataclass(frozen=True)
class CallState:
    """One tool call's view: the shared parts, and its caller."""

    shared: Shared
    caller: Caller

    @property
    def settings(self) -> Settings:
        return self.shared.settings

    @property
    def catalog(self) -> ModelCatalog:
        return self.shared.catalog

    @property
    def owner(self) -> str:
        return self.caller.principal

    @property
    def has_key(self) -> bool:
        return bool(self.caller.key)

    async def attachments_payable(self, specs: Sequence[str] | None) -> None:
        """Before attachments are read and decoded (seconds of CPU for a large image): refuse the call of a caller
        whose USD quota is already used up, so nobody can make the server decode for free."""
        if specs and self.caller.gate is not None:
            await self.shared.accounts.check_left(self.owner, self.caller.limits, "This call")

    @property
    def chat(self) -> Callable[..., Awaitable[ChatResult]]:
        """`OpenRouterClient.chat` with this caller's key and session ledger; every call's usage (a failed one's
        too, when it was billed) is also written to the store's usage ledger, per caller, day and model."""
        client, caller, store = self.shared.client, self.caller, self.shared.store

        async def chat(messages: Any, **params: Any) -> ChatResult:
            try:
                result = await client.chat(messages, key=caller.key, usage=caller.usage, gate=caller.gate, **params)
            except OpenRouterError as exc:
                if isinstance(exc.usage, Usage):
                    caller.spent_usd += exc.usage.cost_usd or 0.0
                    await _ledger(store, caller.principal, exc.model or "unknown", exc.usage, ok=False)
                caller.explain(exc)
                raise
            caller.spent_usd += result.usage.cost_usd or 0.0
            await _ledger(store, caller.principal, result.model, result.usage, ok=True)
            return result

        return chat

    async def ledger(self) -> list[UsageRow]:
        """This caller's usage by day and model, from the store (this month's, and today's among them)."""
        try:
            return await self.shared.store.usage(self.owner, today()[:8] + "01")
        except StoreError:
            return []

    async def quota(self) -> dict[str, Any]:
        """This caller's quotas as they stand: limits, what is used and held, and when each resets (a limit that is
        not set is None), and whose OpenRouter key pays for their calls."""
        limits = self.caller.limits
        shown: dict[str, Any] = {"key": self.caller.key_source}
        if limits.spends or limits.calls_per_minute is not None:
            shown |= await self.shared.accounts.standing(self.owner, limits)
        else:
            shown |= dict.fromkeys(("usd_per_day", "usd_per_month", "calls_per_minute"))
        running: int | None = None
        if limits.jobs is not None:
            with contextlib.suppress(StoreError):
                running = await self.shared.store.running(self.owner)
        shown["jobs"] = None if limits.jobs is None else {"limit": limits.jobs, "running": running}
        return shown

    async def get_json(self, path: str, *, auth: bool = False) -> Any:
        try:
            return await self.shared.client.get_json(path, key=self.caller.key, auth=auth)
        except OpenRouterError as exc:
            self.caller.explain(exc)
            raise


def today() -> str:
    """The UTC day a call's usage is counted under."""
    return time.strftime("%Y-%m-%d", time.gmtime())


async def _ledger(store: JobStore, owner: str, model: str, usage: Usage, *, ok: bool) -> None:
    """Add a call to the store's usage ledger (and the metrics); a database that is away loses the line, never
    the call."""
    _metrics.spent(model, usage.prompt_tokens, usage.completion_tokens, usage.cost_usd or 0.0)
    try:
        await store.record_usage(
            owner,
            today(),
            model,
            ok=ok,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=usage.cost_usd or 0.0,
        )
    except StoreError as exc:
        log.warning("a call's usage could not be written to the ledger: %s", exc.message)


@asynccontextmanager
async def open_state(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[Shared]:
    """Create the shared parts, import saved work from earlier releases in the background, and close everything
    on the way out (running jobs are saved as interrupted). `clock` (wall time, for leases) and `sleep` (the retry
    pauses) are for tests."""
    client = OpenRouterClient(settings, sleep=sleep)
    catalog = ModelCatalog(
        lambda: client.get_json("/models"),
        cache_dir=settings.cache_dir,
        ttl=settings.models_ttl,
        base_url=settings.base_url,
    )
    client.pricing = catalog.pricing_for
    store = open_store(settings.database, settings.data_dir, clock)
    await store.open(wait=False)  # the first answers need no store: `initialize` is not kept waiting
    replicas = settings.database is not None  # several servers on one database: each takes over the dead's jobs
    jobs = JobManager(store, lease_s=settings.job_lease_s, clock=clock, hand_over=replicas)
    research = ResearchJobs(ResearchEngine(settings), jobs, catalog)
    shared = Shared(
        settings=settings,
        client=client,
        catalog=catalog,
        store=store,
        jobs=jobs,
        research=research,
        benchmarks=BenchmarkJobs(jobs, settings),
        accounts=open_accounts(settings, clock),
    )
    shared.imported = asyncio.create_task(import_legacy(store, settings.data_dir, LEGACY_KINDS), name="import")
    takeover: asyncio.Task[None] | None = None
    if replicas:
        from .takeover import take_over_forever

        takeover = asyncio.create_task(take_over_forever(shared, settings.job_lease_s), name="takeover")
    try:
        yield shared
    finally:
        if takeover is not None:
            takeover.cancel()
        await jobs.aclose()
        if shared.imported is not None and not shared.imported.done():
            shared.imported.cancel()
        await catalog.aclose()
        await client.aclose()
        await store.close()
        shared.accounts.close()
        sys.stdout.flush()  # drain any stray buffered output to stderr while fd 1 still points there
