"""MCP Apps views: one self-contained HTML document per kind of result, rendered by hosts that speak MCP Apps.

Each document is assembled here from the files beside this module: the shared stylesheet (`base.css`), the small
postMessage client for the host side of the protocol (`bridge.js`, written for us: the official client library is
about 670 KB bundled, far over our 150 KB budget per view), shared helpers (`markdown.js`, `chart.js`) and the view's
own markup and script. Everything is inline; the Content-Security-Policy allows exactly those inline blocks (by
SHA-256) and no network at all. Clients that do not negotiate Apps never see these documents.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .icons import SERVER_ICONS, tool_icons

__all__ = ["SERVER_ICONS", "TOOL_VIEWS", "VIEWS", "View", "content_security_policy", "tool_icons"]

MAX_VIEW_BYTES = 150 * 1024


@dataclass(frozen=True)
class View:
    """One view: the `ui://` resource a tool links to, and the files it is made of."""

    name: str
    title: str
    description: str
    scripts: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"ui://openrouter-research/{self.name}.html"

    def html(self) -> str:
        """The whole document (built once)."""
        return _document(self)


VIEWS = (
    View(
        "research",
        "Research report",
        "A research report with its sources, each citation's quote and how it was checked, and live progress.",
        ("bridge.js", "markdown.js", "research.js"),
    ),
    View(
        "compare",
        "Model comparison",
        "One column per model with cost and latency bars, and the judge's verdict.",
        ("bridge.js", "markdown.js", "compare.js"),
    ),
    View(
        "models",
        "Model explorer",
        "The catalog page as a sortable, filterable table with a price-against-context chart.",
        ("bridge.js", "chart.js", "models.js"),
    ),
    View(
        "benchmark",
        "Benchmark",
        "The ranking table and a chart of cost against quality, bubble size latency.",
        ("bridge.js", "markdown.js", "chart.js", "benchmark.js"),
    ),
)

_BY_NAME = {view.name: view for view in VIEWS}
TOOL_VIEWS = {
    "deep_research": _BY_NAME["research"].uri,
    "get_research": _BY_NAME["research"].uri,
    "cancel_research": _BY_NAME["research"].uri,
    "compare_models": _BY_NAME["compare"].uri,
    "list_models": _BY_NAME["models"].uri,
    "benchmark_models": _BY_NAME["benchmark"].uri,
    "get_benchmark": _BY_NAME["benchmark"].uri,
    "cancel_benchmark": _BY_NAME["benchmark"].uri,
}


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(style: str, script: str) -> str:
    """No network, no plugins, no frames, no forms: only this document's own inline style and script run."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_digest(script)}",
            f"style-src {_digest(style)}",
            "img-src data:",
            "connect-src 'none'",
            "font-src 'none'",
            "frame-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


@cache
def _document(view: View) -> str:
    style = _asset("base.css")
    script = "\n".join(_asset(name) for name in view.scripts)
    body = _asset(f"{view.name}.html")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(style, script)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{view.title}</title>\n<style>{style}</style>\n</head>\n"
        f"<body>\n{body}\n<script>{script}</script>\n</body>\n</html>\n"
    )
