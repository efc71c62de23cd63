"""`benchmark_models`, `get_benchmark` and `cancel_benchmark`, free of MCP: "which of these models should I use for
this?" answered with measurements (see `benchmark/`). Everything, the whole worst case included, is checked before
anything is spent.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._util import Progress, no_progress
from ..benchmark.plan import misfits, refuse_over_budget, worst_case
from ..benchmark.report import (
    MAX_MODELS,
    MAX_PROMPTS,
    MIN_MODELS,
    MIN_PROMPTS,
    BenchmarkInput,
    BenchmarkParams,
    BenchmarkReport,
    Objective,
    new_benchmark_id,
    render_chart,
    render_csv,
    render_markdown,
)
from ..errors import AuthError, ContextLengthError, NotFoundError, RequestError
from .checks import require_structured, resolve_models
from .state import CallState

__all__ = ["benchmark_models", "benchmark_resource", "cancel_benchmark", "get_benchmark", "render_benchmark"]


def _validate(
    prompts: Sequence[str],
    models: Sequence[str],
    references: Sequence[str] | None,
    judge_model: str | None,
    objective: Objective,
) -> tuple[list[str], list[str]]:
    """The prompts stripped and the models without repeats, checked against what `BenchmarkInput` cannot check
    alone (its bounds on `runs` and on the most prompts and models are its own)."""
    clean = [q.strip() for q in prompts]
    if len(clean) < MIN_PROMPTS or not all(clean):
        raise RequestError(
            f"benchmark_models needs {MIN_PROMPTS} to {MAX_PROMPTS} prompts, none empty; got {len(clean)}."
        )
    unique = list(dict.fromkeys(m.strip() for m in models if m.strip()))
    if len(unique) < MIN_MODELS:
        raise RequestError(f"benchmark_models needs {MIN_MODELS} to {MAX_MODELS} different models; got {len(unique)}.")
    if references is not None and len(references) != len(clean):
        raise RequestError(f"Give one reference answer per prompt: {len(clean)} prompts, {len(references)} references.")
    if objective == "quality" and not judge_model:
        raise RequestError("Ranking by quality needs a judge: set judge_model (or choose cost, speed or balanced).")
    return clean, unique


async def benchmark_models(state: CallState, args: BenchmarkInput, progress: Progress = no_progress) -> BenchmarkReport:
    """Check everything and the whole worst case before anything is spent; then run (or start in the background).
    With `resume`, make a stopped benchmark's missing calls instead."""
    if not state.has_key:
        raise AuthError.missing()
    if args.resume:
        return await _resume(state, args, progress)
    judge_model, references = args.judge_model, args.references
    clean, unique = _validate(args.prompts, args.models, references, judge_model, args.objective)
    infos = await resolve_models(state, [*unique, *([judge_model] if judge_model else [])])
    if judge_model:
        require_structured(state, infos[judge_model], "judge")
    params = BenchmarkParams.model_validate(
        {
            **args.model_dump(),
            "prompts": clean,
            "models": unique,
            "references": list(references) if references else None,
        }
    )
    # A model whose context cannot take a prompt is skipped before anything is sent, and the report says why.
    skipped = misfits(params, infos)
    kept = [m for m in unique if m not in skipped]
    if not kept:
        reasons = " ".join(f"`{m}`: {why}" for m, why in skipped.items())
        raise ContextLengthError(f"No model can take these prompts. {reasons} Shorten the prompts or lower max_tokens.")
    params = params.model_copy(update={"models": kept})
    refuse_over_budget(params, worst_case(params, infos))
    report = BenchmarkReport(benchmark_id=new_benchmark_id(), params=params, skipped=skipped)
    return await state.shared.benchmarks.start(
        report,
        infos,
        owner=state.owner,
        chat=state.chat,
        key_source=state.caller.key_source,
        progress=progress,
        background=params.background,
        max_jobs=state.caller.limits.jobs,
    )


async def _resume(state: CallState, args: BenchmarkInput, progress: Progress) -> BenchmarkReport:
    assert args.resume is not None
    await state.shared.ready()
    stopped = await state.shared.benchmarks.resumable(state.owner, args.resume.strip())
    p = stopped.params
    infos = await resolve_models(state, [*p.models, *([p.judge_model] if p.judge_model else [])])
    return await state.shared.benchmarks.resume(
        state.owner,
        stopped.benchmark_id,
        infos,
        chat=state.chat,
        progress=progress,
        background=args.background,
        max_jobs=state.caller.limits.jobs,
    )


async def get_benchmark(state: CallState, benchmark_id: str) -> BenchmarkReport:
    """A benchmark's report, as it is now."""
    await state.shared.ready()
    report = await state.shared.benchmarks.get(state.owner, benchmark_id.strip())
    if report is None:
        known, _total = await state.shared.benchmarks.list(state.owner, limit=5)
        hint = (
            f" Recent benchmarks: {', '.join(r.benchmark_id for r in known)}." if known else " None has been run yet."
        )
        raise NotFoundError(f"No benchmark has the id `{benchmark_id}`.{hint}")
    return report


async def cancel_benchmark(state: CallState, benchmark_id: str) -> BenchmarkReport:
    """Stop a benchmark wherever it runs, keeping the calls it made; one that ended is returned as it is."""
    await get_benchmark(state, benchmark_id)
    report = await state.shared.benchmarks.cancel(state.owner, benchmark_id.strip())
    if report is None:  # pragma: no cover - get_benchmark found it a moment ago
        raise NotFoundError(f"No benchmark has the id `{benchmark_id}`.")
    return report


def render_benchmark(report: BenchmarkReport) -> str:
    """The text a host shows: the markdown report, and where its CSV, JSON and chart are."""
    if report.status == "running" and not report.stats:
        return (
            f"Benchmark {report.benchmark_id} is running: {report.progress}. Poll get_benchmark with this id; "
            "cancel_benchmark stops it."
        )
    uri = f"benchmark://reports/{report.benchmark_id}"
    return f"{render_markdown(report)}\n\nAlso: {uri}.csv, {uri}.json and the chart {uri}.svg."


async def benchmark_resource(state: CallState, benchmark_id: str, kind: str) -> str:
    """`benchmark://reports/{id}` (markdown) and its `.csv`, `.json` and `.svg` renderings."""
    report = await get_benchmark(state, benchmark_id)
    if kind == "csv":
        return render_csv(report)
    if kind == "json":
        return report.model_dump_json(indent=1)
    if kind == "svg":
        return render_chart(report)
    return render_markdown(report)
