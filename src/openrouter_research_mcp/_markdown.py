"""Markdown from models and the web, made safe to show: raw HTML is neutralised (`_util.neutralise`), only
http(s) links and images survive, and web titles are escaped so they cannot become links or markup.

Only fenced code blocks are left as written (a host shows them literally, and code keeps its `<`): they are found
by CommonMark's own line rules (an opening fence of three or more backticks or tildes indented at most three
spaces, a backtick fence's info string free of backticks, a closing fence of the same character at least as long,
or the end of the text), so nothing this module leaves alone can be anything but code to a renderer. Inline code
spans are neutralised like prose: whether backticks pair up depends on the whole paragraph, and a span guessed
wrong would let raw HTML through."""

from __future__ import annotations

import re

from ._util import NEUTRAL_LT, is_web_url, neutralise

__all__ = ["escape_inline", "safe_markdown"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
# [text](target) and ![alt](target), with one level of parentheses in the target
_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*(<[^>\n]*>|(?:[^\s()]|\([^\s()]*\))*)(\s+\"[^\"\n]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:[A-Za-z][A-Za-z0-9+.-]*):[^<>\s]*)>")
_REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*(\S+).*$", re.MULTILINE)
_WEB_AUTOLINK_OR_TAG = re.compile(r"(<https?://[^<>\s`]*>)|<(?=[A-Za-z/!?])", re.IGNORECASE)


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


def _fenced(text: str) -> list[tuple[bool, str]]:
    """`text` cut into (is a fenced code block, its text) pieces, by CommonMark's fence rules."""
    pieces: list[tuple[bool, str]] = []
    prose: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i].rstrip("\r\n"))
        if opening is None or (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            prose.append(lines[i])
            i += 1
            continue
        fence = opening.group(1)
        end = i + 1
        while end < len(lines):
            closing = _FENCE.match(lines[end].rstrip("\r\n"))
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                if not closing.group(2).strip():
                    break
            end += 1
        if prose:
            pieces.append((False, "".join(prose)))
            prose = []
        pieces.append((True, "".join(lines[i : end + 1])))
        i = end + 1
    if prose:
        pieces.append((False, "".join(prose)))
    return pieces


def safe_markdown(text: str) -> str:
    """`text` with raw HTML tags neutralised (`<img onerror=…>` shows as `‹img onerror=…>`) and every link, image
    or reference whose target is not http(s) reduced to its text (no `javascript:`, `data:`, `vbscript:` or `file:`
    targets)."""
    return "".join(part if code else _prose(part) for code, part in _fenced(text))


def escape_inline(text: str) -> str:
    """A web title as plain inline text: on one line, markdown punctuation backslash-escaped, and `neutralise`d
    (so no tag survives, whether the host renders markdown or HTML)."""
    return neutralise(re.sub(r"([\[\]()\\`*_!|])", r"\\\1", " ".join(text.split())))
