"""Each MCP Apps view in headless Chromium, fed a real tool result from the real server over stdio (against the
fake OpenRouter): what a person sees, clicks and reads, in light and dark, by mouse and by keyboard."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp import Client

from ..e2e.conftest import stdio_params
from ..fakes.openrouter import FakeOpenRouter
from ..support import resource_text, result_text
from .conftest import ViewPage, open_view, wire

VIEW = "ui://openrouter-research/{}.html"
TOOL_CALLS = "window.hostLog.filter(m => m.method === 'tools/call')"
PLAN = {
    "sub_questions": [
        {"question": "How does a heat pump move heat?", "rationale": "r"},
        {"question": "How efficient are heat pumps in cold weather?", "rationale": "r"},
    ]
}
VERDICT = {
    "agreement": "medium",
    "summary": "Both say 4.",
    "disagreements": ["One model shows its working.", "One model adds a caveat about bases."],
    "recommended_answer": "**4**, in base ten.",
    "best_model": "google/gemini-2.5-flash",
}


# What a citation card's verdict badge says for each support verdict (the view's own wording).
VERDICT_BADGE = {
    "supported": "supported",
    "partly": "partly supported",
    "cannot_tell": "unclear",
    "unsupported": "unsupported: removed",
    "not_checked": "claim not checked",
}


def caller(client: Client) -> Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]:
    async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return wire(await client.call_tool(name, arguments))

    return call


async def view_html(client: Client, name: str) -> str:
    return resource_text(await client.read_resource(VIEW.format(name)))


async def check_themes_and_health(v: ViewPage) -> None:
    """Light as the host said, dark when the host switches, screenshots of both; no script error, no blocked
    inline code (CSP), no network request."""
    light = await v.background()
    await v.screenshot("light")
    await v.set_theme("dark")
    await v.frame().wait_for_function("document.documentElement.dataset.theme === 'dark'")
    dark = await v.background()
    await v.screenshot("dark")
    assert sum(light) / 3 > 200 and sum(dark) / 3 < 60, (light, dark)
    font = await v.frame().evaluate("getComputedStyle(document.body).fontFamily")
    assert "DejaVu Sans" in font  # the host's style variables are followed
    assert v.problems == [] and v.requests == [], (v.problems, v.requests)
    size = await v.host("window.viewSize")
    assert size and size["height"] > 100  # the view told the host how tall it is


async def test_research_view_every_citation_opens_its_source_card(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    # One quote on no page, beside the fake writer's true ones: the cards must show "quote found" and "not found".
    fake_openrouter.writer_extra = 'Heat pumps run on moonlight [1 "heat pumps are powered by moonlight alone"].'
    question = "How do heat pumps work?"
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("deep_research", {"question": question, "depth": 1})
        data = result.structured_content
        assert data is not None and data["status"] == "done"
        assert {c["quote_found"] for c in data["citations"]} == {True, False}
        html = await view_html(client, "research")
        async with open_view(chromium, "research", html, wire(result), {"question": question}, caller(client)) as v:
            view = v.view
            await view.locator("#report button.cite").first.wait_for()
            body = data["report"].split("\n## Sources")[0]
            marks = re.findall(r"\[(\d+)([?†])?\]", body)
            assert marks and await view.locator("button.cite").count() == len(marks)
            assert await view.locator("#sources li").count() == len(data["sources"])
            verification = data["verification"]
            assert f"{verification['citations']} citations checked" in await view.locator("#verification").inner_text()
            card = view.locator("#card")
            for n in sorted({int(m[0]) for m in marks}):
                source = next(s for s in data["sources"] if s["n"] == n)
                await view.locator(f"button.cite[data-n='{n}']").first.focus()
                await v.page.keyboard.press("Enter")
                await card.wait_for(state="visible")
                text = await card.inner_text()
                assert source["title"] in text and source["url"] in text
                checks = [c for c in data["citations"] if c["n"] == n]
                blocks = card.locator(".check")
                assert await blocks.count() == len(checks)
                for block, check in zip([blocks.nth(i) for i in range(len(checks))], checks, strict=True):
                    text = await block.inner_text()
                    assert check["quote"] in text and check["reason"] in text
                    verdict, provenance = block.locator(".badge").nth(0), block.locator(".badge").nth(1)
                    assert await verdict.inner_text() == VERDICT_BADGE[check["support"]]
                    found = (await provenance.inner_text()).startswith("quote found on the page")
                    tone = (await provenance.get_attribute("class") or "").split()
                    assert found is check["quote_found"] and ("ok" in tone) is check["quote_found"], (check, tone)
                await v.page.keyboard.press("Escape")
                await card.wait_for(state="hidden")
                assert await v.frame().evaluate("document.activeElement.dataset.n") == str(n)  # focus came back
            first = view.locator("button.cite").first
            await v.settled()  # the card closed: the view shrank
            await first.click()
            button_box, card_box = await first.bounding_box(), await card.bounding_box()
            assert button_box is not None and card_box is not None
            below = button_box["y"] + button_box["height"]
            assert below <= card_box["y"] <= below + 40  # the card opens beside its citation, not at the page's end
            await v.settled()  # the card opened: the view grew
            await card.locator(".url a").click()
            assert await v.host("window.opened") == [data["sources"][0]["url"]]
            assert question in await view.locator("#title").inner_text()
            await check_themes_and_health(v)


async def test_research_view_follows_a_run_in_progress_until_its_report(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    fake_openrouter.release.clear()  # the run stays in progress (held at its first call) until the test lets it go
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        started = await client.call_tool("deep_research", {"question": "Heat pumps?", "depth": 1, "background": True})
        assert started.structured_content is not None and started.structured_content["status"] == "running"
        html = await view_html(client, "research")
        async with open_view(chromium, "research-live", html, wire(started), {}, caller(client)) as v:
            live = v.view.locator("#live")
            await live.wait_for(state="visible")
            assert "In progress" in await live.inner_text()
            await v.view.locator("#stop").focus()  # a keyboard user on Stop keeps the focus across refreshes
            await v.page.wait_for_function("window.hostAnswered >= 1")  # a refresh came back, the run still going
            await v.frame().evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
            assert await live.is_visible() and await v.frame().evaluate("document.activeElement.id") == "stop"
            fake_openrouter.release.set()
            await v.view.locator("button.cite").first.wait_for(timeout=60_000)  # the report arrived by polling
            assert await live.is_hidden()
            calls = [m for m in await v.host("window.hostLog") if m.get("method") == "tools/call"]
            assert calls and all(c["params"]["name"] == "get_research" for c in calls)
            assert v.problems == []


async def test_research_view_stops_calling_the_host_at_teardown(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake_openrouter.structured_answers["research_plan"] = PLAN
    fake_openrouter.latency = 1.5
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        started = await client.call_tool("deep_research", {"question": "Heat pumps?", "depth": 1, "background": True})
        html = await view_html(client, "research")
        async with open_view(chromium, "research-teardown", html, wire(started), {}, caller(client)) as v:
            await v.page.wait_for_function(TOOL_CALLS + ".length >= 1")
            await v.host("window.teardown()")
            await v.page.wait_for_function("window.hostLog.some(m => m.id === 9999 && 'result' in m)")
            # Every call answered and the answers read by the view (it answers a ping after them): a timer the view
            # sets now, as long as its refresh interval (3 s), fires after any refresh it could still have due, since
            # timers run in deadline order, and its message reaches the host after anything that refresh sent.
            await v.page.wait_for_function(f"window.hostAnswered === {TOOL_CALLS}.length")
            await v.host("toView({ id: 9998, method: 'ping' })")
            await v.page.wait_for_function("window.hostLog.some(m => m.id === 9998 && 'result' in m)")
            await v.frame().evaluate(
                "setTimeout(() => parent.postMessage({ jsonrpc: '2.0', method: 'due' }, '*'), 3000)"
            )
            await v.page.wait_for_function("window.hostLog.some(m => m.method === 'due')")
            log = await v.host("window.hostLog")
            torn_down = next(i for i, m in enumerate(log) if m.get("id") == 9999 and "result" in m)
            assert [m for m in log[torn_down:] if m.get("method") == "tools/call"] == []
        await client.call_tool("cancel_research", {"research_id": started.structured_content["research_id"]})


async def test_compare_view_one_column_per_model_and_the_verdict(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    models = ["openai/gpt-4o-mini", "google/gemini-2.5-flash", "deepseek/deepseek-r1"]
    fake_openrouter.structured_answers["comparison"] = VERDICT
    fake_openrouter.fail(402, model=models[2], times=10, message="Insufficient credits")
    fake_openrouter.model_latency.update({models[0]: 0.2})
    arguments = {"prompt": "What is 2+2?", "models": models, "judge_model": "openai/gpt-4o"}
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("compare_models", arguments)
        data = result.structured_content
        assert data is not None
        html = await view_html(client, "compare")
        async with open_view(chromium, "compare", html, wire(result), arguments, caller(client)) as v:
            view = v.view
            await view.locator("article.column").first.wait_for()
            columns = view.locator("article.column")
            assert [await columns.nth(i).get_attribute("data-model") for i in range(await columns.count())] == models
            failed = view.locator("article.column.failed")
            assert await failed.count() == 1 and "credits" in await failed.inner_text()
            best = view.locator("article.column.best")
            assert await best.get_attribute("data-model") == VERDICT["best_model"]
            assert "judge's pick" in await best.inner_text()
            assert await view.locator("[data-agreement]").inner_text() == "medium agreement"
            assert await view.locator(".disagree li").all_inner_texts() == VERDICT["disagreements"]
            widths = await v.frame().evaluate(
                "[...document.querySelectorAll('article.column')].map(c => c.querySelector('.bar span').style.width)"
            )
            assert widths[2] == "0%" and all(w.endswith("%") and w != "0%" for w in widths[:2])
            assert "What is 2+2?" in await view.locator("#prompt").inner_text()
            await check_themes_and_health(v)


async def test_models_view_sorts_filters_charts_and_asks(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    arguments = {"limit": 8}
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("list_models", arguments)
        data = result.structured_content
        assert data is not None and data["next_offset"] == 8
        html = await view_html(client, "models")
        async with open_view(chromium, "models", html, wire(result), arguments, caller(client)) as v:
            view = v.view
            rows = view.locator("#table tbody tr")
            await rows.first.wait_for()
            assert await rows.count() == 8
            assert [await rows.nth(i).get_attribute("data-id") for i in range(8)] == [m["id"] for m in data["models"]]

            async def contexts() -> list[int]:
                cells = await view.locator("#table tbody tr td:nth-child(2)").all_inner_texts()
                return [int(c.replace(",", "")) for c in cells]

            await v.settled()
            await view.locator("th[data-key='context'] button").click()  # widest first, as one would want
            assert await contexts() == sorted(await contexts(), reverse=True)
            assert await view.locator("th[data-key='context']").get_attribute("aria-sort") == "descending"
            await view.locator("th[data-key='context'] button").focus()
            await v.page.keyboard.press("Enter")  # by keyboard: the other way
            assert await contexts() == sorted(await contexts())
            priced = [m for m in data["models"] if (m["prompt_usd_per_mtok"] or 0) > 0]
            assert await view.locator("svg.chart circle").count() == len(priced)
            await view.locator("#more").dblclick()  # the next page, through the host's tool call, once
            await rows.nth(9).wait_for()
            # Every call answered and read by the view (it answers a ping after them): any second page is drawn.
            await v.page.wait_for_function(f"window.hostAnswered === {TOOL_CALLS}.length")
            await v.host("toView({ id: 9998, method: 'ping' })")
            await v.page.wait_for_function("window.hostLog.some(m => m.id === 9998 && 'result' in m)")
            ids = await rows.evaluate_all("rows => rows.map(r => r.dataset.id)")
            assert len(ids) == len(set(ids)) == min(16, data["total"])
            tall = (await v.host("window.viewSize"))["height"]
            await view.locator("#filter").fill("no model is called this")
            assert await rows.count() == 0 and "nothing to plot yet" in await view.locator("svg.chart").text_content()
            await v.page.wait_for_function(f"window.viewSize.height < {tall}")  # the host is told it shrank
            await view.locator("#filter").fill("gemini")
            shown = await view.locator("#table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
            assert shown and all("gemini" in s for s in shown)
            await v.settled()  # the rows came back: the view grew
            await view.locator(f"button[aria-label='Choose {shown[0]}']").click()
            await view.locator("#ask-prompt").fill("Say hello.")
            await v.settled()  # the prompt box opened: the view grew
            await view.locator("#ask-send").click()
            answer = view.locator("#ask-answer .answer")
            await answer.wait_for()
            assert (await answer.inner_text()).startswith(f"[{shown[0]}]")
            await check_themes_and_health(v)
        # A host that lets views call no tools: the view says so instead of failing.
        async with open_view(
            chromium, "models-readonly", html, wire(result), arguments, caller(client), capabilities={}
        ) as v:
            await v.view.locator("#table tbody tr").first.wait_for()
            assert await v.view.locator("#more").is_hidden()
            await v.settled()
            await v.view.locator("#table tbody tr button").first.click()
            assert await v.view.locator("#ask-send").is_disabled()
            assert "does not let views call tools" in await v.view.locator("#ask-note").inner_text()


async def test_benchmark_view_ranking_table_and_chart(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    models = ["openai/gpt-4o-mini", "google/gemini-2.5-flash", "deepseek/deepseek-r1"]
    fake_openrouter.model_latency.update({models[0]: 0.15, models[1]: 0.02, models[2]: 0.08})
    fake_openrouter.quality.update({models[0]: 9, models[1]: 5, models[2]: 7})
    arguments = {"prompts": ["Name a prime.", "Capital of France?"], "models": models, "judge_model": "openai/gpt-4o"}
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("benchmark_models", arguments)
        data = result.structured_content
        assert data is not None and data["status"] == "done"
        html = await view_html(client, "benchmark")
        async with open_view(chromium, "benchmark", html, wire(result), arguments, caller(client)) as v:
            view = v.view
            rows = view.locator("#table tbody tr")
            await rows.first.wait_for()
            assert [await rows.nth(i).get_attribute("data-id") for i in range(3)] == data["ranking"]
            assert await view.locator("#tradeoffs").inner_text() == data["tradeoffs"].replace("`", "")
            assert await view.locator("#tradeoffs code").count() >= 2  # model ids set as code
            assert await view.locator("svg.chart circle").count() == 3
            await v.settled()
            await view.locator("th[data-key='quality'] button").click()
            by_quality = await rows.evaluate_all("rows => rows.map(r => r.dataset.id)")
            assert by_quality == [models[0], models[2], models[1]]  # best first
            await view.locator("svg.chart circle[data-id='deepseek/deepseek-r1']").focus()
            await v.page.keyboard.press("Enter")
            assert await view.locator("tr.picked").get_attribute("data-id") == "deepseek/deepseek-r1"
            await check_themes_and_health(v)


MARKDOWN = """## Why C# and F#

1. first

2. second

3. third

Figures:
| model | score |
|--|--|
| a | 1 |

4. four
5. five

See [Heat pump](https://en.wikipedia.org/wiki/Heat_pump_(disambiguation)) and [1](https://example.org/one).
"""


async def test_views_render_the_markdown_models_write(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    models = ["openai/gpt-4o-mini", "google/gemini-2.5-flash"]
    fake_openrouter.text_answers[models[0]] = MARKDOWN
    arguments = {"prompt": "Explain.", "models": models}
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("compare_models", arguments)
        html = await view_html(client, "compare")
        async with open_view(chromium, "compare-markdown", html, wire(result), arguments, caller(client)) as v:
            answer = v.view.locator(f"article.column[data-model='{models[0]}'] .answer")
            await answer.wait_for()
            assert await answer.locator("h3").inner_text() == "Why C# and F#"
            lists = answer.locator("ol")
            assert await lists.count() == 2  # blank lines between items keep one list
            assert await lists.nth(0).locator("li").all_inner_texts() == ["first", "second", "third"]
            assert await lists.nth(1).get_attribute("start") == "4"
            assert await answer.locator("table td").all_inner_texts() == ["a", "1"]  # a table right after text
            hrefs = await answer.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
            assert hrefs == ["https://en.wikipedia.org/wiki/Heat_pump_(disambiguation)", "https://example.org/one"]
            assert v.problems == []


async def test_views_show_hostile_answers_as_text(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    """Model output is data: markup in an answer is shown, never run or loaded; only http(s) links become links."""
    hostile = (
        'Look: <img src=x onerror="document.title=\'owned\'"> <script>document.title="owned"</script> '
        "[click me](javascript:alert(1)) and [a real page](https://example.org/page) **bold <b>tag</b>**"
    )
    models = ["openai/gpt-4o-mini", "google/gemini-2.5-flash"]
    fake_openrouter.text_answers[models[0]] = hostile
    arguments = {"prompt": "Say something.", "models": models}
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("compare_models", arguments)
        html = await view_html(client, "compare")
        async with open_view(chromium, "compare-hostile", html, wire(result), arguments, caller(client)) as v:
            column = v.view.locator(f"article.column[data-model='{models[0]}']")
            await column.wait_for()
            assert await column.locator("img, script, b").count() == 0
            text = await column.inner_text()
            assert "<img src=x onerror=" in text and "<script>" in text and "<b>tag</b>" in text
            links = await column.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
            assert links == ["https://example.org/page"]
            assert await v.frame().evaluate("document.title") != "owned"
            await v.settled()
            await column.locator("a").click()
            assert await v.host("window.opened") == ["https://example.org/page"]
            assert v.problems == [] and v.requests == []


async def test_views_show_a_failed_call_in_words(
    chromium: str, fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    arguments = {"supports": "tools"}
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        result = await client.call_tool("list_models", arguments)
        assert result.is_error
        html = await view_html(client, "models")
        async with open_view(chromium, "models-error", html, wire(result), arguments, caller(client)) as v:
            error = v.view.locator("#summary .error")
            await error.wait_for()
            assert await error.inner_text() == result_text(result)
            assert v.problems == []
