"""Who is calling a team server: each request's caller, from its verified bearer token and its headers.

With authentication, the principal is the token's subject (`token:NAME` for a bearer token); without it (only
on loopback) everyone is the one local caller. A caller may send their own OpenRouter key in `X-OpenRouter-Key`:
their calls then use and are billed to that key (never stored, never logged) and count against their calls and
jobs quotas only. A user signed in with OpenRouter (`OPENROUTER_MCP_AUTH=openrouter`) is billed to the key their
sign-in made (`signed_in_callers`).
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext

from ..callers import Resolver
from ..tools.state import LOCAL, Caller, Shared
from .auth import limits_of
from .federation import OpenRouterSignIn, SignedInToken

__all__ = ["OWN_KEY_HEADER", "http_caller", "principal_of", "signed_in_callers"]

OWN_KEY_HEADER = "x-openrouter-key"
MAX_KEY_CHARS = 256


def principal_of(token: AccessToken) -> str:
    """Who a verified access token speaks for: its subject (`token:NAME` for our bearer tokens), else its client."""
    return token.subject or token.client_id


def http_caller(shared: Shared, ctx: ServerRequestContext[Any, Any]) -> Caller:
    token = get_access_token()
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    own = (headers.get(OWN_KEY_HEADER) or "").strip() if headers is not None else ""
    if len(own) > MAX_KEY_CHARS or not (own.isascii() and own.isprintable()):
        own = ""  # no key of OpenRouter's looks like this: the operator's key and quotas apply
    principal = principal_of(token) if token is not None else LOCAL
    limits = limits_of(token).over(shared.default_limits())
    return shared.caller(principal, own or None, own_key=bool(own), limits=limits)


def signed_in_callers(provider: OpenRouterSignIn) -> Resolver:
    """The resolver for users signed in with OpenRouter (`federation.py`): each request's caller uses, and is billed
    to, the key of the user its access token belongs to (so only their calls-per-minute and jobs quotas apply), and
    is told how to reconnect when OpenRouter refuses it."""

    def resolve(shared: Shared, ctx: ServerRequestContext[Any, Any]) -> Caller:
        caller = http_caller(shared, ctx)
        token = get_access_token()
        if not isinstance(token, SignedInToken):
            return caller
        key = token.openrouter_key.get_secret_value()
        own = shared.caller(caller.principal, key, own_key=True, limits=caller.limits)
        own.key_refused = provider.key_refused(token)
        return own

    return resolve
