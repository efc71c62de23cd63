"""The research run as data: what is saved after every step, returned by `get_research`, and shown as a resource."""

from __future__ import annotations

import re
import secrets
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..openrouter.completion import Source
from ..openrouter.pricing import CallTotals, Usage

__all__ = ["RUN_ID", "ResearchParams", "ResearchRun", "Round", "SpendLine", "SubQuestion", "new_run_id"]

# Run ids are made here and checked against this before any file is touched: no user text reaches a path.
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")

Status = Literal["running", "done", "budget", "time", "cancelled", "interrupted", "failed"]
Stage = Literal["plan", "search", "reflect", "write"]


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


class ResearchParams(BaseModel):
    """What the caller asked for, after defaults."""

    model_config = ConfigDict(defer_build=True)

    question: str
    breadth: int = Field(default=3, ge=1, le=6)
    depth: int = Field(default=2, ge=1, le=3)
    max_cost_usd: float = Field(gt=0)
    max_seconds: float = Field(default=50, gt=0)
    planner_model: str
    searcher_model: str
    writer_model: str
    background: bool = False


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
    stopped_because: Literal["done", "budget", "time", "cancelled", "interrupted", "failed"] | None = None
    progress: str = "starting"
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
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
