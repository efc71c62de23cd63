"""Markdown from models and the web, made safe to show: raw HTML is neutralised (`_util.neutralise`), only
http(s) links and images survive, and web titles are escaped so they cannot become links or markup. Code spans
and blocks are left as they are (a host shows them literally)."""

from __future__ import annotations

import re

from ._util import NEUTRAL_LT, is_web_url, neutralise

__all__ = ["escape_inline", "safe_markdown"]

_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]+`)", re.DOTALL)
# [text](target) and ![alt](target), with one level of parentheses in the target
_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*(<[^>\n]*>|(?:[^\s()]|\([^\s()]*\))*)(\s+\"[^\"\n]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:[A-Za-z][A-Za-z0-9+.-]*):[^<>\s]*)>")
_REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*(\S+).*$", re.MULTILINE)
_WEB_AUTOLINK_OR_TAG = re.compile(r"(<https?://[^<>\s]*>)|<(?=[A-Za-z/!?])", re.IGNORECASE)


def _link(match: re.Match[str]) -> str:
    bang, text, target = match.group(1), match.group(2), match.group(3).strip("<>")
    if is_web_url(target):
        return match.group(0)
    return text if not bang else f"[image: {text}]"


def _prose(text: str) -> str:
    text = _AUTOLINK.sub(
        lambda m: m.group(0) if is_web_url(m.group(1)) else m.group(1).replace(":", ":\u200b", 1), text
    )
    text = _LINK.sub(_link, text)
    text = _REFERENCE.sub(lambda m: m.group(0) if is_web_url(m.group(1)) else "", text)
    # `neutralise`, but a web autolink (`<https://…>`) stays a link.
    return _WEB_AUTOLINK_OR_TAG.sub(lambda m: m.group(1) or NEUTRAL_LT, text)


def safe_markdown(text: str) -> str:
    """`text` with raw HTML tags neutralised (`<img onerror=…>` shows as `‹img onerror=…>`) and every link, image
    or reference whose target is not http(s) reduced to its text (no `javascript:`, `data:`, `vbscript:` or `file:`
    targets)."""
    parts = _CODE.split(text)
    return "".join(part if i % 2 else _prose(part) for i, part in enumerate(parts))


def escape_inline(text: str) -> str:
    """A web title as plain inline text: on one line, markdown punctuation backslash-escaped, and `neutralise`d
    (so no tag survives, whether the host renders markdown or HTML)."""
    return neutralise(re.sub(r"([\[\]()\\`*_!|])", r"\\\1", " ".join(text.split())))
