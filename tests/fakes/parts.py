"""Message content parts (text, images, files, audio): the shape check the fake applies, and what was attached.

Shapes accepted, as OpenRouter documents them:
`{"type":"text","text":...}`, `{"type":"image_url","image_url":{"url": http(s) URL or
"data:image/<png|jpeg|webp|gif>;base64,..."}}`, `{"type":"file","file":{"filename":..., "file_data": http(s) URL or
"data:<mime>;base64,..."}}`, `{"type":"input_audio","input_audio":{"data": base64, "format": "wav"|"mp3"}}`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from typing import Any

from .common import as_dict, dicts

__all__ = ["attachment_note", "attachments", "content_problem"]

_IMAGE_DATA = re.compile(r"data:image/(?:png|jpeg|webp|gif);base64,(.*)", re.S)
_FILE_DATA = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.S)
_AUDIO_FORMATS = ("wav", "mp3")


def _web(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _base64(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(data)


def _part_problem(part: Any) -> str | None:
    """What is wrong with one content part, or None."""
    if not isinstance(part, dict):
        return "a content part must be an object"
    kind = part.get("type")
    if kind == "text":
        return None if isinstance(part.get("text"), str) else "'text' must be a string"
    if kind == "image_url":
        url = as_dict(part.get("image_url")).get("url")
        if not isinstance(url, str) or not url:
            return "'image_url.url' is required"
        if _web(url):
            return None
        match = _IMAGE_DATA.fullmatch(url)
        if match is None:
            return "'image_url.url' must be an http(s) URL or a data:image/<png|jpeg|webp|gif>;base64 URL"
        return None if _base64(match.group(1)) else "'image_url.url' carries invalid base64 data"
    if kind == "file":
        file = as_dict(part.get("file"))
        if not isinstance(file.get("filename"), str) or not file["filename"]:
            return "'file.filename' is required"
        data = file.get("file_data")
        if not isinstance(data, str) or not data:
            return "'file.file_data' is required"
        if _web(data):
            return None
        found = _FILE_DATA.fullmatch(data)
        if found is None:
            return "'file.file_data' must be an http(s) URL or a data:<mime>;base64 URL"
        return None if _base64(found.group(2)) else "'file.file_data' carries invalid base64 data"
    if kind == "input_audio":
        audio = as_dict(part.get("input_audio"))
        if audio.get("format") not in _AUDIO_FORMATS:
            return "'input_audio.format' must be 'wav' or 'mp3'"
        data = audio.get("data")
        return None if isinstance(data, str) and _base64(data) else "'input_audio.data' must be base64 data"
    return f"unknown content part type {kind!r}"


def content_problem(body: dict[str, Any]) -> str | None:
    """The first malformed content part of the request's messages, named by position; None when all are fine."""
    for i, message in enumerate(dicts(body.get("messages"))):
        content = message.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if (problem := _part_problem(part)) is not None:
                    return f"messages[{i}].content[{j}]: {problem}"
    return None


def _is_pdf(file: dict[str, Any]) -> bool:
    data, name = str(file.get("file_data") or ""), str(file.get("filename") or "")
    found = _FILE_DATA.fullmatch(data)
    if found is not None:
        return found.group(1) == "application/pdf"
    return name.lower().endswith(".pdf") or data.split("?")[0].lower().endswith(".pdf")


def attachments(body: dict[str, Any]) -> Counter[str]:
    """How many of each attachment the request's messages carry: `image`, `pdf`, `file` (not a PDF), `audio`."""
    counts: Counter[str] = Counter()
    for message in dicts(body.get("messages")):
        for part in dicts(message.get("content")):
            kind = part.get("type")
            if kind == "image_url":
                counts["image"] += 1
            elif kind == "input_audio":
                counts["audio"] += 1
            elif kind == "file":
                counts["pdf" if _is_pdf(as_dict(part.get("file"))) else "file"] += 1
    return counts


def attachment_note(counts: Counter[str]) -> str:
    """`[saw 1 image, 2 pdfs]`: what the fake model says it received; empty when nothing was attached."""
    said = [f"{n} {kind}{'s' if n > 1 and kind != 'audio' else ''}" for kind, n in sorted(counts.items()) if n]
    return f"[saw {', '.join(said)}]" if said else ""
