"""Attachments: images, PDFs and audio from paths, URLs and data URIs, checked before anything is sent."""

from __future__ import annotations

import base64
import io
import os
import threading
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from openrouter_research_mcp.config import load_settings
from openrouter_research_mcp.errors import RequestError
from openrouter_research_mcp.openrouter.pricing import Pricing, worst_case_cost
from openrouter_research_mcp.tools.ask import AskInput, ask
from openrouter_research_mcp.tools.attachments import MAX_IMAGE_SIDE, load_attachments
from openrouter_research_mcp.tools.compare import CompareInput, compare_models
from openrouter_research_mcp.tools.localfile import read_local
from openrouter_research_mcp.tools.state import CallState

from ..fakes.openrouter import FakeOpenRouter
from ..support import PROMPTLY, exchange_names, pdf_bytes, png_declaring

PDF = pdf_bytes(2)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64


def png(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    Image.new("RGB", size, (200, 30, 30)).save(path, format="PNG")
    return path


def user_parts(fake: FakeOpenRouter) -> list[dict[str, object]]:
    content = fake.chat_requests()[-1].body["messages"][-1]["content"]
    assert isinstance(content, list)
    return content


async def test_ask_sends_an_image_and_says_what_arrived(
    fake_openrouter: FakeOpenRouter, app_state: CallState, tmp_path: Path
) -> None:
    result = await ask(app_state, AskInput(prompt="What colour is this?", attachments=[str(png(tmp_path / "red.png"))]))
    text, image = user_parts(fake_openrouter)
    assert text == {"type": "text", "text": "What colour is this?"}
    url = image["image_url"]["url"]  # type: ignore[index]
    assert image["type"] == "image_url" and url.startswith("data:image/png;base64,")
    assert "[saw 1 image]" in result.answer and result.warnings == []


async def test_large_image_is_downscaled_and_the_result_says_so(
    fake_openrouter: FakeOpenRouter, app_state: CallState, tmp_path: Path
) -> None:
    big = png(tmp_path / "big.png", (4000, 3000))
    result = await ask(app_state, AskInput(prompt="Describe.", attachments=[str(big)]))
    _text, image = user_parts(fake_openrouter)
    sent = base64.b64decode(image["image_url"]["url"].split(",", 1)[1])  # type: ignore[index]
    with Image.open(io.BytesIO(sent)) as shown:
        assert max(shown.size) == MAX_IMAGE_SIDE and shown.size == (1568, 1176)
    assert any("downscaled from 4000×3000 to 1568×1176" in w for w in result.warnings)


async def test_image_for_a_text_only_model_fails_early_with_alternatives(
    fake_openrouter: FakeOpenRouter, app_state: CallState, tmp_path: Path
) -> None:
    with pytest.raises(RequestError, match=r"`deepseek/deepseek-r1` cannot take image input.*Models that can"):
        await ask(
            app_state,
            AskInput(prompt="What is this?", model="deepseek/deepseek-r1", attachments=[str(png(tmp_path / "a.png"))]),
        )
    assert fake_openrouter.chat_requests() == []


async def test_pdf_goes_to_the_file_parser_so_any_model_reads_it(
    fake_openrouter: FakeOpenRouter, app_state: CallState, tmp_path: Path
) -> None:
    (tmp_path / "paper.pdf").write_bytes(PDF)
    result = await ask(
        app_state,
        AskInput(prompt="Summarise.", model="deepseek/deepseek-r1", attachments=[str(tmp_path / "paper.pdf")]),
    )
    body = fake_openrouter.chat_requests()[-1].body
    _text, part = body["messages"][-1]["content"]
    assert part["type"] == "file" and part["file"]["filename"] == "paper.pdf"
    assert part["file"]["file_data"].startswith("data:application/pdf;base64,")
    assert body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "cloudflare-ai"}}]
    assert "[saw 1 pdf]" in result.answer


async def test_audio_goes_to_a_model_that_hears(
    fake_openrouter: FakeOpenRouter, app_state: CallState, tmp_path: Path
) -> None:
    (tmp_path / "note.wav").write_bytes(WAV)
    result = await ask(
        app_state,
        AskInput(prompt="Transcribe.", model="google/gemini-2.5-flash", attachments=[str(tmp_path / "note.wav")]),
    )
    _text, part = user_parts(fake_openrouter)
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"  # type: ignore[index]
    assert "[saw 1 audio]" in result.answer
    with pytest.raises(RequestError, match="cannot take audio"):
        await ask(
            app_state, AskInput(prompt="Transcribe.", model="openai/gpt-4o", attachments=[str(tmp_path / "note.wav")])
        )


async def test_urls_are_passed_on_not_downloaded(fake_openrouter: FakeOpenRouter, app_state: CallState) -> None:
    await ask(
        app_state, AskInput(prompt="Look.", attachments=["https://images.test/cat.jpg", "https://papers.test/a.pdf"])
    )
    _text, image, pdf = user_parts(fake_openrouter)
    assert image == {"type": "image_url", "image_url": {"url": "https://images.test/cat.jpg"}}
    assert pdf == {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://papers.test/a.pdf"}}
    assert [r.path for r in fake_openrouter.requests if r.method == "POST"] == ["/chat/completions"]


async def test_compare_reports_a_model_that_cannot_see_in_its_own_entry(
    fake_openrouter: FakeOpenRouter, app_state: CallState, tmp_path: Path
) -> None:
    result = await compare_models(
        app_state,
        CompareInput(
            prompt="What is this?",
            models=["openai/gpt-4o-mini", "deepseek/deepseek-r1"],
            attachments=[str(png(tmp_path / "a.png"))],
        ),
    )
    seeing, blind = result.entries
    assert seeing.ok and "[saw 1 image]" in (seeing.answer or "")
    assert not blind.ok and "cannot take image input; it was not asked" in (blind.error or "")
    assert [r.model for r in fake_openrouter.chat_requests()] == ["openai/gpt-4o-mini"]


def make(kind: str, path: Path) -> Path:
    """A path of the given kind: a directory, a FIFO, nothing, a file too large, or a file of no known type."""
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "too large":
        path.write_bytes(b"x" * (2 * 1024 * 1024 + 1))
    elif kind == "unsupported kind":
        path.write_bytes(b"plain text, not a picture")
    return path


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("directory", "is a directory"),
        ("FIFO", "not a regular file"),
        ("missing", "does not exist"),
        ("too large", "over the 2 MB limit"),
        ("unsupported kind", "cannot take"),
    ],
)
async def test_local_file_rules(kind: str, says: str, tmp_path: Path) -> None:
    path = make(kind, tmp_path / "thing")
    with pytest.raises(RequestError, match=says):
        await load_attachments([str(path)], load_settings(max_attachment_mb=2))


async def test_a_symlink_out_of_the_allowed_folders_is_refused(tmp_path: Path) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    secret = png(outside / "secret.png")
    (allowed / "innocent.png").symlink_to(secret)
    inside = png(allowed / "fine.png")
    settings = load_settings(file_roots=str(allowed))
    assert len((await load_attachments([str(inside)], settings)).items) == 1
    with pytest.raises(RequestError, match="outside the folders this server may read"):
        await load_attachments([str(allowed / "innocent.png")], settings)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("https://site.test/page", "Cannot tell what kind of file"),
        ("file:///etc/passwd", "cannot be attached"),
    ],
)
async def test_bad_attachment_specs_are_explained(spec: str, says: str) -> None:
    with pytest.raises(RequestError, match=says):
        await load_attachments([spec], load_settings())


def test_images_and_parsed_pages_enter_the_worst_case() -> None:
    pricing = Pricing.model_validate({"prompt": "0.000001", "completion": "0.000002", "image": "0.01"})
    plain = worst_case_cost(pricing, 100, 100)
    assert plain is not None
    assert worst_case_cost(pricing, 100, 100, images=2, extra_prompt_tokens=3200) == pytest.approx(
        plain + 2 * 0.01 + 3200 * 1e-6
    )


# ------------------------------------------------------------------------------------------- hostile files


def test_attachment_swapped_for_a_symlink_between_check_and_read_never_escapes_the_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    secret = outside / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"SECRET" * 100)
    inside = root / "swap.png"
    inside.write_bytes(b"\x89PNG\r\n\x1a\n" + b"inside" * 100)
    link = root / "link.png"
    link.symlink_to(secret)
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            exchange_names(inside, link)

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    escapes, read, refused = 0, 0, 0
    try:
        for _ in range(2000):
            try:
                data, _name = read_local(str(inside), [root], 1 << 20, 1.0)
            except RequestError:
                refused += 1
                continue
            read += 1
            escapes += b"SECRET" in data
    finally:
        stop.set()
        swapper.join(5)
    assert escapes == 0 and read > 0  # the race was on (some reads and refusals), and never read the outside file
    assert read + refused == 2000


def test_attachment_fifo_is_refused_at_once_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    done = threading.Event()

    def attempt() -> None:
        with pytest.raises(RequestError, match="not a regular file"):
            read_local(str(fifo), [], 1 << 20, 1.0)
        done.set()

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    assert done.wait(PROMPTLY)  # a blocking open or read would wait for a writer forever


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/tmp/a\x00b.png", "contains a NUL character"),
        ("/tmp/\ud800.png", "not valid text"),
    ],
    ids=["NUL byte", "lone surrogate"],
)
def test_attachment_path_that_no_file_can_have_is_refused_in_words(spec: str, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        read_local(spec, [], 1 << 20, 1.0)


def _animation(frames: int = 5) -> bytes:
    pictures = [Image.effect_noise((120, 120), 60 + i).convert("P") for i in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, format="GIF", save_all=True, append_images=pictures[1:], duration=50, loop=0)
    return out.getvalue()


def _encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((300, 300), 80).convert("RGB").save(out, format=fmt)
    return out.getvalue()


def _truncated_png() -> bytes:
    return _encoded("PNG")[:-2000]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bomb.png", png_declaring(50_000, 50_000), r"declares .*pixels, more than the 60,000,000"),
        ("cut.png", _truncated_png(), "truncated or corrupt"),
        ("empty.pdf", b"", "empty"),
        ("cut.pdf", pdf_bytes(3)[:400], "not a readable PDF"),
        ("garbage.pdf", b"%PDF-1.7\n" + b"\x00\xff" * 500, "not a readable PDF"),
        ("cut.gif", _animation()[: len(_animation()) * 3 // 5], "truncated or corrupt"),
        ("voice.wav", b"plain text, not a recording " * 10, "not a WAV or MP3 file"),
        # Cut in their last bytes: every pixel decodes, but the file is not whole.
        ("no-iend.png", _encoded("PNG")[:-12], "truncated or corrupt .*IEND"),
        ("no-crc.png", _encoded("PNG")[:-20], "truncated or corrupt .*IEND"),
        ("no-trailer.gif", _encoded("GIF")[:-1], "truncated or corrupt .*trailer"),
        ("no-terminator.gif", _encoded("GIF")[:-2], "truncated or corrupt .*trailer"),
        ("no-eoi.jpg", _encoded("JPEG")[:-2], "truncated or corrupt"),
    ],
    ids=[
        "decompression bomb",
        "truncated PNG",
        "empty PDF",
        "truncated PDF",
        "corrupt PDF",
        "cut animation",
        "fake WAV",
        "PNG without IEND",
        "PNG cut inside its last CRC",
        "GIF without trailer",
        "GIF cut before its last block terminator",
        "JPEG without EOI",
    ],
)
async def test_attachment_broken_files_are_refused_naming_the_file_and_the_fix(
    name: str, data: bytes, message: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(RequestError, match=message) as caught:
        await load_attachments([str(path)], load_settings())
    assert name in caught.value.message and "Attach" in caught.value.message


async def test_attachment_jpeg_shot_sideways_arrives_upright(tmp_path: Path) -> None:
    image = Image.new("RGB", (64, 48), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "phone.jpg"
    image.save(path, format="JPEG", exif=exif)
    files = await load_attachments([str(path)], load_settings())
    [item] = files.items
    sent = base64.b64decode(item.part["image_url"]["url"].split(",", 1)[1])
    with Image.open(io.BytesIO(sent)) as shown:
        assert shown.size == (48, 64) and shown.getexif().get(0x0112, 1) == 1  # upright, and says nothing more
    assert item.note and "turned upright by its EXIF orientation" in item.note


async def test_attachment_png_with_bytes_after_its_iend_chunk_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "padded.png"
    path.write_bytes(_encoded("PNG") + b"\x00" * 64)  # some tools pad or append; decoders stop at IEND
    assert len((await load_attachments([str(path)], load_settings())).items) == 1


@pytest.mark.parametrize(("orientation", "marked"), [(6, "top right"), (8, "bottom left")])
async def test_attachment_large_jpeg_shot_sideways_arrives_upright_at_the_downscaled_size(
    orientation: int, marked: str, tmp_path: Path
) -> None:
    picture = Image.new("RGB", (3200, 2400), (10, 200, 10))
    picture.paste((250, 0, 0), (0, 0, 320, 240))  # a red mark in the stored image's top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation  # 6: turn 90° clockwise to display; 8: 90° anticlockwise
    path = tmp_path / "phone.jpg"
    picture.save(path, format="JPEG", exif=exif)
    [item] = (await load_attachments([str(path)], load_settings())).items
    sent = base64.b64decode(item.part["image_url"]["url"].split(",", 1)[1])
    with Image.open(io.BytesIO(sent)) as shown:
        assert shown.size == (1176, 1568) and shown.getexif().get(0x0112, 1) == 1
        width, height = shown.size
        pixel = shown.convert("RGB").getpixel((width - 40, 40) if marked == "top right" else (40, height - 40))
    assert isinstance(pixel, tuple) and pixel[0] > 200 and pixel[1] < 80  # where a viewer honouring the tag shows it
    assert item.note == (
        "phone.jpg was turned upright by its EXIF orientation and downscaled from 2400×3200 to 1176×1568 pixels "
        "(the most a model uses) before upload."
    )


async def test_attachment_pdf_pages_are_counted_by_a_pdf_parser(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    for _ in range(300):
        pdf.add_blank_page()
    path = tmp_path / "long.pdf"
    pdf.save(path, object_stream_mode=pikepdf.ObjectStreamMode.generate, compress_streams=True)
    assert b"/Type /Page" not in path.read_bytes()  # the pages hide in compressed object streams
    files = await load_attachments([str(path)], load_settings(pdf_engine="mistral-ocr"))
    assert files.items[0].pages == 300 and files.fees("mistral-ocr") == pytest.approx(0.6)


async def test_attachment_whole_animation_is_read(tmp_path: Path) -> None:
    path = tmp_path / "moving.gif"
    path.write_bytes(_animation())
    assert len((await load_attachments([str(path)], load_settings())).items) == 1


def test_attachment_outside_the_roots_is_refused_before_it_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    os.mkfifo(outside / "pipe.png")
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str, *args: object, **kwargs: object) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", recording_open)
    for name in ["pipe.png", "missing.png"]:  # the same answer whether or not a file is there
        with pytest.raises(RequestError, match="outside the folders this server may read"):
            read_local(str(outside / name), [allowed], 1 << 20, 1.0)
    assert not [path for path in opened if str(outside) in path]  # no device, FIFO or file outside was opened


@pytest.mark.parametrize("planted", ["FIFO", "file"])
def test_attachment_folder_swapped_for_a_link_after_resolving_opens_nothing_outside_the_roots(
    planted: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tmp_path.resolve() / "root", tmp_path.resolve() / "outside"
    (root / "sub").mkdir(parents=True)
    (outside / "sub").mkdir(parents=True)
    target = png(root / "sub" / "photo.png")
    if planted == "FIFO":
        os.mkfifo(outside / "sub" / "photo.png")
    else:
        png(outside / "sub" / "photo.png")
    (root / "link").symlink_to(outside / "sub")
    real_realpath, real_open = os.path.realpath, os.open
    opened: list[str] = []

    def resolve_then_swap(path: str, *, strict: bool = False) -> str:
        resolved = real_realpath(path, strict=strict)
        if resolved == str(target):  # the attacker's move, right after the server resolved the name
            exchange_names(root / "sub", root / "link")
        return resolved

    def recording_open(path: str, *args: object, **kwargs: object) -> int:
        fd = real_open(path, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(os.readlink(f"/proc/self/fd/{fd}"))  # what was really opened, whatever the name given
        return fd

    monkeypatch.setattr(os.path, "realpath", resolve_then_swap)
    monkeypatch.setattr(os, "open", recording_open)
    with pytest.raises(RequestError, match="changed while it was being opened"):
        read_local(str(target), [root], 1 << 20, 1.0)
    assert (root / "sub").is_symlink()  # the folder really was swapped before the open
    assert opened and not [path for path in opened if path.startswith(str(outside))], opened


def test_attachment_link_to_a_folder_inside_the_root_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    photo = png(tmp_path / "real" / "photo.png")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    data, name = read_local(str(tmp_path / "alias" / "photo.png"), [tmp_path], 1 << 20, 1.0)
    assert data == photo.read_bytes() and name == "photo.png"


def test_attachment_loop_of_links_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(RequestError, match="is a loop of symbolic links"):
        read_local(str(tmp_path / "a.png"), [tmp_path], 1 << 20, 1.0)


async def test_attachment_local_path_over_http_needs_roots_set_explicitly(tmp_path: Path) -> None:
    path = png(tmp_path / "server-side.png")
    with pytest.raises(RequestError, match="a path on the server's disk, not yours") as refused:
        await load_attachments([str(path)], load_settings(mcp_transport="http"))
    assert "OPENROUTER_FILE_ROOTS" in refused.value.message and "data: URI" in refused.value.message
    allowed = await load_attachments([str(path)], load_settings(mcp_transport="http", file_roots=str(tmp_path)))
    assert len(allowed.items) == 1
