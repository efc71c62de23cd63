"""End-to-end fixtures: a fake OpenRouter on loopback, and parameters that start the installed server over stdio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp import StdioServerParameters

from ..fakes import FAKE_KEY
from ..fakes.openrouter import FakeOpenRouter


def stdio_params(fake: FakeOpenRouter, cache_dir: Path, **env: str) -> StdioServerParameters:
    """Start `python -m openrouter_research_mcp` against `fake`; an empty value leaves a variable out."""
    values = {
        "OPENROUTER_API_KEY": FAKE_KEY,
        "OPENROUTER_BASE_URL": fake.base_url,
        "OPENROUTER_CACHE_DIR": str(cache_dir),
        "OPENROUTER_DATA_DIR": str(cache_dir.parent / "data"),
        "OPENROUTER_LOG_LEVEL": "WARNING",
        # No real keyring or config dir: a key stored by `login` is found only where a test put it.
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "XDG_CONFIG_HOME": str(cache_dir.parent / "config"),
        **env,
    }
    values["PATH"] = os.environ.get("PATH", "")
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "openrouter_research_mcp"],
        env={k: v for k, v in values.items() if v},
        cwd=str(cache_dir.parent),
    )
