"""Images and PDFs read in full before they are sent, so a broken file is refused, not uploaded and billed.

Images are decoded completely with Pillow (a truncated file fails here, not at the model) and must be whole: a PNG
runs to its IEND chunk, a GIF to its trailer (Pillow stops reading once it has the pixels, so a file cut just after
them would otherwise pass; JPEG and WebP decoders refuse such a file themselves). They are refused past
`MAX_PIXELS` (a "decompression bomb" declares more pixels than any model uses), turned upright by their EXIF
orientation (a photo shot sideways reaches the model as it was seen), and downscaled to `MAX_IMAGE_SIDE`; the
result says what was done. PDFs are parsed with pypdf: an empty, truncated or corrupt one is refused, and the
page count (which prices the parsing and bounds the prompt) is the document's own.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
from typing import Any

from ..errors import RequestError

__all__ = ["MAX_FRAMES", "MAX_IMAGE_SIDE", "MAX_PIXELS", "pdf_pages", "prepare_image"]

MAX_IMAGE_SIDE = 1568  # the longest side models make use of; larger images cost upload time and tokens for nothing
MAX_PIXELS = 60_000_000  # about 7,750 × 7,750: more is a decompression bomb, not a picture to show a model
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}


_PILLOW_SIZE = re.compile(r"Image size \((\d+) pixels\)")


def _pillow() -> Any:
    """Pillow, set up once for this process: it refuses to open past twice `MAX_PIXELS` and its warning below that
    is silenced, since `prepare_image` refuses past `MAX_PIXELS` itself, in words."""
    from PIL import Image  # imported on first use: start-up does not pay for it

    if Image.MAX_IMAGE_PIXELS != MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return Image


MAX_FRAMES = 500  # an animation with more frames than this is refused (each is decoded)
# Decoding is the costliest work a caller can ask of the server (a 60-megapixel picture takes some 200 MB while it
# is decoded): at most this many at once, whatever the number of callers.
_DECODING = threading.BoundedSemaphore(2)


def _orientation(image: Any) -> int:
    """The EXIF orientation that asks for a turn (2-8); any other value (none, 0, 1, 9…) leaves the image as it is."""
    value = image.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def _png_whole(data: bytes) -> bool:
    """Whether the PNG's chunks run, each complete, up to an intact IEND chunk (bytes after it are ignored, as
    decoders do)."""
    at = 8
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        end = at + 12 + length
        if end > len(data):
            return False
        if kind == b"IEND":
            return data[at:end] == b"\x00\x00\x00\x00IEND\xaeB`\x82"  # IEND is empty: its CRC is a constant
        at = end
    return False


def _gif_whole(data: bytes) -> bool:
    """Whether the GIF's blocks run, each complete, up to its trailer byte (0x3B)."""

    def table(flags: int) -> int:  # the size of the colour table a descriptor's flags announce
        return 3 << ((flags & 7) + 1) if flags & 0x80 else 0

    if len(data) < 13:
        return False
    at = 13 + table(data[10])
    while at < len(data):
        block = data[at]
        if block == 0x3B:
            return True
        if block == 0x21:  # an extension: introducer, label, then data sub-blocks
            at += 2
        elif block == 0x2C and at + 10 <= len(data):  # an image: descriptor, colour table, LZW code size, sub-blocks
            at += 10 + table(data[at + 9]) + 1
        else:
            return False
        while at < len(data) and data[at]:  # sub-blocks, each its length then its bytes, up to a zero length
            at += 1 + data[at]
        at += 1
    return False


_WHOLE = {"PNG": (_png_whole, "its IEND chunk"), "GIF": (_gif_whole, "its trailer byte")}


def _decode_all(image: Any, frames: int) -> None:
    """Decode every frame (a truncated animation fails here, not at the model), within MAX_PIXELS in all."""
    for index in range(frames):
        image.seek(index)
        image.load()
    image.seek(0)


def _unreadable(label: str, why: str) -> str:
    return (
        f"{label} is not a readable image: it is truncated or corrupt ({why}). Attach a complete PNG, JPEG, WebP or "
        "GIF file."
    )


def prepare_image(data: bytes, mime: str, label: str) -> tuple[bytes, str | None]:
    """The image ready to send (upright, no larger than a model uses) and what was done to it, or a refusal."""
    if not data:
        raise RequestError(f"{label} is empty (0 bytes). Attach the image file itself.")
    with _DECODING:
        return _prepare(data, mime, label)


def _prepare(data: bytes, mime: str, label: str) -> tuple[bytes, str | None]:
    from PIL import ImageOps

    image_module = _pillow()
    width = height = 0
    try:
        with image_module.open(io.BytesIO(data)) as image:
            width, height = image.size
            frames = int(getattr(image, "n_frames", 1) or 1)
            if width * height * min(frames, MAX_FRAMES) > MAX_PIXELS:
                raise image_module.DecompressionBombError(f"Image size ({width * height * frames} pixels)")
            if frames > MAX_FRAMES:
                raise RequestError(
                    f"{label} has {frames:,} frames, more than the {MAX_FRAMES} this server decodes. Attach a shorter "
                    "animation or one frame of it."
                )
            whole, end = _WHOLE.get(image.format, (None, ""))
            if whole is not None and not whole(data):
                raise RequestError(_unreadable(label, f"it ends before {end}"))
            if frames > 1:
                _decode_all(image, frames)
                return data, None  # an animation is sent as it is: re-encoding it would lose its timing
            large = max(width, height) > MAX_IMAGE_SIDE
            if large and image.format == "JPEG":
                image.draft(
                    "RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE)
                )  # decode at a reduced scale: a fraction of the memory
            image.load()  # decode it all: a truncated file fails here
            orientation = _orientation(image)
            if not large and orientation == 1:
                return data, None
            upright = ImageOps.exif_transpose(image) if orientation != 1 else image.copy()
            if max(upright.size) > MAX_IMAGE_SIDE:
                upright.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), image_module.Resampling.LANCZOS)
            out = io.BytesIO()
            fmt = FORMATS[mime]
            extra = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
            (upright.convert("RGB") if fmt == "JPEG" and upright.mode not in ("RGB", "L") else upright).save(
                out, format=fmt, **extra
            )
    except image_module.DecompressionBombError as exc:
        found = _PILLOW_SIZE.search(str(exc))
        declared = (
            f"{width:,} × {height:,} pixels{f' in {frames:,} frames' if frames > 1 else ''}"
            if width
            else f"{int(found.group(1)):,} pixels"
            if found
            else "more pixels than that"
        )
        raise RequestError(
            f"{label} declares {declared}, more than the {MAX_PIXELS:,} this server decodes (a picture that large "
            "is usually a decompression bomb). Attach a smaller image."
        ) from None
    except RequestError:
        raise
    except MemoryError:
        raise RequestError(f"{label} is too large to decode here. Attach a smaller image.") from None
    except Exception as exc:  # Pillow's decoders raise many kinds on a damaged file; each means the same to a user
        raise RequestError(_unreadable(label, type(exc).__name__)) from None
    done = []
    if orientation != 1:
        done.append("turned upright by its EXIF orientation")
    if large:
        seen = (height, width) if orientation in (5, 6, 7, 8) else (width, height)  # as it is shown, once upright
        done.append(
            f"downscaled from {seen[0]}×{seen[1]} to {upright.size[0]}×{upright.size[1]} pixels (the most a model uses)"
        )
    return out.getvalue(), f"{label} was {' and '.join(done)} before upload."


def pdf_pages(data: bytes, label: str) -> int:
    """A PDF's page count, read by pypdf; a file that is empty, truncated, corrupt or locked is refused."""
    from pypdf import PdfReader

    if not data:
        raise RequestError(f"{label} is empty (0 bytes). Attach the PDF file itself.")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise RequestError(f"{label} is password-protected. Attach an unlocked copy of the PDF.")
        pages = len(reader.pages)
    except RequestError:
        raise
    except MemoryError:
        raise RequestError(f"{label} is too large to parse here. Attach a smaller PDF, or a URL to it.") from None
    except Exception as exc:  # pypdf raises many kinds on a damaged or exotic file; each means the same to a user
        raise RequestError(
            f"{label} is not a readable PDF: it is truncated or corrupt ({type(exc).__name__}). Attach the complete "
            "file, or a URL to it."
        ) from None
    if pages < 1:
        raise RequestError(f"{label} has no pages. Attach a PDF with at least one page.")
    return pages
