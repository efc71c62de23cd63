"""Settings, loaded once in `main()`.

Precedence, highest first: keyword arguments to `load_settings`, the process environment, the `.env` file (the one
named by `--env-file`, else `./.env`), then the defaults in `_constants.py`. An empty value counts as unset, since MCP
client configs often carry `"OPENROUTER_API_KEY": ""` placeholders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from dotenv import dotenv_values
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ._constants import (
    DEFAULT_APP_TITLE,
    DEFAULT_APP_URL,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    DEFAULT_MODELS_TTL,
    DEFAULT_RESEARCH_MAX_COST_USD,
    DEFAULT_TIMEOUT,
)
from .errors import ConfigError

__all__ = ["ENV_VARS", "Settings", "load_settings"]

APP_NAME = "openrouter-research-mcp"


def _default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _env(name: str) -> Any:
    return Field(validation_alias=AliasChoices(name))


class Settings(BaseModel):
    """Validated configuration. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    api_key: Annotated[SecretStr | None, _env("OPENROUTER_API_KEY")] = None
    base_url: Annotated[str, _env("OPENROUTER_BASE_URL")] = DEFAULT_BASE_URL
    default_model: Annotated[str, _env("OPENROUTER_DEFAULT_MODEL")] = DEFAULT_MODEL
    fallback_models: Annotated[tuple[str, ...], _env("OPENROUTER_FALLBACK_MODELS")] = ()
    timeout: Annotated[float, _env("OPENROUTER_TIMEOUT"), Field(gt=0, le=3600)] = DEFAULT_TIMEOUT
    max_retries: Annotated[int, _env("OPENROUTER_MAX_RETRIES"), Field(ge=0, le=10)] = DEFAULT_MAX_RETRIES
    cache_dir: Annotated[Path, _env("OPENROUTER_CACHE_DIR"), Field(default_factory=_default_cache_dir)]
    models_ttl: Annotated[float, _env("OPENROUTER_MODELS_TTL"), Field(ge=0)] = DEFAULT_MODELS_TTL
    app_title: Annotated[str, _env("OPENROUTER_APP_TITLE")] = DEFAULT_APP_TITLE
    app_url: Annotated[str, _env("OPENROUTER_APP_URL")] = DEFAULT_APP_URL
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                         _env("OPENROUTER_LOG_LEVEL")] = "INFO"
    research_max_cost_usd: Annotated[float, _env("OPENROUTER_RESEARCH_MAX_COST_USD"), Field(gt=0, le=100)] = (
        DEFAULT_RESEARCH_MAX_COST_USD)
    research_concurrency: Annotated[int, _env("OPENROUTER_RESEARCH_CONCURRENCY"), Field(ge=1, le=16)] = 4
    web_search: Annotated[Literal["plugin", "server_tool"], _env("OPENROUTER_WEB_SEARCH")] = "plugin"
    data_dir: Annotated[Path, _env("OPENROUTER_DATA_DIR"), Field(default_factory=_default_data_dir)]

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("fallback_models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cache_dir", "data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def has_api_key(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())


_ALIAS: dict[str, str] = {
    name: str(field.validation_alias.choices[0])  # type: ignore[union-attr]
    for name, field in Settings.model_fields.items()
}
ENV_VARS: tuple[str, ...] = tuple(_ALIAS.values())


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "configuration"
    given = first.get("input")
    shown = "" if name == "OPENROUTER_API_KEY" or isinstance(given, dict) else f" (got {given!r})"
    return f"{name}: {first['msg'].removeprefix('Value error, ')}{shown}"


def load_settings(
    env_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build `Settings` from overrides > `environ` (default `os.environ`) > the .env file > defaults.

    Raises `ConfigError` with a one-line message naming the variable when a value is bad.
    """
    if env_file is not None and not Path(env_file).is_file():
        raise ConfigError(f"--env-file: {os.fspath(env_file)!r} does not exist or is not a file")
    path = Path(env_file) if env_file is not None else Path.cwd() / ".env"
    from_file = dotenv_values(path) if path.is_file() else {}
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    for name in ENV_VARS:
        for source in (environ, from_file):
            value = source.get(name)
            if value is not None and value.strip() != "":
                merged[name] = value.strip()
                break
    for field_name, value in overrides.items():
        if field_name not in Settings.model_fields:
            raise TypeError(f"unknown setting {field_name!r}")
        if value is not None:
            merged[_ALIAS[field_name]] = value
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
