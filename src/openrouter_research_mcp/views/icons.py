"""Icons for the server and its tools: small SVGs inlined as data URIs, so no client ever fetches anything."""

from __future__ import annotations

import base64

from mcp.types import Icon

__all__ = ["SERVER_ICONS", "tool_icons"]

_FRAME = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#5b4bc4" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{}</svg>'
)

_GLYPHS = {
    # a route between two nodes: many models, one router
    "server": '<circle cx="5" cy="6" r="2.5"/><circle cx="19" cy="18" r="2.5"/><path d="M7.5 6h5a3.5 3.5 0 0 1 0 7'
    'h-1a3.5 3.5 0 0 0 0 7h5"/>',
    "ask": '<path d="M4 5h16v10H9l-5 4z"/>',
    "compare_models": '<rect x="3" y="4" width="7" height="16" rx="1"/>'
    '<rect x="14" y="4" width="7" height="16" rx="1"/>',
    "list_models": '<path d="M8 6h13M8 12h13M8 18h13"/><circle cx="4" cy="6" r="1"/><circle cx="4" cy="12" r="1"/>'
    '<circle cx="4" cy="18" r="1"/>',
    "deep_research": '<circle cx="10" cy="10" r="6"/><path d="M14.5 14.5 21 21M7.5 10h5M10 7.5v5"/>',
    "get_research": '<path d="M6 3h9l4 4v14H6z"/><path d="M9 11h7M9 15h7"/>',
    "cancel_research": '<circle cx="12" cy="12" r="9"/><rect x="9" y="9" width="6" height="6"/>',
    "benchmark_models": '<path d="M4 20V10M10 20V4M16 20v-7M22 20H2"/>',
    "get_benchmark": '<path d="M4 20V10M10 20V4M16 20v-7M22 20H2"/>',
    "cancel_benchmark": '<circle cx="12" cy="12" r="9"/><rect x="9" y="9" width="6" height="6"/>',
}


def _icon(glyph: str) -> Icon:
    svg = _FRAME.format(glyph)
    return Icon(
        src="data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode(),
        mime_type="image/svg+xml",
        sizes=["any"],
    )


SERVER_ICONS = [_icon(_GLYPHS["server"])]


def tool_icons(tool: str) -> list[Icon] | None:
    """The icon of a tool, or None for a tool without one."""
    glyph = _GLYPHS.get(tool)
    return [_icon(glyph)] if glyph else None
