"""`openrouter-research-mcp doctor`: check the configuration and the upstream, and say what to fix."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ._util import usd, without_credentials
from .config import Settings
from .errors import AuthError, OpenRouterError
from .openrouter.account import account_info
from .openrouter.request import provider_body
from .tools.state import open_state

if TYPE_CHECKING:
    from .keystore import KeySource

__all__ = ["run_doctor"]


def _usd(value: object) -> str:
    return usd(float(value)) if isinstance(value, int | float) else "unknown"


def _expiry(value: object, now: datetime | None = None) -> tuple[str, bool]:
    """`expires_at` of GET /key for people, and whether the key still works by it."""
    if value is None:
        return "never", True
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return f"{value} (as OpenRouter says)", True
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    left = when - (now or datetime.now(UTC))
    shown = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if left.total_seconds() <= 0:
        return f"EXPIRED on {shown}", False
    days = left.total_seconds() / 86400
    return f"{shown} (in {f'{days:.0f} days' if days >= 2 else f'{left.total_seconds() / 3600:.0f} hours'})", True


async def run_doctor(settings: Settings, key_source: KeySource | None = None) -> tuple[str, bool]:
    """A readable report and whether everything needed works. Never shows the key, only where it came from
    (`key_source`, from `keystore.with_stored_key`)."""
    lines = ["openrouter-research-mcp doctor", ""]
    ok = True
    lines.append(f"base URL        {without_credentials(settings.base_url)}")
    lines.append(f"default model   {settings.default_model}")
    lines.append(f"fallbacks       {', '.join(settings.fallback_models) or '(none)'}")
    lines.append(f"timeout         {settings.timeout:g} s, {settings.max_retries} retries")
    lines.append(
        f"web             {settings.web_search} (search engine {settings.web_engine}, "
        f"page reading {settings.fetch_engine})"
    )
    routing = provider_body(settings)
    lines.append(f"routing         {json.dumps(routing) if routing else '(OpenRouter defaults)'}")
    lines.append(f"cache           {settings.cache_dir} (TTL {settings.models_ttl:g} s)")
    async with open_state(settings) as shared:
        state = shared.for_caller(shared.caller())
        started = time.monotonic()
        try:
            snap = await state.catalog.get()
            age = snap.age()
            lines.append(
                f"catalog         {len(snap.models)} models, {snap.source}, {age / 60:.0f} min old "
                f"({(time.monotonic() - started) * 1000:.0f} ms)"
            )
            for role, model_id in [
                ("default model", settings.default_model),
                *(("fallback model", m) for m in settings.fallback_models),
            ]:
                try:
                    state.catalog.resolve(snap, model_id)
                except OpenRouterError as exc:
                    ok = False
                    lines.append(f"  ! {role}: {exc.message}")
        except OpenRouterError as exc:
            ok = False
            lines.append(f"catalog         FAILED: {exc.message}")
        if not settings.has_api_key:
            ok = False
            lines.append(f"API key         MISSING: {AuthError.missing().message}")
        else:
            source = f"  source        {key_source.name if key_source else 'environment or .env'}"
            stored = key_source is not None and key_source.stored
            relogin = " Run `openrouter-research-mcp login` to sign in again." if stored else ""
            try:
                info = await account_info(state.get_json)
                lines.append("API key         present and valid")
                lines.append(source)
                spent = [
                    f"{_usd(info[name])} {when}"
                    for name, when in (("usage", "in all"), ("usage_daily", "today"), ("usage_monthly", "this month"))
                    if isinstance(info.get(name), int | float)
                ]
                lines.append(f"  usage         {', '.join(spent) or 'not reported by OpenRouter'}")
                if info.get("byok_usage"):
                    lines.append(f"  own keys      {_usd(info.get('byok_usage'))} billed by your providers (BYOK)")
                limit, left = info.get("limit"), info.get("limit_remaining")
                lines.append(
                    f"  limit         {'none' if limit is None else _usd(limit)}"
                    + ("" if left is None else f" ({_usd(left)} left)")
                )
                credits = info.get("credits") or {}
                if credits:
                    lines.append(
                        f"  credits       {_usd(credits.get('remaining_usd'))} left of {_usd(credits.get('total_usd'))}"
                    )
                if "expires_at" in info:
                    expiry, alive = _expiry(info["expires_at"])
                    ok = ok and alive
                    lines.append(f"  expires       {expiry}{'' if alive else '.' + relogin}")
                if info.get("is_free_tier"):
                    lines.append("  free tier     yes (`:free` models allow about 50 requests a day)")
            except OpenRouterError as exc:
                ok = False
                lines.append(f"API key         FAILED: {exc.message}")
                lines.append(source)
    lines += ["", "all good" if ok else "problems found: see the lines marked above"]
    return "\n".join(lines), ok
