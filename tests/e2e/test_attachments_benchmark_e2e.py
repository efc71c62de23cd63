"""Attachments and benchmarks through the real server over stdio: every attachment kind reaches the fake in the
shape OpenRouter expects, and a benchmark's report is readable as markdown, CSV, JSON and SVG resources."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from mcp import Client
from PIL import Image

from ..fakes.openrouter import FakeOpenRouter
from ..support import pdf_bytes, resource_text, result_text
from .conftest import stdio_params

PDF = pdf_bytes(1)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64


def _png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _files(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "chart.png").write_bytes(_png_bytes())
    (root / "paper.pdf").write_bytes(PDF)
    (root / "note.wav").write_bytes(WAV)
    return {
        "image path": str(root / "chart.png"),
        "pdf path": str(root / "paper.pdf"),
        "audio path": str(root / "note.wav"),
        "image url": "https://images.test/cat.jpg",
        "pdf url": "https://papers.test/a.pdf",
        "image data uri": "data:image/png;base64," + base64.b64encode(_png_bytes()).decode(),
    }


# (attachment, model that can take it, part type sent, what the fake says it received)
KINDS = [
    ("image path", "openai/gpt-4o-mini", "image_url", "[saw 1 image]"),
    ("pdf path", "deepseek/deepseek-r1", "file", "[saw 1 pdf]"),
    ("audio path", "google/gemini-2.5-flash", "input_audio", "[saw 1 audio]"),
    ("image url", "openai/gpt-4o-mini", "image_url", "[saw 1 image]"),
    ("pdf url", "openai/gpt-4o-mini", "file", "[saw 1 pdf]"),
    ("image data uri", "openai/gpt-4o-mini", "image_url", "[saw 1 image]"),
]


async def test_e2e_every_attachment_kind(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    files = _files(tmp_path / "files")
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        results = {
            kind: await client.call_tool(
                "ask", {"prompt": "What is in this?", "model": model, "attachments": [files[kind]]}
            )
            for kind, model, _part, _said in KINDS
        }
    sent = fake_openrouter.chat_requests()
    assert len(sent) == len(KINDS)
    for (kind, model, part_type, said), request in zip(KINDS, sent, strict=True):
        result = results[kind]
        assert not result.is_error, f"{kind}: {result_text(result)}"
        assert said in result.structured_content["answer"], kind
        assert request.body["model"] == model
        parts = request.body["messages"][-1]["content"]
        assert [p["type"] for p in parts] == ["text", part_type], kind
        if part_type == "file":
            assert request.body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "cloudflare-ai"}}]
    assert sent[3].body["messages"][-1]["content"][1]["image_url"]["url"] == "https://images.test/cat.jpg"


async def test_e2e_attachment_refusals_are_messages(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    files = _files(tmp_path / "files")
    (tmp_path / "files" / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 1024 * 1024))
    (tmp_path / "elsewhere.png").write_bytes(_png_bytes())
    env = {"OPENROUTER_MAX_ATTACHMENT_MB": "1", "OPENROUTER_FILE_ROOTS": str(tmp_path / "files")}
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache", **env)) as client:
        blind = await client.call_tool(
            "ask", {"prompt": "What is this?", "model": "deepseek/deepseek-r1", "attachments": [files["image path"]]}
        )
        big = await client.call_tool("ask", {"prompt": "Look.", "attachments": [str(tmp_path / "files" / "big.png")]})
        outside = await client.call_tool("ask", {"prompt": "Look.", "attachments": [str(tmp_path / "elsewhere.png")]})
        compared = await client.call_tool(
            "compare_models",
            {
                "prompt": "Describe the chart.",
                "models": ["openai/gpt-4o-mini", "deepseek/deepseek-r1"],
                "attachments": [files["image path"]],
            },
        )
    assert blind.is_error and "cannot take image input" in result_text(blind)
    assert "Models that can" in result_text(blind)
    assert big.is_error and "OPENROUTER_MAX_ATTACHMENT_MB" in result_text(big)
    assert outside.is_error and "OPENROUTER_FILE_ROOTS" in result_text(outside)
    assert not compared.is_error, result_text(compared)
    entries = {e["model"]: e for e in compared.structured_content["entries"]}
    assert entries["openai/gpt-4o-mini"]["ok"] and "[saw 1 image]" in entries["openai/gpt-4o-mini"]["answer"]
    assert (
        not entries["deepseek/deepseek-r1"]["ok"]
        and "cannot take image input" in entries["deepseek/deepseek-r1"]["error"]
    )
    # Only the model that can see was asked.
    assert [r.body["model"] for r in fake_openrouter.chat_requests()] == ["openai/gpt-4o-mini"]


MODELS = ["openai/gpt-4o-mini", "google/gemini-2.5-flash", "deepseek/deepseek-r1"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_e2e_benchmark_and_its_resources(mode: str, fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake_openrouter.model_latency.update({MODELS[0]: 0.2, MODELS[1]: 0.02, MODELS[2]: 0.1})
    fake_openrouter.quality.update({MODELS[0]: 8, MODELS[1]: 5, MODELS[2]: 6})
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache"), mode=mode) as client:
        result = await client.call_tool(
            "benchmark_models",
            {
                "prompts": ["Name a prime.", "Capital of France?"],
                "models": MODELS,
                "judge_model": "openai/gpt-4o",
                "objective": "speed",
            },
        )
        assert not result.is_error, result_text(result)
        bench_id = result.structured_content["benchmark_id"]
        index = resource_text(await client.read_resource("benchmark://reports"))
        markdown = resource_text(await client.read_resource(f"benchmark://reports/{bench_id}"))
        rows = list(
            csv.DictReader(
                io.StringIO(resource_text(await client.read_resource(f"benchmark://reports/{bench_id}.csv")))
            )
        )
        data = json.loads(resource_text(await client.read_resource(f"benchmark://reports/{bench_id}.json")))
        svg = ElementTree.fromstring(resource_text(await client.read_resource(f"benchmark://reports/{bench_id}.svg")))
        polled = await client.call_tool("get_benchmark", {"benchmark_id": bench_id})
        missing = await client.call_tool("get_benchmark", {"benchmark_id": "bench-20990101-000000-00000000"})
    assert result.structured_content["ranking"] == [MODELS[1], MODELS[2], MODELS[0]]
    assert result.structured_content["calls"] == 6 and result.structured_content["totals"]["cost_usd"] > 0
    assert bench_id in index and markdown.startswith(f"# Benchmark {bench_id}")
    assert [r["model"] for r in rows] == data["ranking"] == result.structured_content["ranking"]
    assert len(data["calls"]) == 6 and svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert polled.structured_content["ranking"] == data["ranking"]
    assert missing.is_error and "No benchmark has the id" in result_text(missing)


async def test_e2e_benchmark_over_budget_is_refused_before_any_call(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    async with Client(stdio_params(fake_openrouter, tmp_path / "cache")) as client:
        refused = await client.call_tool(
            "benchmark_models",
            {
                "prompts": ["Write an essay on tides."],
                "models": ["openai/gpt-4o", "anthropic/claude-3.5-sonnet"],
                "runs": 5,
                "max_tokens": 4000,
                "max_cost_usd": 0.01,
            },
        )
    assert refused.is_error and "max_cost_usd" in result_text(refused)
    assert fake_openrouter.chat_requests() == []
