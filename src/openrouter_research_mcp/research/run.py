"""The research run as data: what is saved after every step, returned by `get_research`, and shown as a resource."""

from __future__ import annotations

import re
import secrets
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..jobs.store import Status, Timestamp
from ..openrouter.completion import Source
from ..openrouter.pricing import CallTotals, Usage
from .citations import CitationCheck, Verification

__all__ = [
    "RUN_ID",
    "ReportLength",
    "RESUMABLE",
    "ResearchInput",
    "ResearchParams",
    "ResearchPlan",
    "ResearchRun",
    "Round",
    "SpendLine",
    "Stop",
    "SubQuestion",
    "new_run_id",
]

# Run ids are made here and checked against this before any file is touched: no user text reaches a path.
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")

StopReason = Literal["done", "budget", "time", "cancelled", "interrupted", "failed"]
Stage = Literal["plan", "search", "reflect", "outline", "write", "verify"]
ReportLength = Literal["brief", "standard", "long"]


# A stopped run that `resume` may continue: one interrupted or cancelled, or one that finished early for budget or time.
RESUMABLE = ("interrupted", "cancelled", "budget", "time")


class Stop(Exception):
    """No more work may start in a run (its budget or its time is used up)."""


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


class ResearchInput(BaseModel):
    """What `deep_research` takes: the one declaration of its parameters, their defaults, bounds and descriptions
    (the MCP tool's schema is made from it)."""

    model_config = ConfigDict(defer_build=True)

    question: str = Field(default="", description="the research question; may be empty with resume")
    breadth: int = Field(default=3, ge=1, le=6, description="sub-questions in round 1 (halved after)")
    depth: int = Field(default=2, ge=1, le=3, description="rounds of research and reflection")
    max_cost_usd: float | None = Field(
        default=None, gt=0, le=100, description="USD cap; default OPENROUTER_RESEARCH_MAX_COST_USD"
    )
    max_seconds: float = Field(default=50, gt=0, le=3600, description="time cap")
    planner_model: str | None = Field(default=None, description="plans, reflects, verifies")
    searcher_model: str | None = Field(default=None, description="searches and reads pages")
    writer_model: str | None = Field(default=None, description="writes the report")
    report_length: ReportLength = Field(default="standard", description="~600, ~1,500 or ~4,000 words")
    verify_with_model: bool = Field(default=True, description="a model judges each cited claim against its page")
    background: bool = Field(default=False, description="return a research_id at once; poll get_research")
    resume: str | None = Field(default=None, description="research_id of a stopped run to continue")
    clarify: bool = Field(default=False, description="ask the user up to 3 questions first")


class ResearchParams(ResearchInput):
    """What a run was asked for, saved with it: the input with every default filled in."""

    max_cost_usd: float = Field(gt=0)
    planner_model: str
    searcher_model: str
    writer_model: str
    clarifications: dict[str, str] = Field(default_factory=dict, description="the user's answers before planning")
    assumptions: list[str] = Field(default_factory=list, description="what was assumed where nobody could be asked")


class ResearchPlan(BaseModel):
    """What the run will do, scaled so its worst case fits the budget and its critical path the time."""

    model_config = ConfigDict(defer_build=True)

    breadth: int = Field(description="sub-questions in the first round (halved after)")
    depth: int = Field(description="rounds of research and reflection")
    searches: int = Field(description="web searches each researcher may run")
    fetches: int = Field(description="pages each researcher may open and read")
    verify_with_model: bool = True
    verify_citations: int = Field(
        default=0, description="citations whose checking is set aside up front (more are judged if the budget allows)"
    )
    report_length: ReportLength = "standard"
    scaled_because: list[str] = Field(default_factory=list, description="budget and/or time, when scaled down")
    worst_case_usd: float = 0.0


class SubQuestion(BaseModel):
    """One focused question and what its web search found."""

    model_config = ConfigDict(defer_build=True)

    question: str
    rationale: str = ""
    status: Literal["pending", "done", "failed", "skipped"] = "pending"
    finding: str = ""
    sources: list[int] = Field(default_factory=list, description="ledger numbers of the sources it found")
    error: str | None = None


class Round(BaseModel):
    """One round of search: its sub-questions, and the gaps reflection found after it."""

    model_config = ConfigDict(defer_build=True)

    n: int
    sub_questions: list[SubQuestion]
    gaps: list[str] = Field(default_factory=list, description="what reflection found missing after this round")


class SpendLine(CallTotals):
    """Calls, tokens and cost for one stage and model."""

    stage: Stage
    model: str
    cost_usd: float | None = 0.0
    cost_source: str = "sum"


class ResearchRun(BaseModel):
    """A research run, complete or in progress."""

    model_config = ConfigDict(defer_build=True)

    research_id: str
    params: ResearchParams
    status: Status = "running"
    stopped_because: StopReason | None = None
    progress: str = "starting"
    created_at: Timestamp = Field(default_factory=time.time)
    updated_at: Timestamp = Field(default_factory=time.time)
    rounds: list[Round] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    report: str | None = None
    open_questions: list[str] = Field(default_factory=list)
    removed_citations: int = 0
    spend: list[SpendLine] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    upstream_requests: int = 0
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    plan: ResearchPlan | None = None
    evidence: dict[str, str] = Field(default_factory=dict, description="per source number: the text researchers saw")
    citations: list[CitationCheck] = Field(default_factory=list)
    verification: Verification = Field(default_factory=Verification)
    pages_read: int = 0
    searches: int = 0
    resumed: int = Field(default=0, description="how many times the run was resumed")

    @property
    def resumable(self) -> bool:
        """Whether `resume` may continue this run (see RESUMABLE)."""
        return self.status in ("interrupted", "cancelled") or (
            self.status == "done" and self.stopped_because in ("budget", "time")
        )

    @property
    def cost_usd(self) -> float:
        return round(Usage.total(self.spend).cost_usd or 0.0, 8)

    def spend_line(self, stage: Stage, model: str) -> SpendLine:
        for line in self.spend:
            if line.stage == stage and line.model == model:
                return line
        line = SpendLine(stage=stage, model=model)
        self.spend.append(line)
        return line
