"""Browser tests of the MCP Apps views: headless Chromium (Debian's `chromium`, driven by Playwright from PyPI)
loads each view inside `host.html`, a test host that speaks the host side of the Apps protocol and proxies tool
calls to the real server over stdio. Skipped, with the reason, where no Chromium is installed."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST_PAGE = Path(__file__).with_name("host.html")
SCREENSHOTS = Path(os.environ.get("VIEW_SCREENSHOTS", ROOT / "test-artifacts" / "views"))
FLAGS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
]
# What a host passes as `styles.variables` (a subset, as hosts do): the views must follow them.
HOST_VARIABLES = {"--font-sans": "DejaVu Sans, sans-serif", "--border-radius-md": "6px"}
CAPABILITIES: dict[str, Any] = {"serverTools": {}, "serverResources": {}, "openLinks": {}}


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    pytest.importorskip("playwright", reason="Playwright is not installed (it comes with the test extras)")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium on this machine: `apt-get install -y chromium` (Debian), or set CHROMIUM=/path")
    return path


ToolCaller = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class ViewPage:
    """A view open in the test host: its frame, and what went wrong or out while it ran."""

    page: Any
    name: str
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def view(self) -> Any:
        return self.page.frame_locator("#view")

    def frame(self) -> Any:
        return next(f for f in self.page.frames if f != self.page.main_frame)

    def note(self, kind: str, text: str) -> None:
        if kind in ("error", "warning"):
            self.problems.append(text)

    async def host(self, expression: str) -> Any:
        return await self.page.evaluate(expression)

    async def settled(self) -> None:
        """Wait until the host has sized the frame to the view's content as it is now. The host resizes the frame
        when the view reports a new height, and a click while it does can land beside its target: a frame that
        grows scrolls its content back, between the pointer's press and its release."""
        height = await self.frame().evaluate("Math.ceil(document.body.getBoundingClientRect().height)")
        await self.page.wait_for_function(f"window.viewSize !== null && window.viewSize.height === {height}")

    async def set_theme(self, theme: str) -> None:
        await self.page.evaluate(f"window.setTheme({json.dumps(theme)})")

    async def background(self) -> tuple[int, int, int]:
        """The view's rendered background colour, as RGB."""
        value = await self.frame().evaluate("getComputedStyle(document.documentElement).backgroundColor")
        numbers = [int(float(x)) for x in value[value.index("(") + 1 : value.index(")")].split(",")[:3]]
        return numbers[0], numbers[1], numbers[2]

    async def screenshot(self, suffix: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{suffix}.png"
        await self.page.locator("#view").screenshot(path=str(path))
        return path


def wire(result: Any) -> dict[str, Any]:
    """A CallToolResult as it travels on the wire (what a host hands the view)."""
    data: dict[str, Any] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return data


@asynccontextmanager
async def open_view(
    chromium: str,
    name: str,
    html: str,
    result: dict[str, Any] | None,
    arguments: dict[str, Any],
    call_tool: ToolCaller,
    theme: str = "light",
    capabilities: dict[str, Any] | None = None,
) -> AsyncIterator[ViewPage]:
    """Chromium with the test host showing `html`, fed `result` (wire JSON) and `arguments`."""
    from playwright.async_api import async_playwright

    config = {
        "html": html,
        "result": result,
        "input": arguments,
        "theme": theme,
        "variables": HOST_VARIABLES,
        "capabilities": CAPABILITIES if capabilities is None else capabilities,
    }
    page_html = HOST_PAGE.read_text().replace("__CONFIG__", json.dumps(config).replace("</", "<\\/"))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1120, "height": 800})
            opened = ViewPage(page, name)
            page.on("console", lambda m: opened.note(m.type, m.text))
            page.on("pageerror", lambda e: opened.problems.append(str(e)))
            page.on("request", lambda r: opened.requests.append(r.url))
            await page.route("**/*", lambda route: route.abort())  # no network, ever
            await page.expose_function("hostCallTool", call_tool)
            await page.set_content(page_html)
            yield opened
        finally:
            await browser.close()
