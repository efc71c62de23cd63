"""Settings, loaded once in `main()` by pydantic-settings.

Precedence, highest first: keyword arguments to `load_settings`, the process environment, the `.env` file (the one
named by `--env-file`, else `./.env`), then the defaults in `_constants.py`. An empty value counts as unset, since MCP
client configs often carry `"OPENROUTER_API_KEY": ""` placeholders. Every variable is `OPENROUTER_` + a field name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from ._constants import (
    DEFAULT_APP_TITLE,
    DEFAULT_APP_URL,
    DEFAULT_BASE_URL,
    DEFAULT_JOB_LEASE_S,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    DEFAULT_MODELS_TTL,
    DEFAULT_RESEARCH_MAX_COST_USD,
    DEFAULT_TIMEOUT,
)
from .errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "ENV_VARS",
    "PdfEngine",
    "ProviderSort",
    "Settings",
    "WebFetchEngine",
    "WebSearchEngine",
    "load_settings",
]

ENV_PREFIX = "OPENROUTER_"
WebSearchEngine = Literal["auto", "native", "exa", "firecrawl", "parallel", "perplexity"]
WebFetchEngine = Literal["auto", "native", "openrouter", "exa", "parallel", "firecrawl"]
ProviderSort = Literal["price", "throughput", "latency"]
PdfEngine = Literal["cloudflare-ai", "mistral-ocr", "native", "pdf-text"]
APP_NAME = "openrouter-research-mcp"


def _default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class _NonBlank(PydanticBaseSettingsSource):
    """A source without its blank values, so `"   "` counts as unset, like `""`, and the next source is asked."""

    def __init__(self, inner: PydanticBaseSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self._inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return {
            key: value for key, value in self._inner().items() if not (isinstance(value, str) and not value.strip())
        }


class Settings(BaseSettings):
    """Validated configuration; each field is read from `OPENROUTER_<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    # The sign-in page of `login` (OAuth with PKCE); unset, derived from base_url (…/api/v1 → …/auth).
    auth_url: str | None = None
    default_model: str = DEFAULT_MODEL
    fallback_models: Annotated[tuple[str, ...], NoDecode] = ()
    timeout: Annotated[float, Field(gt=0, le=3600)] = DEFAULT_TIMEOUT
    max_retries: Annotated[int, Field(ge=0, le=10)] = DEFAULT_MAX_RETRIES
    cache_dir: Annotated[Path, Field(default_factory=_default_cache_dir)]
    models_ttl: Annotated[float, Field(ge=0)] = DEFAULT_MODELS_TTL
    app_title: str = DEFAULT_APP_TITLE
    app_url: str = DEFAULT_APP_URL
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    research_max_cost_usd: Annotated[float, Field(gt=0, le=100)] = DEFAULT_RESEARCH_MAX_COST_USD
    research_concurrency: Annotated[int, Field(ge=1, le=16)] = 4
    web_search: Literal["server_tool", "plugin"] = "server_tool"
    web_engine: WebSearchEngine = "auto"
    fetch_engine: WebFetchEngine = "auto"
    data_dir: Annotated[Path, Field(default_factory=_default_data_dir)]
    pdf_engine: PdfEngine = "cloudflare-ai"
    max_attachment_mb: Annotated[float, Field(gt=0, le=100)] = 20.0
    file_roots: Annotated[tuple[Path, ...], NoDecode] = ()
    benchmark_concurrency: Annotated[int, Field(ge=1, le=16)] = 4
    job_lease_s: Annotated[float, Field(ge=1, le=600)] = DEFAULT_JOB_LEASE_S
    provider_sort: ProviderSort | None = None
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool = False
    provider_only: Annotated[tuple[str, ...], NoDecode] = ()
    provider_ignore: Annotated[tuple[str, ...], NoDecode] = ()
    max_price: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    # Serving over HTTP for a team (see "Run it for a team" in the README).
    mcp_transport: Literal["stdio", "http"] = "stdio"
    mcp_host: str = "127.0.0.1"
    mcp_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    mcp_auth: Literal["none", "tokens", "oauth", "openrouter"] = "none"
    mcp_public_url: str | None = None
    mcp_oauth_issuer: str | None = None
    mcp_oauth_audience: str | None = None
    mcp_oauth_scopes: Annotated[tuple[str, ...], NoDecode] = ()
    mcp_oauth_jwks_url: str | None = None
    # auth=openrouter: the secret(s) sealing each user's OpenRouter key at rest (comma-separated; the first seals).
    mcp_key_secret: SecretStr | None = None
    mcp_max_body_mb: Annotated[float, Field(gt=0, le=100)] = 4.0
    mcp_drain_s: Annotated[float, Field(ge=0, le=600)] = 20.0
    # A caller's classic sessions at most (remote/sessions.py): the least recently used idle one makes room.
    mcp_sessions_per_caller: Annotated[int, Field(ge=1, le=10_000)] = 32
    quota_usd_per_day: Annotated[float | None, Field(ge=0)] = None
    quota_usd_per_month: Annotated[float | None, Field(ge=0)] = None
    quota_calls_per_minute: Annotated[int | None, Field(ge=0)] = None
    quota_jobs: Annotated[int | None, Field(ge=0)] = None
    # Several replicas over one database (see "Run it at scale"): unset, the embedded SQLite file in data_dir.
    database_url: SecretStr | None = None
    # The keys that seal the SDK's request state, the same on every replica (comma-separated; the first seals).
    mcp_state_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - the signature pydantic-settings calls
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no secrets directory is read
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the .env file, each without blank values."""
        return init_settings, _NonBlank(env_settings), _NonBlank(dotenv_settings)

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("base_url", "auth_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("mcp_state_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            keys = tuple(k.strip() for k in value.split(",") if k.strip())
            if any(len(k) < 32 for k in keys):
                raise ValueError("each key must be at least 32 characters; make one with `openssl rand -hex 32`")
            return keys
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            scheme = value.get_secret_value().split("://", 1)[0].lower()
            if scheme not in ("postgresql", "postgres"):
                raise ValueError(
                    "must be a PostgreSQL URL (postgresql://user:password@host:5432/database); leave it unset for "
                    "the embedded SQLite store"
                )
        return value

    @field_validator("max_price", mode="before")
    @classmethod
    def _prices(cls, value: Any) -> Any:
        """`1.5` (prompt and completion) or `prompt=1,completion=4`, in USD per million tokens."""
        if not isinstance(value, str):
            return value
        if "=" not in value:
            return {"prompt": value, "completion": value}
        pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("write a number, or kind=number pairs such as prompt=1,completion=4")
        return {kind.strip(): number.strip() for kind, number in pairs}

    @field_validator("max_price")
    @classmethod
    def _known_prices(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"prompt", "completion", "request", "image", "audio"}
        if unknown or any(price < 0 for price in value.values()):
            raise ValueError("kinds are prompt, completion, request, image, audio; prices are >= 0")
        return value

    @field_validator("fallback_models", "provider_only", "provider_ignore", "mcp_oauth_scopes", mode="before")
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

    @field_validator("file_roots", mode="before")
    @classmethod
    def _roots(cls, value: Any) -> Any:
        """Directories separated by the platform's path separator (`:` or `;`) or commas."""
        if isinstance(value, str):
            parts = [p.strip() for chunk in value.split(os.pathsep) for p in chunk.split(",")]
            return tuple(Path(p).expanduser() for p in parts if p)
        return value

    @property
    def database(self) -> str | None:
        """The PostgreSQL URL (OPENROUTER_DATABASE_URL) when several replicas share one database, else None."""
        return self.database_url.get_secret_value() if self.database_url else None

    @property
    def has_api_key(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())


ENV_VARS: tuple[str, ...] = tuple(f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields)


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    name = f"{ENV_PREFIX}{str(first['loc'][0]).upper()}" if first["loc"] else "configuration"
    given = first.get("input")
    field = Settings.model_fields.get(str(first["loc"][0])) if first["loc"] else None
    secret = field is not None and "SecretStr" in str(field.annotation)  # a key, a URL with a password: never shown
    shown = "" if secret or isinstance(given, dict) else f" (got {given!r})"
    return f"{name}: {first['msg'].removeprefix('Value error, ')}{shown}"


def load_settings(env_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """`Settings` from `overrides` (field names) > the environment > the .env file (`env_file`, else ./.env) >
    defaults. Raises `ConfigError` with a one-line message naming the variable when a value is bad."""
    if env_file is not None and not Path(env_file).is_file():
        raise ConfigError(f"--env-file: {os.fspath(env_file)!r} does not exist or is not a file")
    unknown = set(overrides) - set(Settings.model_fields)
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    given: dict[str, Any] = {name: value for name, value in overrides.items() if value is not None}
    given["_env_file"] = Path(env_file) if env_file is not None else Path.cwd() / ".env"
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
