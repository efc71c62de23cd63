"""The real MCP Inspector CLI drives the installed server (skipped, with the reason, where npx is missing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter
from ..support import TOOLS

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
NPX = shutil.which("npx")
NETWORK_TROUBLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET")


def inspector(fake: FakeOpenRouter, tmp_path: Path, *args: str) -> Any:
    assert NPX is not None
    env = {**os.environ, "MCP_CATALOG_PATH": str(tmp_path / "inspector-catalog")}
    server_env = {
        "OPENROUTER_BASE_URL": fake.base_url,
        "OPENROUTER_API_KEY": FAKE_KEY,
        "OPENROUTER_CACHE_DIR": str(tmp_path / "cache"),
        "OPENROUTER_DATA_DIR": str(tmp_path / "data"),
    }
    flags = [part for name, value in server_env.items() for part in ("-e", f"{name}={value}")]
    command = [NPX, "-y", INSPECTOR, "--cli", *flags, sys.executable, "-m", "openrouter_research_mcp", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path, check=False)
    if done.returncode != 0 and any(code in done.stderr for code in NETWORK_TROUBLE):
        pytest.skip(f"npx could not fetch {INSPECTOR} from the npm registry: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.skipif(NPX is None, reason="npx (Node.js) is not installed, so the MCP Inspector CLI cannot run")
def test_e2e_inspector_cli_lists_and_calls(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    listed = inspector(fake_openrouter, tmp_path, "--method", "tools/list")
    assert {t["name"] for t in listed["tools"]} == TOOLS
    called = inspector(
        fake_openrouter,
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "ask",
        "--tool-arg",
        "prompt=hello",
        "--tool-arg",
        "web_search=true",
    )
    assert called["structuredContent"]["answer"].startswith("[openai/gpt-4o-mini]")
    assert len(called["structuredContent"]["sources"]) >= 2
    model = inspector(
        fake_openrouter, tmp_path, "--method", "resources/read", "--uri", "openrouter://models/openai/gpt-4o"
    )
    assert json.loads(model["contents"][0]["text"])["id"] == "openai/gpt-4o"
    prompt = inspector(
        fake_openrouter,
        tmp_path,
        "--method",
        "prompts/get",
        "--prompt-name",
        "deep_research_brief",
        "--prompt-args",
        "topic=fusion power",
    )
    assert "fusion power" in prompt["messages"][0]["content"]["text"]
