"""Every kind of request body the server sends, round-tripped through the official `openrouter` SDK's chat request
model (a test dependency): nothing may be dropped, renamed, or accepted only through a catch-all fallback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from openrouter_research_mcp.openrouter.request import ProviderPrefs
from openrouter_research_mcp.tools.ask import AskInput, ask
from openrouter_research_mcp.tools.compare import CompareInput, compare_models
from openrouter_research_mcp.tools.state import CallState

from ..fakes.openrouter import FakeOpenRouter

sdk = pytest.importorskip("openrouter.components")
sdk_types = pytest.importorskip("openrouter.types")


def loose_parts(obj: Any, path: str = "$") -> Iterator[str]:
    """Every place the SDK accepted a value only through a permissive fallback (an unknown enum value, an unknown
    server-tool type): those round-trip unchanged, yet are not part of the contract."""
    if isinstance(obj, sdk_types.UnrecognizedStr | sdk.ChatDynamicServerTool):
        yield path
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from loose_parts(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from loose_parts(item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from loose_parts(value, f"{path}.{key}")


def diff(sent: Any, back: Any, path: str = "$") -> list[str]:
    """Where `back` differs from `sent`: dropped, added or changed keys, by path."""
    if isinstance(sent, dict) and isinstance(back, dict):
        out = [f"dropped {path}.{k}" for k in sent.keys() - back.keys()]
        out += [f"added {path}.{k}" for k in back.keys() - sent.keys()]
        return out + [d for k in sent.keys() & back.keys() for d in diff(sent[k], back[k], f"{path}.{k}")]
    if isinstance(sent, list) and isinstance(back, list) and len(sent) == len(back):
        return [d for i, (a, b) in enumerate(zip(sent, back, strict=True)) for d in diff(a, b, f"{path}[{i}]")]
    return [] if sent == back else [f"changed {path}: {sent!r} -> {back!r}"]


def round_trip(body: dict[str, Any]) -> list[str]:
    sent = json.loads(json.dumps(body))
    model = sdk.ChatRequest.model_validate(sent)
    back = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return diff(sent, back) + [f"loose {p}" for p in loose_parts(model)]


async def test_contract_every_request_kind_round_trips_through_the_official_sdk(
    fake_openrouter: FakeOpenRouter, app_state: CallState
) -> None:
    calls = {
        "plain": ask(app_state, AskInput(prompt="hi")),
        "system and params": ask(app_state, AskInput(prompt="hi", system="be brief", temperature=0.2, max_tokens=50)),
        "reasoning": ask(app_state, AskInput(prompt="think", model="google/gemini-2.5-flash", reasoning_effort="high")),
        "web search": ask(app_state, AskInput(prompt="news?", web_search=True, domains=["arxiv.org", "-reddit.com"])),
        "web fetch": ask(app_state, AskInput(prompt="summarise", urls=["https://example.org/a"])),
        "fallbacks": ask(
            app_state,
            AskInput(
                prompt="hi",
                model="openai/gpt-4o",
                fallback_models=[
                    "openai/gpt-4o-mini",
                    "google/gemini-2.5-flash",
                    "deepseek/deepseek-r1",
                    "anthropic/claude-3.5-sonnet",
                ],
            ),
        ),
        "provider": ask(
            app_state,
            AskInput(
                prompt="hi",
                provider=ProviderPrefs(
                    sort="price", only=["openai"], ignore=["azure"], data_collection="deny", zdr=True, max_price=3
                ),
            ),
        ),
        "structured (judge)": compare_models(
            app_state,
            CompareInput(
                prompt="2+2?", models=["openai/gpt-4o-mini", "openai/gpt-4o"], judge_model="google/gemini-2.5-flash"
            ),
        ),
    }
    problems: dict[str, list[str]] = {}
    for name, call in calls.items():
        fake_openrouter.clear()
        await call
        for recorded in fake_openrouter.chat_requests():
            found = round_trip(recorded.body)
            if found:
                problems[f"{name} -> {recorded.model}"] = found
    assert problems == {}
    bodies = [r.body for r in fake_openrouter.chat_requests()]
    assert any(b.get("response_format") for b in bodies)  # the judge's structured call was the last one made


def test_contract_checker_catches_drops_and_loose_values() -> None:
    assert round_trip({"messages": [{"role": "user", "content": "x"}], "usage": {"include": True}}) == [
        "dropped $.usage"
    ]
    typo = {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "openrouter:web_serch"}]}
    assert round_trip(typo) == ["loose $.tools[0]"]
    numeric_price = {"messages": [{"role": "user", "content": "x"}], "provider": {"max_price": {"prompt": 1}}}
    assert round_trip(numeric_price) == ["dropped $.provider"]  # the SDK types prices as decimal strings
