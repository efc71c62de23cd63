"""Who is calling a team server: each request's caller, from its verified bearer token and its headers.

With authentication, the principal is the token's subject (`token:NAME` for a bearer token); without it (only
on loopback) everyone is the one local caller. A caller may send their own OpenRouter key in `X-OpenRouter-Key`:
their calls then use and are billed to that key (never stored, never logged) and count against their calls and
jobs quotas only.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext

from ..tools.state import LOCAL, Caller, Shared
from .auth import limits_of

__all__ = ["OWN_KEY_HEADER", "http_caller"]

OWN_KEY_HEADER = "x-openrouter-key"
MAX_KEY_CHARS = 256


def http_caller(shared: Shared, ctx: ServerRequestContext[Any, Any]) -> Caller:
    token = get_access_token()
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    own = (headers.get(OWN_KEY_HEADER) or "").strip() if headers is not None else ""
    if len(own) > MAX_KEY_CHARS or not (own.isascii() and own.isprintable()):
        own = ""  # no key of OpenRouter's looks like this: the operator's key and quotas apply
    principal = (token.subject or token.client_id) if token is not None else LOCAL
    limits = limits_of(token).over(shared.default_limits())
    return shared.caller(principal, own or None, own_key=bool(own), limits=limits)
