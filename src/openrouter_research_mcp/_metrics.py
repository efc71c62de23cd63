"""What `/metrics` shows a team server's operator, in the Prometheus text format (prometheus-client).

Each thing is counted where it happens: tool calls and their latency by the caller middleware, upstream answers and
retries by the OpenRouter client, tokens and USD by the usage ledger, refusals by the quota checks, authentication
failures by the HTTP server's verifiers; active jobs are read from the job manager at scrape time. Until the HTTP
server calls `enable()` every function here does nothing, so a stdio server never imports prometheus-client (about
50 ms of start-up). Labels are bounded sets (tools, outcomes, status codes, limits, reasons, the catalog's model
ids); no label ever holds a caller, a key or a token. The registry is this package's own, never the library's global.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "CONTENT_TYPE",
    "auth_failed",
    "enable",
    "quota_refused",
    "render",
    "retried",
    "signin",
    "spent",
    "tool_called",
    "upstream_answered",
    "watch_jobs",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "openrouter_mcp"
# started: /authorize; signed_in: a key kept, our code sent back; declined: the user or OpenRouter said no; failed:
# OpenRouter or the database could not finish it; refused: a step out of turn (unknown, replayed, another browser);
# throttled: past an address's bucket; key_refused: OpenRouter refused a signed-in key, which ended it; revoked.
SIGNIN_OUTCOMES = ("started", "signed_in", "declined", "failed", "refused", "throttled", "key_refused", "revoked")
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = r = CollectorRegistry()
        self.tool_calls = Counter(
            f"{PREFIX}_tool_calls",
            "Tool calls by tool and outcome (ok, error, refused).",
            ["tool", "outcome"],
            registry=r,
        )
        self.tool_seconds = Histogram(
            f"{PREFIX}_tool_call_duration_seconds",
            "Time from a tool call's arrival to its answer.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream = Counter(
            f"{PREFIX}_upstream_responses",
            "OpenRouter's HTTP answers by status code (none: no answer).",
            ["status"],
            registry=r,
        )
        self.retries = Counter(f"{PREFIX}_upstream_retries", "Requests to OpenRouter made again.", registry=r)
        self.tokens = Counter(f"{PREFIX}_tokens", "Tokens by model and kind.", ["model", "kind"], registry=r)
        self.cost = Counter(f"{PREFIX}_cost_usd", "USD cost by model, as OpenRouter billed it.", ["model"], registry=r)
        self.refusals = Counter(
            f"{PREFIX}_quota_refusals",
            "Calls refused by a quota (usd_per_day, usd_per_month, unpriced, calls_per_minute, jobs).",
            ["limit"],
            registry=r,
        )
        self.auth = Counter(f"{PREFIX}_auth_failures", "Requests refused by authentication.", ["reason"], registry=r)
        self.signins = Counter(
            f"{PREFIX}_signins",
            "Sign-ins with OpenRouter (OPENROUTER_MCP_AUTH=openrouter), by outcome: "
            + ", ".join(SIGNIN_OUTCOMES)
            + ".",
            ["outcome"],
            registry=r,
        )
        self.jobs: Callable[[], Mapping[str, int]] = dict
        r.register(_Jobs(self))


class _Jobs:
    """The active-jobs gauge, read at scrape time."""

    def __init__(self, metrics: _Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(f"{PREFIX}_active_jobs", "Jobs this process runs now, by kind.", labels=["kind"])
        for kind, count in sorted(self.metrics.jobs().items()):
            family.add_metric([kind], count)
        yield family


_on: list[_Metrics] = []


def enable() -> None:
    """Start counting (the HTTP server does, before it serves); calling it again changes nothing."""
    if not _on:
        _on.append(_Metrics())


def tool_called(tool: str, outcome: str, seconds: float) -> None:
    for m in _on:
        m.tool_calls.labels(tool, outcome).inc()
        m.tool_seconds.labels(tool).observe(seconds)


def upstream_answered(status: int | None) -> None:
    for m in _on:
        m.upstream.labels(str(status) if status is not None else "none").inc()


def retried() -> None:
    for m in _on:
        m.retries.inc()


def spent(model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float) -> None:
    for m in _on:
        m.tokens.labels(model, "prompt").inc(max(prompt_tokens, 0))
        m.tokens.labels(model, "completion").inc(max(completion_tokens, 0))
        m.cost.labels(model).inc(max(cost_usd, 0.0))


def quota_refused(limit: str) -> None:
    for m in _on:
        m.refusals.labels(limit).inc()


def auth_failed(reason: str) -> None:
    for m in _on:
        m.auth.labels(reason).inc()


def signin(outcome: str) -> None:
    """Count one step of a sign-in with OpenRouter (one of SIGNIN_OUTCOMES)."""
    for m in _on:
        m.signins.labels(outcome).inc()


def watch_jobs(read: Callable[[], Mapping[str, int]]) -> None:
    """Report `read()` (the jobs running in this process, by kind) as the active-jobs gauge."""
    for m in _on:
        m.jobs = read


def render() -> bytes:
    """The metrics in the Prometheus text format (empty before `enable`)."""
    if not _on:
        return b""
    from prometheus_client import generate_latest

    return bytes(generate_latest(_on[0].registry))
