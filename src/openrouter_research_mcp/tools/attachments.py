"""Files shown to a model: images, PDFs and audio from local paths, http(s) URLs or data URIs, as content parts.

Local files are read with care: the path is resolved (symlinks followed), must be a regular file (never a device, a
FIFO or a directory), inside `OPENROUTER_FILE_ROOTS` when that is set, and no larger than
`OPENROUTER_MAX_ATTACHMENT_MB`. The kind comes from the file's first bytes, not its name. Images larger than a model
can use are downscaled (Pillow) before upload, and the result says so. URLs are passed to OpenRouter as they are:
the server never downloads them. PDFs go as `file` parts read by OpenRouter's `file-parser` plugin, so any model can
read one. All of it is blocking work, done on a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import mimetypes
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import RequestError
from ..openrouter.models import ModelInfo

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
MAX_IMAGE_SIDE = 1568  # the longest side models make use of; larger images cost upload time and tokens for nothing
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


def _pages(data: bytes) -> int:
    """A PDF's page count, read from its page objects (at least one)."""
    return max(len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data)), 1)


def _downscale(data: bytes, mime: str, label: str) -> tuple[bytes, str | None]:
    """An image no larger than MAX_IMAGE_SIDE on its longest side (animated GIFs are left alone)."""
    from PIL import Image, UnidentifiedImageError  # imported on first use: start-up does not pay for Pillow

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max(width, height) <= MAX_IMAGE_SIDE or getattr(image, "is_animated", False):
                return data, None
            image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            fmt = IMAGE_TYPES[mime].upper()
            image.save(out, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
            note = (
                f"{label} was downscaled from {width}×{height} to {image.size[0]}×{image.size[1]} pixels (the "
                f"most a model uses) before upload."
            )
            return out.getvalue(), note
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RequestError(
            f"{label} is not a readable image ({type(exc).__name__}). Attach a PNG, JPEG, WebP or GIF file."
        ) from None


def _from_bytes(data: bytes, mime: str, label: str, filename: str) -> Attachment:
    if mime in IMAGE_TYPES:
        data, note = _downscale(data, mime, label)
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        return Attachment("image", {"type": "image_url", "image_url": {"url": url}}, label, note=note)
    if mime == "application/pdf":
        file_data = f"data:application/pdf;base64,{base64.b64encode(data).decode()}"
        return Attachment(
            "pdf", {"type": "file", "file": {"filename": filename, "file_data": file_data}}, label, pages=_pages(data)
        )
    if mime in AUDIO_TYPES:
        part = {
            "type": "input_audio",
            "input_audio": {"data": base64.b64encode(data).decode(), "format": AUDIO_TYPES[mime]},
        }
        return Attachment("audio", part, label)
    raise RequestError(
        f"{label} is a kind of file models here cannot take ({mime}). Attach an image (PNG, JPEG, "
        "WebP, GIF), a PDF, or audio (WAV, MP3)."
    )


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _local(spec: str, settings: Settings) -> Attachment:
    label = os.path.basename(spec) or spec
    try:
        path = Path(spec).expanduser().resolve(strict=True)  # follows symlinks, so the checks see the real file
        info = path.stat()
    except (OSError, RuntimeError):
        raise RequestError(f"{spec} does not exist or cannot be read. Give the absolute path of a file.") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
        raise RequestError(f"{spec} is {what}. Attach a regular file.")
    roots = [root.resolve() for root in settings.file_roots]
    if roots and not _inside(path, roots):
        allowed = ", ".join(str(r) for r in roots)
        raise RequestError(
            f"{spec} is outside the folders this server may read ({allowed}); set "
            "OPENROUTER_FILE_ROOTS to allow it, or copy the file into one of them."
        )
    limit = int(settings.max_attachment_mb * 1024 * 1024)
    if info.st_size > limit:
        raise RequestError(
            f"{label} is {info.st_size / 1048576:.1f} MB, over the {settings.max_attachment_mb:g} MB "
            "limit (OPENROUTER_MAX_ATTACHMENT_MB). Attach a smaller file, or a URL to it."
        )
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise RequestError(f"{spec} could not be read ({exc.strerror or type(exc).__name__}).") from None
    mime = _sniff(data) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return _from_bytes(data, mime, label, path.name)


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


def _load(specs: Sequence[str], settings: Settings) -> Attachments:
    out = Attachments()
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
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
    return await asyncio.to_thread(_load, list(specs), settings)


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
