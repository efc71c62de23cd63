"""The Dockerfile, compose.yaml and deploy/nginx.conf, checked by parsing: CI has no Docker engine to build or run
them. The nginx config is the very text the e2e tests run (`tests/services.py`), and the README shows it verbatim.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from openrouter_research_mcp import _parser
from openrouter_research_mcp.config import ENV_PREFIX, Settings, load_settings
from openrouter_research_mcp.remote.http import check_bind

from ..services import nginx_site

ROOT = Path(__file__).resolve().parents[2]
SERVE = ["openrouter-research-mcp", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
REPLICAS = ["replica1", "replica2"]
REPLICA_PORT = 8000


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "Dockerfile"), cache_content=True)


def instructions(name: str) -> list[str]:
    """The values of every `name` instruction of the Dockerfile, in order."""
    return [item["value"] for item in dockerfile().structure if item["instruction"] == name]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


# How many numbers name one release of each image: PostgreSQL's are MAJOR.MINOR since 10 (`16.9`), the others'
# MAJOR.MINOR.PATCH (`3.11.13`, `1.28.0`); fewer is a tag that moves under you (`3.11`, `16`).
RELEASE_PARTS = {"python": 3, "postgres": 2, "nginx": 3}


def is_pinned(image: str) -> bool:
    """A digest, or a tag naming one release of an image we know; never `latest` or a tag that moves."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    name, _, tag = image.partition(":")
    parts = RELEASE_PARTS.get(name)
    return parts is not None and bool(re.match(r"\d+" + r"\.\d+" * (parts - 1) + r"($|-)", tag))


def is_setting(variable: str) -> bool:
    """Whether `variable` is one the server reads (a typo would be ignored silently)."""
    return variable.startswith(ENV_PREFIX) and variable.removeprefix(ENV_PREFIX).lower() in Settings.model_fields


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("python:3.11.13-slim-bookworm", True),
        ("python:3.11-slim-bookworm", False),
        ("python:latest", False),
        ("python", False),
        ("postgres:16", False),
        ("postgres:16.9", True),
        ("nginx:1.28", False),
        ("nginx:1.28.0", True),
        ("nginx:stable", False),
        ("python:3.11-slim@sha256:" + "a" * 64, True),
        ("redis:7.2.4", False),  # not an image we know the versioning of: pin it by digest
    ],
)
def test_is_pinned_accepts_one_release_or_a_digest(image: str, pinned: bool) -> None:
    assert is_pinned(image) is pinned


def test_dockerfile_base_is_slim_python_pinned_to_a_patch_release() -> None:
    base = dockerfile().baseimage
    assert is_pinned(base), base
    assert re.match(r"python:3\.11\.\d+-slim-bookworm\b", base), base


def test_dockerfile_runs_as_a_user_that_is_not_root() -> None:
    structure = dockerfile().structure
    users = [item for item in structure if item["instruction"] == "USER"]
    assert users and users[-1]["value"].split(":")[0] not in {"root", "0"}
    cmd = next(item for item in structure if item["instruction"] == "CMD")
    assert users[-1]["startline"] < cmd["startline"]


def test_dockerfile_healthcheck_asks_healthz_without_curl() -> None:
    (check,) = instructions("HEALTHCHECK")
    assert f"http://127.0.0.1:{REPLICA_PORT}/healthz" in check
    assert "python" in check and "curl" not in check and "wget" not in check  # neither is in the slim image


def test_dockerfile_cmd_is_the_http_serve_command() -> None:
    (cmd,) = instructions("CMD")
    assert json.loads(cmd) == SERVE  # exec form: SIGTERM reaches the server, which drains
    args = _parser().parse_args(SERVE[1:])
    assert (args.command, args.transport, args.host, args.port) == ("serve", "http", "0.0.0.0", REPLICA_PORT)
    assert instructions("EXPOSE") == [str(REPLICA_PORT)]
    assert 'openrouter-research-mcp = "openrouter_research_mcp:main"' in (ROOT / "pyproject.toml").read_text()


def test_dockerfile_environment_lets_the_server_bind_all_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    envs = dockerfile().envs
    ours = {name: value for name, value in envs.items() if name.startswith(ENV_PREFIX)}
    assert ours == {"OPENROUTER_MCP_AUTH": "tokens", "OPENROUTER_DATA_DIR": "/data"}
    assert all(is_setting(name) for name in ours)
    for name, value in ours.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(mcp_host="0.0.0.0")
    check_bind(settings)  # raises when 0.0.0.0 has no authentication
    assert json.loads(instructions("VOLUME")[0]) == [str(settings.data_dir)]


def test_dockerfile_installs_the_package_from_its_own_files() -> None:
    copied = [shlex.split(value)[:-1] for value in instructions("COPY")]
    sources = {source for sources in copied for source in sources}
    assert {"pyproject.toml", "README.md", "LICENSE", "src"} <= sources
    assert all((ROOT / source).exists() for source in sources)
    assert any(re.search(r"\bpip install \.(\s|$)", value) for value in instructions("RUN"))


def test_compose_runs_postgres_two_replicas_and_nginx_on_pinned_images() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", *REPLICAS, "nginx"}
    images = [service["image"] for service in services.values() if "image" in service]
    assert len(images) == 2 and all(is_pinned(image) for image in images), images


def test_compose_postgres_is_checked_healthy_and_keeps_its_data() -> None:
    spec = compose()
    postgres = spec["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16.")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = next(v.split(":")[0] for v in postgres["volumes"] if v.endswith(":/var/lib/postgresql/data"))
    assert volume in spec["volumes"]  # a named volume, not a path in the container


@pytest.mark.parametrize("replica", REPLICAS)
def test_compose_replica_is_the_image_over_postgres(replica: str) -> None:
    spec = compose()
    service = spec["services"][replica]
    postgres = spec["services"]["postgres"]["environment"]
    assert service["build"] == "."  # the Dockerfile beside it
    env = service["environment"]
    assert all(is_setting(name) for name in env)
    user, database = postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]
    assert env["OPENROUTER_DATABASE_URL"] == f"postgresql://{user}:${{POSTGRES_PASSWORD}}@postgres:5432/{database}"
    assert env["OPENROUTER_API_KEY"] == "${OPENROUTER_API_KEY}"
    # Callers come in through nginx's published port: the replicas must accept that Host.
    published = spec["services"]["nginx"]["ports"][0].split(":")[0]
    assert f"localhost:{published}/mcp" in env["OPENROUTER_MCP_PUBLIC_URL"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_nginx_mounts_the_tested_config_over_both_replicas() -> None:
    nginx = compose()["services"]["nginx"]
    assert nginx["ports"] == ["8080:80"]
    mounts = [volume.split(":") for volume in nginx["volumes"]]
    source, target = next((m[0], m[1]) for m in mounts if m[0].endswith("nginx.conf"))
    assert target == "/etc/nginx/conf.d/default.conf"  # the image's nginx.conf includes it inside `http`
    config = (ROOT / source).read_text()
    upstreams = [f"{replica}:{REPLICA_PORT}" for replica in REPLICAS]
    # The very text the e2e tests run (with their loopback upstreams and port): regenerate it with nginx_site.
    assert config == nginx_site(upstreams, "80")
    assert re.findall(r"^\s*server ([\w.:]+);$", config, re.MULTILINE) == upstreams
    assert re.search(r"^\s*proxy_buffering off;", config, re.MULTILINE)
    assert all(nginx["depends_on"][replica]["condition"] == "service_healthy" for replica in REPLICAS)


def test_readme_shows_the_nginx_config_compose_mounts() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "\n### Run it at scale\n" in readme, "the README lacks its 'Run it at scale' section"
    section = readme.split("\n### Run it at scale\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = re.findall(r"```nginx\n(.*?)```", section, re.DOTALL)
    assert blocks == [(ROOT / "deploy" / "nginx.conf").read_text()]
