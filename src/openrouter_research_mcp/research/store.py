"""Research runs on disk (see `_store.py`: atomic writes, unreadable files set aside, never on the event loop),
and the summaries that index them."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from .._store import JsonStore
from .run import RUN_ID, ResearchRun

__all__ = ["RunStore", "RunSummary"]

INTERRUPTED = "interrupted: the server stopped while this run was in progress"


class RunSummary(BaseModel):
    """What the index keeps of a run: enough to list it and to suggest it, without reading its file again."""

    research_id: str
    question: str
    status: str
    created_at: float
    cost_usd: float
    sources: int

    @classmethod
    def of(cls, run: ResearchRun) -> RunSummary:
        return cls(
            research_id=run.research_id,
            question=run.params.question,
            status=run.status,
            created_at=run.created_at,
            cost_usd=run.cost_usd,
            sources=len(run.sources),
        )


class RunStore(JsonStore[ResearchRun]):
    """Saves and loads `ResearchRun`s under `root`."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, ResearchRun, RUN_ID)

    def scan(self) -> list[RunSummary]:
        """Summaries of every readable run. Runs left `running` by a previous process can never finish: they are
        marked interrupted (their partial report kept) on the way."""
        summaries = []
        for path in self.files():
            run = self.read(path)
            if run is None:
                continue
            if run.status == "running":
                run.status, run.stopped_because, run.progress = "interrupted", "interrupted", INTERRUPTED
                self.save(run.research_id, run)
            summaries.append(RunSummary.of(run))
        return summaries
