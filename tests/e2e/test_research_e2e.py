"""deep_research through the real server over stdio: progress, background polling, restart, cancel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError

from ..fakes.openrouter import FakeOpenRouter
from ..support import eventually, resource_text
from .conftest import stdio_params

PLAN = {"sub_questions": [{"question": f"Part {i}?", "rationale": "r"} for i in (1, 2, 3)]}


async def test_e2e_research_progress_over_stdio(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    fake_openrouter.latency = 0.2
    seen: list[tuple[float, str]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        assert total is None
        seen.append((progress, message or ""))

    async with Client(stdio_params(fake_openrouter, tmp_path / "cache"), mode="legacy") as client:
        result = await client.call_tool(
            "deep_research", {"question": "Is fusion power near?", "depth": 1}, progress_callback=on_progress
        )
    data = result.structured_content
    assert not result.is_error and data["status"] == "done" and data["report"].count("## Sources") == 1
    messages = [m for _, m in seen]
    assert messages[0] == "planning" and "writing the report" in messages
    assert sum(m.startswith("researching") for m in messages) == 3
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)
    shown, link = result.content
    assert shown.type == "text" and shown.text.startswith(data["report"][:40]) and data["research_id"] in shown.text
    assert link.type == "resource_link" and str(link.uri) == f"research://reports/{data['research_id']}"


async def test_e2e_research_background_polling_and_restart(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake_openrouter.latency = 0.3
    params = stdio_params(fake_openrouter, tmp_path / "cache")
    async with Client(params) as client:
        begun = await client.call_tool("deep_research", {"question": "Is fusion power near?", "background": True})
        research_id = begun.structured_content["research_id"]
        assert begun.structured_content["status"] == "running"  # returned at once: the run is still going

        async def finished() -> dict[str, Any] | None:
            polled = (await client.call_tool("get_research", {"research_id": research_id})).structured_content
            return polled if polled and polled["status"] != "running" else None

        polled = await eventually(finished, timeout=20, interval=0.2, what="the background run finishing")
        assert polled["status"] == "done" and polled["sources"] and polled["cost_usd"] > 0
    async with Client(params, mode="legacy") as again:  # a new server process finds the saved run
        restored = (await again.call_tool("get_research", {"research_id": research_id})).structured_content
        index = json.loads(resource_text(await again.read_resource("research://reports")))
        report = resource_text(await again.read_resource(f"research://reports/{research_id}"))
        missing = await again.call_tool("get_research", {"research_id": "../../etc/passwd"})
        with pytest.raises(MCPError):
            await again.read_resource("research://reports/20990101-000000-deadbeef")
    assert restored["report"] == polled["report"] and restored["status"] == "done"
    assert [r["research_id"] for r in index] == [research_id]
    assert report == polled["report"] and missing.is_error and research_id in missing.content[0].text  # type: ignore[union-attr]


async def test_e2e_research_client_cancel_marks_run_cancelled(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake_openrouter.fail(kind="hang", times=10)
    params = stdio_params(fake_openrouter, tmp_path / "cache")
    async with Client(params) as client:
        await client.call_tool("list_models", {"limit": 1})  # warm the catalog
        with pytest.raises(MCPError):
            await client.call_tool("deep_research", {"question": "Is fusion power near?"}, read_timeout_seconds=1.0)

        async def settled() -> list[dict[str, Any]] | None:
            runs = json.loads(resource_text(await client.read_resource("research://reports")))
            return runs if runs and runs[0]["status"] != "running" else None

        runs = await eventually(settled, timeout=4, interval=0.1, what="the cancelled run being saved")
    assert runs[0]["status"] == "cancelled"
    assert all(r.finished is not None for r in fake_openrouter.chat_requests())
