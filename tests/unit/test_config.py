"""Settings: precedence, .env files, validation with one-line messages, and the command line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openrouter_research_mcp import _constants, main, wire
from openrouter_research_mcp._constants import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_MODELS_TTL
from openrouter_research_mcp._version import __version__
from openrouter_research_mcp.config import ENV_VARS, Settings, load_settings
from openrouter_research_mcp.errors import ConfigError
from openrouter_research_mcp.jobs import manager
from openrouter_research_mcp.research import planning

from ..fakes import FAKE_KEY

ROOT = Path(__file__).resolve().parents[2]


def test_settings_defaults_without_any_configuration() -> None:
    settings = load_settings()
    assert settings.api_key is None and not settings.has_api_key
    assert settings.base_url == DEFAULT_BASE_URL and settings.max_retries == DEFAULT_MAX_RETRIES == 2
    assert settings.models_ttl == DEFAULT_MODELS_TTL == 3600 and settings.fallback_models == ()
    assert settings.log_level == "INFO" and "openrouter-research-mcp" in str(settings.cache_dir)


def test_settings_environment_beats_dotenv_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text(
        "OPENROUTER_TIMEOUT=12\nOPENROUTER_DEFAULT_MODEL=from/dotenv\n"
        "OPENROUTER_MAX_RETRIES=5\nOPENROUTER_APP_TITLE=from-dotenv\n"
    )
    monkeypatch.setenv("OPENROUTER_TIMEOUT", "30")
    monkeypatch.setenv("OPENROUTER_APP_TITLE", "   ")  # blank: unset, so the .env value shows through
    settings = load_settings()
    assert settings.timeout == 30.0 and settings.default_model == "from/dotenv" and settings.max_retries == 5
    assert settings.app_title == "from-dotenv"
    assert load_settings(timeout=3).timeout == 3.0


def test_settings_env_file_argument(tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text(f"OPENROUTER_API_KEY={FAKE_KEY}\nOPENROUTER_FALLBACK_MODELS=a/b,  c/d ,\n")
    settings = load_settings(env_file=env_file)
    assert settings.has_api_key and settings.fallback_models == ("a/b", "c/d")
    with pytest.raises(ConfigError, match="--env-file"):
        load_settings(env_file=tmp_path / "missing.env")


def test_settings_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "")
    monkeypatch.setenv("OPENROUTER_TIMEOUT", "  ")
    settings = load_settings()
    assert settings.api_key is None and settings.timeout > 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENROUTER_TIMEOUT", "abc"),
        ("OPENROUTER_TIMEOUT", "0"),
        ("OPENROUTER_MAX_RETRIES", "-1"),
        ("OPENROUTER_MAX_RETRIES", "1.5"),
        ("OPENROUTER_BASE_URL", "openrouter.ai"),
        ("OPENROUTER_MODELS_TTL", "-5"),
        ("OPENROUTER_LOG_LEVEL", "chatty"),
    ],
)
def test_settings_bad_value_names_the_variable_in_one_line(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and "\n" not in message


def test_settings_every_variable_is_documented() -> None:
    documented = (ROOT / ".env.example").read_text() + (ROOT / "README.md").read_text()
    missing = [name for name in ENV_VARS if name not in documented]
    assert missing == []


def test_settings_never_show_the_key() -> None:
    settings = load_settings(api_key=FAKE_KEY)
    assert FAKE_KEY not in repr(settings) and FAKE_KEY not in settings.model_dump_json()


def test_main_version_and_bad_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and f"openrouter-research-mcp {__version__}\n" == capsys.readouterr().out
    monkeypatch.setenv("OPENROUTER_MAX_RETRIES", "lots")
    with pytest.raises(SystemExit) as bad:
        main([])
    captured = capsys.readouterr()
    assert bad.value.code == 2 and captured.out == ""
    assert captured.err.strip().startswith("openrouter-research-mcp: configuration error: OPENROUTER_MAX_RETRIES")


def test_main_module_entry_point_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openrouter_research_mcp", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "--env-file" in done.stdout and "MCP" in done.stdout
    assert "OPENROUTER_API_KEY" in done.stdout and "doctor" in done.stdout  # what to set, and how to check it


def test_constants_say_truly_where_the_tunables_they_do_not_hold_live() -> None:
    doc = _constants.__doc__ or ""
    elsewhere = {"LEASE_RENEW_S": manager, "CANCEL_WAIT_S": manager, "SIGNAL_GRACE": wire, "EOF_GRACE": wire}
    for name, module in elsewhere.items():
        assert f"`{name}`" in doc and hasattr(module, name) and not hasattr(_constants, name), name
    assert "`VERIFY_*`" in doc and any(n.startswith("VERIFY_") for n in vars(planning))
    assert not any(n.startswith("VERIFY_") for n in vars(_constants))
    for setting in ("research_concurrency", "benchmark_concurrency"):
        assert f"`{setting}`" in doc and setting in Settings.model_fields


def test_models_built_on_first_use_validate_alike_from_many_threads_at_once() -> None:
    """`main()` has pydantic build models on first use (start-up is shorter); a subclass first used by many threads
    at once must still validate with its own rules, never its parent's (pydantic before 2.14 could)."""
    script = textwrap.dedent(
        """
        from concurrent.futures import ThreadPoolExecutor
        from pydantic import BaseModel, ConfigDict
        from openrouter_research_mcp import _defer_model_builds

        _defer_model_builds()

        class Base(BaseModel):
            model_config = ConfigDict(extra="forbid")

        class Sub(Base):
            x: int

        assert not Sub.__pydantic_complete__  # deferred indeed
        with ThreadPoolExecutor(32) as pool:
            made = list(pool.map(lambda i: Sub(x=i).x, range(256)))
        assert made == list(range(256)), made
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
