"""The structured results the tools return (their `outputSchema`), kept compact: hosts pay for every token."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..openrouter.completion import Attempt, Source
from ..openrouter.models import ModelInfo
from ..openrouter.pricing import Usage
from ..research.citations import CitationCheck, Verification
from ..research.run import ResearchPlan, SpendLine

__all__ = [
    "AskResult",
    "CompareEntry",
    "CompareResult",
    "CompareTotals",
    "JudgeVerdict",
    "ModelRow",
    "ModelsPage",
    "ResearchResult",
    "RoundSummary",
]


class AskResult(BaseModel):
    """One model's answer."""

    answer: str
    refusal: str | None = Field(default=None, description="set when the model declined to answer")
    model: str = Field(description="the model that answered")
    model_requested: str
    usage: Usage
    latency_s: float
    generation_id: str | None = None
    finish_reason: str | None = None
    sources: list[Source] = Field(default_factory=list, description="web sources (at most 20)")
    more_sources: int = Field(default=0, description="sources cited beyond those listed")
    attempts: list[Attempt] = Field(default_factory=list, description="every model tried, when fallback was used")
    warnings: list[str] = Field(default_factory=list)


class CompareEntry(BaseModel):
    """One model's part in a comparison: its answer or its error."""

    model: str
    ok: bool
    answer: str | None = None
    error: str | None = None
    answered_by: str | None = Field(default=None, description="set when OpenRouter routed to another model")
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str | None = None


class JudgeVerdict(BaseModel):
    """A judge model's reading of the answers."""

    model: str
    ok: bool
    agreement: Literal["high", "medium", "low"] | None = None
    summary: str | None = Field(default=None, description="what the answers agree on")
    disagreements: list[str] = Field(default_factory=list)
    recommended_answer: str | None = None
    best_model: str | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)


class CompareTotals(Usage):
    """Sums over every call the comparison made, the judge included."""

    wall_time_s: float = 0.0
    succeeded: int = 0
    failed: int = 0


class CompareResult(BaseModel):
    """Several models' answers to one prompt, side by side."""

    prompt: str
    entries: list[CompareEntry]
    judge: JudgeVerdict | None = None
    totals: CompareTotals
    max_cost_usd: float
    warnings: list[str] = Field(default_factory=list)


class ModelRow(BaseModel):
    """One model in a listing; prices in USD per million tokens (null: decided at routing time)."""

    id: str
    name: str
    context: int
    prompt_usd_per_mtok: float | None
    completion_usd_per_mtok: float | None
    modalities: str = Field(description="inputs->outputs, e.g. text+image->text")
    capabilities: list[str]

    @classmethod
    def of(cls, m: ModelInfo) -> ModelRow:
        return cls(
            id=m.id,
            name=m.name,
            context=m.context_length,
            prompt_usd_per_mtok=m.pricing.per_million("prompt"),
            completion_usd_per_mtok=m.pricing.per_million("completion"),
            modalities=f"{'+'.join(m.input_modalities)}->{'+'.join(m.output_modalities)}",
            capabilities=m.capabilities,
        )


class ModelsPage(BaseModel):
    """A page of catalog matches."""

    models: list[ModelRow]
    total: int = Field(description="matches before paging")
    offset: int
    next_offset: int | None = Field(description="offset of the next page, or null on the last page")
    catalog_age_s: int
    catalog_note: str | None = Field(default=None, description="set when the catalog is stale or a refresh failed")


class RoundSummary(BaseModel):
    """One round of research: the sub-questions asked and the gaps found after it."""

    round: int
    sub_questions: list[str]
    gaps: list[str] = Field(default_factory=list)


class ResearchResult(BaseModel):
    """A research run: its report with numbered sources, or its progress while it runs."""

    research_id: str
    question: str
    status: str = Field(description="running, done, budget, time, cancelled, interrupted or failed")
    stopped_because: str | None = Field(description="done, budget, time, cancelled, interrupted or failed")
    progress: str
    report: str | None = Field(description="markdown; cites only the numbered sources")
    sources: list[Source]
    sub_questions: list[RoundSummary]
    open_questions: list[str]
    removed_citations: int = Field(description="citations or URLs outside the source list removed from the report")
    usage: list[SpendLine] = Field(description="calls, tokens and USD by stage and model")
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    max_cost_usd: float
    upstream_requests: int
    timings: dict[str, float]
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    plan: ResearchPlan | None = Field(default=None, description="what the run set out to do, scaled to fit")
    verification: Verification = Field(default_factory=Verification, description="the report's citations, checked")
    citations: list[CitationCheck] = Field(default_factory=list, description="each citation, its quote and check")
    searches: int = 0
    pages_read: int = 0
