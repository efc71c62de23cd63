"""The fake OpenRouter's 2026 web tools over loopback HTTP: the lazy `openrouter:web_search` server tool, its
parameters and step limits, corpus-backed results, and `openrouter:web_fetch` reading pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openrouter_research_mcp.openrouter.pricing import web_fetch_fee, web_search_fee

from ..fakes.common import tokens_of
from ..fakes.corpus import PAGES
from ..fakes.openrouter import FakeOpenRouter
from .test_fake_openrouter import AUTH, chat_body, price, pricing, sse_events

SEARCH = {"type": "openrouter:web_search"}
FETCH = {"type": "openrouter:web_fetch"}
FORCE_SEARCH = {"type": "openrouter:web_search"}


@pytest.fixture
def http(fake_openrouter: FakeOpenRouter) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_openrouter.base_url, headers=AUTH, timeout=5, verify=False) as client:
        yield client


def ask(http: httpx.Client, question: str, model: str = "openai/gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    response = http.post(
        "/chat/completions", json={"model": model, "messages": [{"role": "user", "content": question}], **extra}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cited(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [note["url_citation"] for note in body["choices"][0]["message"].get("annotations", [])]


def tool_use(body: dict[str, Any]) -> tuple[int, int, int]:
    details = body["usage"]["server_tool_use_details"]
    return details["web_search_requests"], details["tool_calls_requested"], details["tool_calls_executed"]


def token_cost(fake: FakeOpenRouter, body: dict[str, Any], model: str = "openai/gpt-4o-mini") -> float:
    """What the answer's tokens cost at the catalog's base prices."""
    prompt_tokens, completion_tokens = int(body["usage"]["prompt_tokens"]), int(body["usage"]["completion_tokens"])
    return prompt_tokens * price(fake, model, "prompt") + completion_tokens * price(fake, model, "completion")


# ---------------------------------------------------------------------------------------------------- search


@pytest.mark.parametrize("choice", [None, "auto", {"type": "openrouter:web_fetch"}])
def test_fake_web_search_tool_is_lazy_unless_forced(
    fake_openrouter: FakeOpenRouter, http: httpx.Client, choice: Any
) -> None:
    extra: dict[str, Any] = {"tools": [SEARCH]} | ({"tool_choice": choice} if choice is not None else {})
    body = ask(http, "Why is the sky blue?", **extra)
    assert cited(body) == [] and tool_use(body) == (0, 0, 0) and "server_tool_use" not in body["usage"]
    assert body["usage"]["cost"] == pytest.approx(token_cost(fake_openrouter, body))


@pytest.mark.parametrize("choice", [FORCE_SEARCH, "required"])
def test_fake_web_search_tool_searches_when_forced(http: httpx.Client, choice: Any) -> None:
    body = ask(http, "Why is the sky blue?", tools=[SEARCH], tool_choice=choice)
    assert len(cited(body)) == 3 and tool_use(body) == (1, 1, 1)


def test_fake_web_search_runs_searches_per_call_within_max_uses_and_charges_by_engine(
    fake_openrouter: FakeOpenRouter, http: httpx.Client
) -> None:
    fake_openrouter.searches_per_call, fake_openrouter.results_per_search = 3, 4
    tool = {**SEARCH, "parameters": {"engine": "exa", "max_uses": 2, "max_results": 2}}
    body = ask(http, "Why is the sky blue?", tools=[tool], tool_choice=FORCE_SEARCH)
    assert len(cited(body)) == 2 * 2 and tool_use(body) == (2, 2, 2)
    fee = web_search_fee(pricing(fake_openrouter, "openai/gpt-4o-mini"), 2, "exa")
    assert body["usage"]["cost"] == pytest.approx(token_cost(fake_openrouter, body) + fee)
    body = ask(http, "Why is the sky blue?", tools=[SEARCH], tool_choice=FORCE_SEARCH)
    assert len(cited(body)) == 3 * 4 and tool_use(body) == (3, 3, 3)  # no max_uses: searches_per_call


def test_fake_web_search_max_results_defaults_to_5_and_caps_at_10(
    fake_openrouter: FakeOpenRouter, http: httpx.Client
) -> None:
    fake_openrouter.results_per_search = 20
    assert len(cited(ask(http, "Why?", tools=[SEARCH], tool_choice="required"))) == 5
    tool = {**SEARCH, "parameters": {"max_results": 50}}
    assert len(cited(ask(http, "Why?", tools=[tool], tool_choice="required"))) == 10


def test_fake_web_search_max_total_results_caps_all_searches(
    fake_openrouter: FakeOpenRouter, http: httpx.Client
) -> None:
    fake_openrouter.searches_per_call = 3
    tool = {**SEARCH, "parameters": {"max_total_results": 5}}
    body = ask(http, "Why is the sky blue?", tools=[tool], tool_choice="required")
    assert len(cited(body)) == 5 and tool_use(body) == (3, 3, 3)


@pytest.mark.parametrize(
    ("parameters", "host"),
    [
        ({"allowed_domains": ["docs.python.org", "python.org"]}, "docs.python.org"),
        ({"excluded_domains": ["example.org"]}, "example.net"),
        ({"allowed_domains": ["example.org"], "excluded_domains": ["example.org"]}, "example.net"),
    ],
)
def test_fake_web_search_honours_domains(http: httpx.Client, parameters: dict[str, Any], host: str) -> None:
    body = ask(http, "Why is the sky blue?", tools=[{**SEARCH, "parameters": parameters}], tool_choice="required")
    assert [httpx.URL(note["url"]).host for note in cited(body)] == [host] * 3


def test_fake_web_search_prefers_corpus_pages_that_share_words(http: httpx.Client) -> None:
    body = ask(http, "When did the Curiosity rover land on Mars?", tools=[SEARCH], tool_choice="required")
    notes = cited(body)
    assert [n["url"] for n in notes[:2]] == [
        "https://roverlog.test/curiosity",
        "https://spacefacts.test/mars/opportunity",
    ]
    assert notes[0]["title"] == PAGES["https://roverlog.test/curiosity"][0]
    assert notes[0]["content"].startswith("NASA's Curiosity rover landed in Gale Crater on Mars on 6 August 2012.")
    assert notes[2]["url"].startswith("https://example.org/")  # too few corpus matches: generated results fill up
    excluded = {**SEARCH, "parameters": {"excluded_domains": ["roverlog.test"]}}
    urls = [
        n["url"]
        for n in cited(
            ask(http, "When did the Curiosity rover land on Mars?", tools=[excluded], tool_choice="required")
        )
    ]
    assert "https://roverlog.test/curiosity" not in urls and urls[0] == "https://spacefacts.test/mars/opportunity"


def test_fake_web_search_stops_at_max_cost(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    fake_openrouter.searches_per_call = 5
    tool = {**SEARCH, "parameters": {"engine": "exa"}}  # $0.007 a search: a third would pass $0.02
    stop = [{"type": "max_cost", "max_cost_in_dollars": 0.02}]
    body = ask(http, "Why?", tools=[tool, FETCH], tool_choice="required", stop_server_tools_when=stop)
    assert tool_use(body) == (2, 2, 2)  # and no page was read after the stop
    assert all(n["content"].startswith("Passage") for n in cited(body))
    fee = web_search_fee(pricing(fake_openrouter, "openai/gpt-4o-mini"), 2, "exa")
    assert body["usage"]["cost"] == pytest.approx(token_cost(fake_openrouter, body) + fee)


def test_fake_web_tools_stop_at_max_tool_calls(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    fake_openrouter.searches_per_call = 5
    body = ask(http, "Why?", tools=[SEARCH, FETCH], tool_choice="required", max_tool_calls=3)
    assert tool_use(body) == (3, 3, 3)


def test_fake_web_search_tool_streams_annotations(http: httpx.Client) -> None:
    extra: dict[str, Any] = {"tools": [SEARCH, FETCH], "tool_choice": "required", "stream": True}
    plain = ask(http, "How does the honeybee waggle dance work?", tools=[SEARCH, FETCH], tool_choice="required")
    with http.stream(
        "POST",
        "/chat/completions",
        json=chat_body(**extra)
        | {"messages": [{"role": "user", "content": "How does the honeybee waggle dance work?"}]},
    ) as response:
        events = sse_events(list(response.iter_lines()))
    deltas = [e["choices"][0]["delta"] for e in events[:-2]]
    assert [a for d in deltas for a in d.get("annotations", [])] == plain["choices"][0]["message"]["annotations"]
    assert "".join(d.get("content") or "" for d in deltas) == plain["choices"][0]["message"]["content"]
    assert events[-2]["usage"]["server_tool_use_details"] == plain["usage"]["server_tool_use_details"]


# ----------------------------------------------------------------------------------------------------- fetch


def test_fake_web_fetch_reads_urls_in_the_message(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    question = "Summarise https://hivescience.test/colony and https://unknown.test/notes."
    body = ask(http, question, tools=[FETCH])
    message, notes = body["choices"][0]["message"], cited(body)
    assert [n["url"] for n in notes] == ["https://hivescience.test/colony", "https://unknown.test/notes"]
    title, text = PAGES["https://hivescience.test/colony"]
    assert (notes[0]["title"], notes[0]["content"]) == (title, text)
    assert notes[1]["content"].startswith("Page at https://unknown.test/notes:")
    assert (
        "A honeybee colony holds 20,000 to 80,000 bees in summer, with a single queen. "
        '[1 "A honeybee colony holds 20,000 to 80,000 bees in summer"]' in message["content"]
    )
    assert "Page at https://unknown.test/notes: a page the fake generated" in message["content"]
    for i, note in enumerate(notes, 1):
        assert message["content"][note["start_index"] : note["end_index"]].startswith(f"[{i}")
    assert tool_use(body) == (0, 2, 2)
    assert (
        body["usage"]["prompt_tokens"]
        == tokens_of(question) + tokens_of(notes[0]["content"]) + tokens_of(notes[1]["content"]) + 1
    )
    assert body["usage"]["cost"] == pytest.approx(token_cost(fake_openrouter, body) + web_fetch_fee(2, "auto"))
    free = ask(http, question, tools=[{**FETCH, "parameters": {"engine": "openrouter"}}])
    assert free["usage"]["cost"] == pytest.approx(token_cost(fake_openrouter, free))  # that engine is free


def test_fake_web_fetch_plugin_form_reads_pages(http: httpx.Client) -> None:
    body = ask(http, "Read https://hivescience.test/colony", plugins=[{"id": "web-fetch", "max_uses": 1}])
    assert [n["url"] for n in cited(body)] == ["https://hivescience.test/colony"] and tool_use(body) == (0, 1, 1)


def test_fake_web_fetch_reads_pages_tests_add(fake_openrouter: FakeOpenRouter, http: httpx.Client) -> None:
    fake_openrouter.pages["https://added.test/a"] = ("Added", "Tests can add pages. Here is a second sentence.")
    body = ask(http, "Read https://added.test/a please", tools=[FETCH])
    assert 'Tests can add pages. [1 "Tests can add pages"]' in body["choices"][0]["message"]["content"]
    assert "https://added.test/a" not in FakeOpenRouter().pages  # each fake has its own copy


def test_fake_web_fetch_truncates_to_max_content_tokens(http: httpx.Client) -> None:
    tool = {**FETCH, "parameters": {"max_content_tokens": 10}}
    [note] = cited(ask(http, "Read https://beekeeping.test/honey", tools=[tool]))
    assert note["content"] == PAGES["https://beekeeping.test/honey"][1][:40]
    long_page = {"https://long.test/": ("Long", "A long page. " + "x" * 5000)}
    with FakeOpenRouter() as fake, httpx.Client(base_url=fake.base_url, headers=AUTH, verify=False) as client:
        fake.pages.update(long_page)
        [note] = cited(ask(client, "Read https://long.test/", tools=[FETCH]))
    assert len(note["content"]) == 2000  # the default


@pytest.mark.parametrize(
    ("parameters", "read"),
    [
        ({"blocked_domains": ["hivescience.test"]}, ["https://beekeeping.test/honey"]),
        ({"allowed_domains": ["hivescience.test"]}, ["https://hivescience.test/colony"]),
        ({"max_uses": 1}, ["https://hivescience.test/colony"]),
    ],
)
def test_fake_web_fetch_honours_domains_and_max_uses(
    http: httpx.Client, parameters: dict[str, Any], read: list[str]
) -> None:
    question = "Compare https://hivescience.test/colony with https://beekeeping.test/honey"
    body = ask(http, question, tools=[{**FETCH, "parameters": parameters}])
    assert [n["url"] for n in cited(body)] == read and tool_use(body) == (0, len(read), len(read))


def test_fake_web_fetch_forced_reads_at_least_one_page(http: httpx.Client) -> None:
    tool = {**FETCH, "parameters": {"max_uses": 0}}
    question = "Read https://hivescience.test/colony"
    assert cited(ask(http, question, tools=[tool])) == []
    forced = ask(http, question, tools=[tool], tool_choice={"type": "openrouter:web_fetch"})
    assert [n["url"] for n in cited(forced)] == ["https://hivescience.test/colony"] and tool_use(forced) == (0, 1, 1)
    assert cited(ask(http, "No address here", tools=[tool], tool_choice={"type": "openrouter:web_fetch"})) == []


def test_fake_web_search_then_fetch_answers_from_corpus_pages(
    fake_openrouter: FakeOpenRouter, http: httpx.Client
) -> None:
    tools = [{**SEARCH, "parameters": {"engine": "exa"}}, {**FETCH, "parameters": {"max_uses": 2}}]
    question = "How do honeybee foragers make honey from nectar, and how does the waggle dance guide them?"
    body = ask(http, question, tools=tools, tool_choice="required")
    message, notes = body["choices"][0]["message"], cited(body)
    assert tool_use(body) == (1, 3, 3)
    read, unread = notes[:2], notes[2:]
    for note in read:  # the pages read: full text, and their first sentence in the answer before the marker
        title, text = PAGES[note["url"]]
        assert note["content"] == text and f"{text.split('. ')[0]}." in message["content"]
    assert [note["url"] for note in read] == ["https://beekeeping.test/honey", "https://hivescience.test/waggle-dance"]
    assert "about 18 percent" in read[0]["content"] and "Karl von Frisch" in read[1]["content"]
    assert [note["url"] for note in unread] == ["https://example.org/how-do-honeybee-foragers-make-honey-from-1"]
    assert message["content"][unread[0]["start_index"] :] == "[3]"  # a result not read: a marker only
    fees = web_search_fee(pricing(fake_openrouter, "openai/gpt-4o-mini"), 1, "exa") + web_fetch_fee(2, "auto")
    assert body["usage"]["cost"] == pytest.approx(token_cost(fake_openrouter, body) + fees)


def test_fake_web_fetch_does_not_read_search_results_when_search_is_lazy(http: httpx.Client) -> None:
    body = ask(http, "How many eggs can a honeybee queen lay in a day?", tools=[SEARCH, FETCH])
    assert cited(body) == [] and tool_use(body) == (0, 0, 0)
