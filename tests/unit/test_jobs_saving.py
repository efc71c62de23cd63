"""A job that ends while its database is away is not lost: its end is saved as soon as the database answers (and
not run again by anyone), in the background, while its caller already has the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openrouter_research_mcp.jobs.manager as manager_module
from openrouter_research_mcp.jobs.manager import JobHandle, JobManager
from openrouter_research_mcp.jobs.sqlite import DB_FILE, SqliteStore
from openrouter_research_mcp.jobs.store import JobRecord, StoreUnavailable

from ..support import eventually


class Flaky(SqliteStore):
    """A store whose database is away for the first `away` releases."""

    def __init__(self, path: Path, away: int) -> None:
        super().__init__(path)
        self.away = away

    async def release(self, record: JobRecord, holder: str) -> JobRecord:
        if self.away > 0:
            self.away -= 1
            raise StoreUnavailable("The job database cannot be reached just now.")
        return await super().release(record, holder)


async def test_jobs_an_end_that_could_not_be_saved_is_saved_once_the_database_is_back(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(manager_module, "RELEASE_RETRY_S", 0.01)
    store = Flaky(tmp_path / DB_FILE, away=3)
    await store.open()
    jobs = JobManager(store)

    async def body(handle: JobHandle) -> None:
        await handle.save({"step": 1})

    def finish(record: JobRecord, status: str, _error: str | None) -> dict[str, Any]:
        return {**record.data, "ended": status}

    record = JobRecord(id="20260101-000000-00000001", kind="research", owner="alice", status="running", data={})
    handle = await jobs.start(record, body, finish, background=False)
    assert handle.unsaved is not None  # the caller is told its job is not saved yet
    await eventually(lambda: handle.unsaved is None, what="the end saved once the database answered")
    saved = await store.get(record.id, "alice")
    assert saved is not None and saved.status == "done" and saved.data == {"step": 1, "ended": "done"}
    assert saved.lease_holder is None  # released: no replica will take it over
    await jobs.aclose()
    await store.close()
    assert store.away == 0
