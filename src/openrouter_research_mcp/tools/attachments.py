"""Files shown to a model: images, PDFs and audio from local paths, http(s) URLs or data URIs, as content parts.

Local files are read through one checked file descriptor (`localfile.py`): a regular file, inside
`OPENROUTER_FILE_ROOTS` when that is set, no larger than `OPENROUTER_MAX_ATTACHMENT_MB`, whatever happens to its
name meanwhile. The kind comes from the file's first bytes, not its name. Images and PDFs are read in full before
anything is sent (`media.py`): broken ones are refused, images turned upright and downscaled, PDF pages counted.
URLs are passed to OpenRouter as they are: the server never downloads them. PDFs go as `file` parts read by
OpenRouter's `file-parser` plugin, so any model can read one. All of it is blocking work, done off the event loop
and bounded in time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import mimetypes
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import RequestError
from ..openrouter.models import ModelInfo
from .localfile import in_daemon_thread, read_local
from .media import MAX_IMAGE_SIDE, pdf_pages, prepare_image

__all__ = [
    "IMAGE_TOKENS",
    "MAX_ATTACHMENTS",
    "MAX_IMAGE_SIDE",
    "Attachment",
    "Attachments",
    "alternatives",
    "load_attachments",
    "unsupported_by",
]

Kind = Literal["image", "pdf", "audio"]
MAX_ATTACHMENTS = 10
IMAGE_TOKENS = 1600  # a pessimistic count of the prompt tokens one image adds
PDF_PAGE_TOKENS = 1000  # and one PDF page, once parsed to text
OCR_FEE_PER_PAGE = 0.002  # mistral-ocr: $2 per 1,000 pages; the other engines are free
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif"}
AUDIO_TYPES = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}
NEEDS = {"image": "image", "audio": "audio", "pdf": "file"}  # the input modality each kind needs (pdf: natively)
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)(?:;[\w=.+-]+)*;base64,(.*)$", re.DOTALL)


@dataclass
class Attachment:
    """One file ready to send: its kind, its content part, and what to tell the user about it."""

    kind: Kind
    part: dict[str, Any]
    label: str  # a file name or URL, for messages
    pages: int = 0  # a PDF's page count (an estimate), for its cost
    note: str | None = None  # e.g. that an image was downscaled


@dataclass
class Attachments:
    """Everything attached to one prompt."""

    items: list[Attachment] = field(default_factory=list)

    def kinds(self) -> set[str]:
        return {a.kind for a in self.items}

    def notes(self) -> list[str]:
        return [a.note for a in self.items if a.note]

    def count(self, kind: Kind) -> int:
        return sum(a.kind == kind for a in self.items)

    def prompt_tokens(self) -> int:
        """A pessimistic count of the prompt tokens the attachments add (images, parsed PDF pages, audio)."""
        audio = sum(len(str(a.part.get("input_audio", {}).get("data", ""))) // 100 for a in self.items)
        return self.count("image") * IMAGE_TOKENS + sum(a.pages for a in self.items) * PDF_PAGE_TOKENS + audio

    def fees(self, pdf_engine: str) -> float:
        """What parsing the PDFs costs (mistral-ocr charges per page)."""
        pages = sum(a.pages for a in self.items if a.kind == "pdf")
        return pages * OCR_FEE_PER_PAGE if pdf_engine == "mistral-ocr" else 0.0

    def content(self, text: str) -> str | list[dict[str, Any]]:
        """The user message's content: plain text, or text followed by the attachments' parts."""
        if not self.items:
            return text
        return [{"type": "text", "text": text}, *(a.part for a in self.items)]

    def plugins(self, pdf_engine: str) -> list[dict[str, Any]]:
        """The `file-parser` plugin, when a PDF is attached."""
        return [{"id": "file-parser", "pdf": {"engine": pdf_engine}}] if self.count("pdf") else []


def _sniff(data: bytes) -> str | None:
    """The MIME type from a file's first bytes, for the kinds models take."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return None


def _from_bytes(data: bytes, mime: str, label: str, filename: str) -> Attachment:
    if mime in IMAGE_TYPES:
        data, note = prepare_image(data, mime, label)
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        return Attachment("image", {"type": "image_url", "image_url": {"url": url}}, label, note=note)
    if mime == "application/pdf":
        file_data = f"data:application/pdf;base64,{base64.b64encode(data).decode()}"
        return Attachment(
            "pdf",
            {"type": "file", "file": {"filename": filename, "file_data": file_data}},
            label,
            pages=pdf_pages(data, label),
        )
    if mime in AUDIO_TYPES:
        if not data:
            raise RequestError(f"{label} is empty (0 bytes). Attach the audio file itself.")
        if _sniff(data) not in ("audio/wav", "audio/mpeg"):
            raise RequestError(
                f"{label} is named as audio but is not a WAV or MP3 file (its first bytes say otherwise). Attach the "
                "recording itself."
            )
        part = {
            "type": "input_audio",
            "input_audio": {"data": base64.b64encode(data).decode(), "format": AUDIO_TYPES[mime]},
        }
        return Attachment("audio", part, label)
    raise RequestError(
        f"{label} is a kind of file models here cannot take ({mime}). Attach an image (PNG, JPEG, "
        "WebP, GIF), a PDF, or audio (WAV, MP3)."
    )


def _local(spec: str, settings: Settings) -> Attachment:
    if settings.mcp_transport == "http" and not settings.file_roots:
        raise RequestError(
            f"{spec} is a path on the server's disk, not yours: over HTTP, local files are read only from the folders "
            "the operator allows (OPENROUTER_FILE_ROOTS). Attach the file as a data: URI or an https URL instead."
        )
    limit = int(settings.max_attachment_mb * 1024 * 1024)
    data, name = read_local(spec, settings.file_roots, limit, settings.max_attachment_mb)
    label = os.path.basename(spec) or spec
    mime = _sniff(data) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _from_bytes(data, mime, label, name)


def _data_uri(spec: str, settings: Settings) -> Attachment:
    match = _DATA_URI.match(spec.strip())
    if match is None:
        raise RequestError("A data URI attachment must look like data:<type>;base64,<data>.")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("The data URI attachment is not valid base64.") from None
    if len(data) > settings.max_attachment_mb * 1024 * 1024:
        raise RequestError(f"The data URI attachment is over the {settings.max_attachment_mb:g} MB limit.")
    return _from_bytes(data, _sniff(data) or match.group(1).lower(), "the data URI attachment", "attachment.pdf")


def _url(spec: str) -> Attachment:
    name = urlsplit(spec).path.rsplit("/", 1)[-1]
    mime = mimetypes.guess_type(name)[0] or ""
    if mime in IMAGE_TYPES:
        return Attachment("image", {"type": "image_url", "image_url": {"url": spec}}, spec)
    if mime == "application/pdf":
        return Attachment("pdf", {"type": "file", "file": {"filename": name, "file_data": spec}}, spec, pages=1)
    raise RequestError(
        f"Cannot tell what kind of file {spec} is from its name. Attach a URL ending in .png, .jpg, "
        ".webp, .gif or .pdf, or download the file and attach its path (audio must be a local file)."
    )


def _load(specs: Sequence[str], settings: Settings, deadline: float) -> Attachments:
    out = Attachments()
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        if time.monotonic() > deadline:  # the caller has been answered already: do no more work for it
            break
        if spec.startswith("data:"):
            out.items.append(_data_uri(spec, settings))
        elif spec.lower().startswith(("http://", "https://")):
            out.items.append(_url(spec))
        elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec):
            raise RequestError(f"{spec.split(':', 1)[0]}: URLs cannot be attached; use http(s), a data URI, or a path.")
        else:
            out.items.append(_local(spec, settings))
    return out


async def load_attachments(specs: Sequence[str] | None, settings: Settings) -> Attachments:
    """Read, check and prepare `specs` (paths, URLs, data URIs) on a worker thread."""
    if not specs:
        return Attachments()
    if len(specs) > MAX_ATTACHMENTS:
        raise RequestError(f"At most {MAX_ATTACHMENTS} attachments per call; got {len(specs)}.")
    chosen = list(specs)
    deadline = time.monotonic() + settings.timeout
    # Blocking reads and decoding, off the event loop and bounded in time (see localfile.py).
    return await asyncio.to_thread(
        in_daemon_thread, lambda: _load(chosen, settings, deadline), settings.timeout, "the attachments"
    )


def unsupported_by(info: ModelInfo | None, attachments: Attachments, pdf_engine: str) -> list[str]:
    """The attachment kinds `info`'s model cannot take (a PDF needs file input only with the `native` engine)."""
    if info is None:
        return []
    missing = []
    for kind in sorted(attachments.kinds()):
        if kind == "pdf" and pdf_engine != "native":
            continue
        if NEEDS[kind] not in info.input_modalities:
            missing.append(kind)
    return missing


def alternatives(models: Iterable[ModelInfo], info: ModelInfo, kinds: Sequence[str], n: int = 3) -> list[str]:
    """Up to `n` catalog models that take `kinds`, nearest in price to `info`."""
    needed = {NEEDS[k] for k in kinds}
    able = [m for m in models if needed <= set(m.input_modalities) and m.pricing.known and m.id != info.id]
    price = info.pricing.prompt + info.pricing.completion if info.pricing.known else 0.0
    return [m.id for m in sorted(able, key=lambda m: abs(m.pricing.prompt + m.pricing.completion - price))[:n]]
