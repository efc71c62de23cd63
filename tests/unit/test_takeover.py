"""What a replica takes over (`tools/takeover.py`): only jobs whose holder died, with no cancel stored, paid by the
operator's key; one with no budget left is saved as interrupted (no replica tries it again) instead of resumed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from openrouter_research_mcp.jobs.store import JobRecord
from openrouter_research_mcp.tools.takeover import take_over

from ..fakes.openrouter import FakeOpenRouter
from ..support import saved_run, tool_state


def _orphan(job_id: str, **kw: object) -> JobRecord:
    data = json.loads(saved_run(job_id, status="running", cost=0.5))
    fields: dict[str, object] = {
        "kind": "research",
        "owner": "token:alice",
        "status": "running",
        "data": data,
        "lease_holder": "dead:1:x",
        "lease_expires": time.time() - 60,
        "cost_usd": 0.5,
        **kw,
    }
    return JobRecord(id=job_id, **fields)  # type: ignore[arg-type]


async def test_takeover_takes_only_what_a_dead_holder_left(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    async with tool_state(fake_openrouter, tmp_path) as state:
        store = state.shared.store
        await store.create(_orphan("20260101-000000-00000001"))  # its budget ($0.50) is spent: given up
        await store.create(_orphan("20260101-000000-00000002", key_source="own"))  # its owner's key: never ours
        await store.create(_orphan("20260101-000000-00000003", cancel_requested=True))  # cancelled: let it end
        await store.create(_orphan("20260101-000000-00000004", lease_expires=time.time() + 60))  # alive elsewhere
        assert [r.id for r in await store.orphans(time.time(), 10)] == ["20260101-000000-00000001"]
        assert await take_over(state.shared) == []
        spent = await store.get("20260101-000000-00000001", "token:alice")
        assert spent is not None and spent.status == "interrupted" and spent.data["status"] == "interrupted"
        assert await store.orphans(time.time(), 10) == []  # no replica tries it again; its owner may resume it
        assert fake_openrouter.chat_requests() == []  # nothing was paid for
