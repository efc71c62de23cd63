"""Ready to publish: package metadata, the MCP Registry's server.json, and a README that renders off GitHub."""

from __future__ import annotations

import json
import re
import tomllib
import typing
from pathlib import Path

from openrouter_research_mcp._version import __version__
from openrouter_research_mcp.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
SERVER = json.loads((ROOT / "server.json").read_text())
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
README = (ROOT / "README.md").read_text()


def test_publish_server_json_matches_the_package() -> None:
    assert SERVER["$schema"].startswith("https://static.modelcontextprotocol.io/schemas/")
    assert re.fullmatch(r"io\.github\.[a-zA-Z0-9-]+/[a-zA-Z0-9._-]+", SERVER["name"])
    assert 0 < len(SERVER["description"]) <= 100  # the registry's limit
    [package] = SERVER["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == PROJECT["name"]
    assert SERVER["version"] == package["version"] == __version__
    assert package["transport"] == {"type": "stdio"}
    # The registry verifies PyPI ownership by this marker in the README (the package's long description).
    assert f"<!-- mcp-name: {SERVER['name']} -->" in README


def literal_choices(annotation: object) -> set[object] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) is typing.Literal:
            return set(typing.get_args(candidate))
    return None


def test_publish_server_json_lists_every_setting_truthfully() -> None:
    variables = {v["name"]: v for v in SERVER["packages"][0]["environmentVariables"]}
    assert list(variables) == [ENV_PREFIX + name.upper() for name in Settings.model_fields]
    for name, field in Settings.model_fields.items():
        entry = variables[ENV_PREFIX + name.upper()]
        assert entry["description"]
        literal = literal_choices(field.annotation)
        if literal:
            assert set(entry["choices"]) <= literal, name
        if "default" in entry and isinstance(field.default, bool):
            assert entry["default"] == str(field.default).lower()
        elif "default" in entry and isinstance(field.default, int | float):
            assert float(entry["default"]) == field.default, name
        elif "default" in entry:
            assert entry["default"] == str(field.default), name
    key = variables["OPENROUTER_API_KEY"]
    assert key["isSecret"] and not key["isRequired"] and "login" in key["description"]  # a stored key will do


def test_publish_package_metadata_is_complete() -> None:
    assert PROJECT["license"] == "MIT" and (ROOT / "LICENSE").is_file()
    assert {"Homepage", "Repository", "Issues"} <= set(PROJECT["urls"])
    classifiers = PROJECT["classifiers"]
    assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
    assert (ROOT / "src" / "openrouter_research_mcp" / "py.typed").is_file()


def test_publish_readme_links_work_on_pypi() -> None:
    """PyPI shows the README without the repository around it: every link must be absolute (or an anchor)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    relative = [t for t in targets if not t.startswith(("http://", "https://", "#", "mailto:"))]
    assert relative == []
