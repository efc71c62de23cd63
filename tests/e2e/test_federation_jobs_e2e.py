"""A signed-in user's work in the background when OpenRouter refuses their key (`remote/federation.py`): the job
says what a tool call says, how to sign in again, and never runs on anyone else's key."""

from __future__ import annotations

import httpx

from ..fakes.openrouter import FakeOpenRouter
from ..support import eventually, result_text
from . import test_federation_e2e as federation
from .test_federation_e2e import People

people, signin_server = federation.people, federation.signin_server  # its fixtures, for this module's tests


async def test_federation_e2e_a_background_research_on_a_revoked_key_says_how_to_sign_in_again(
    people: People, fake_openrouter: FakeOpenRouter
) -> None:
    alice = people.user(3034)
    before = set(fake_openrouter.signin.keys)
    async with alice.client() as client:
        assert not (await client.call_tool("ask", {"prompt": "Hello"})).is_error
    [key] = set(fake_openrouter.signin.keys) - before
    fake_openrouter.signin.revoke(key)  # she deletes the key in her OpenRouter settings
    fake_openrouter.clear()
    async with alice.client() as client:
        started = await client.call_tool(
            "deep_research", {"question": "How do honeybees live?", "depth": 1, "background": True}
        )
        assert not started.is_error, result_text(started)
        research_id = (started.structured_content or {})["research_id"]

        async def finished() -> dict[str, object] | None:
            got = await client.call_tool("get_research", {"research_id": research_id})
            data = got.structured_content or {}
            return data if data.get("status") not in ("queued", "running") else None

        run = await eventually(finished, timeout=60, what="the research run's end")
    assert run["status"] == "failed", run
    assert "sign in with OpenRouter again" in str(run["error"]) and key not in str(run)
    assert {r.key for r in fake_openrouter.chat_requests()} <= {key}  # refused on her key, never on another
    async with httpx.AsyncClient() as http:  # the operator's view: two sign-ins, one ended by OpenRouter's refusal
        scraped = (await http.get(f"http://127.0.0.1:{people.server.port}/metrics")).text
    for outcome, count in (("started", 2), ("signed_in", 2), ("key_refused", 1)):
        assert f'openrouter_mcp_signins_total{{outcome="{outcome}"}} {count}.0' in scraped, scraped
