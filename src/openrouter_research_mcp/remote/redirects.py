"""Which redirect URIs an MCP client may register with the team server's sign-in (`federation.py`), and which need
the person's consent on our own page before they are sent to OpenRouter.

A code sent to a loopback address (`http://127.0.0.1:PORT/...`, RFC 8252 §7.3) lands on the machine of the person
signing in, so no one else can receive it. A code sent anywhere else may end up elsewhere: an https site is wherever
that site is, and an app's own scheme (`cursor://...`, §7.1) is handed to whichever program claims it, which may be
a browser that opens a remote site (`microsoft-edge:https://...`, `x-safari-https://...`, `googlechromes://...`).
A client registered by anyone could name such a URI and send someone a link that starts a sign-in (the "confused
deputy" of the MCP security guidance). So for those the person first sees, on our page, which application asks and
where their sign-in will be sent (`shown`), and says yes. A URI with a user name or password in it
(`https://claude.ai@evil.example/`) cannot be registered: it would only serve to mislead on that page.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar
from urllib.parse import urlsplit

from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import AnyUrl

from .auth import Quiet

__all__ = ["LoopbackPorts", "loopback_ip", "needs_consent", "redirect_refusal", "registered", "shown"]

REFUSED_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss"})
MAX_SHOWN = 120
MAX_CLIENT_CHARS = 8000  # a registered client's metadata, as JSON (a usual one is a few hundred characters)
MAX_REDIRECT_URIS = 10


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    return host.lower() == "localhost" or loopback_ip(host)


def loopback_ip(host: str | None) -> bool:
    """Whether `host` is a loopback IP literal (`127.0.0.1`, `::1`): RFC 8252 §7.3's, on which any port is taken."""
    try:
        return bool(host) and ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def redirect_refusal(uri: str) -> str | None:
    """Why `uri` cannot be a registered redirect URI (None: it can)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or scheme in REFUSED_SCHEMES:
        return f"{uri!r} cannot receive a sign-in: use an https URL, a loopback http URL or an app's own scheme."
    if parts.fragment:
        return f"{uri!r} has a fragment; a redirect URI may not (RFC 6749 §3.1.2)."
    if "@" in parts.netloc:
        return f"{uri!r} has a user name or password before its host ('…@'); a redirect URI may not: remove it."
    if scheme == "http" and not _loopback(parts.hostname):
        return f"{uri!r} is plain http to another machine: use https, or http on 127.0.0.1 / localhost."
    if scheme in ("http", "https") and not parts.hostname:
        return f"{uri!r} names no host."
    return None


def registered(client_info: OAuthClientInformationFull) -> str:
    """The metadata of a client registering (RFC 7591), as the JSON kept; RegistrationError when it may not."""
    uris = client_info.redirect_uris or []
    if not uris:
        raise RegistrationError("invalid_redirect_uri", "Register at least one redirect URI.")
    if len(uris) > MAX_REDIRECT_URIS:
        raise RegistrationError(
            "invalid_redirect_uri", f"Register at most {MAX_REDIRECT_URIS} redirect URIs ({len(uris)} were sent)."
        )
    for uri in uris:
        why = redirect_refusal(str(uri))
        if why:
            raise RegistrationError("invalid_redirect_uri", why)
    info = client_info.model_dump_json(exclude_none=True)
    if len(info) > MAX_CLIENT_CHARS:
        raise RegistrationError(
            "invalid_client_metadata",
            f"This client's metadata is {len(info):,} characters long; at most {MAX_CLIENT_CHARS:,} are kept. "
            "Send shorter metadata (fewer or shorter redirect URIs, names and links).",
        )
    return info


def needs_consent(uri: str) -> bool:
    """Whether a sign-in for this redirect URI must be confirmed on our page: anything but http(s) on this machine."""
    parts = urlsplit(uri)
    return not (parts.scheme.lower() in ("http", "https") and _loopback(parts.hostname))


def shown(uri: str) -> str:
    """Where a sign-in for `uri` goes, as the consent page names it: an http(s) URL's host (and port), else the URI
    without its query (an app's scheme: the program that takes it decides where it goes)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        try:
            port = parts.port
        except ValueError:
            port = None
        return parts.hostname + (f":{port}" if port else "")
    bare = uri.split("?", 1)[0]
    return bare if len(bare) <= MAX_SHOWN else bare[: MAX_SHOWN - 1] + "…"


class LoopbackPorts(Quiet, OAuthClientInformationFull):
    """A registered client whose loopback IP redirect URIs take any port (RFC 8252 §7.3: a native app listens on a
    port the OS gives it at the time of the request); every other redirect URI must be the registered one, exactly.
    A confidential client's secret never shows in its repr or str."""

    HIDDEN: ClassVar[frozenset[str]] = frozenset({"client_secret"})

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is not None and redirect_uri not in (self.redirect_uris or []):
            asked = urlsplit(str(redirect_uri))
            if asked.scheme == "http" and "@" not in asked.netloc and loopback_ip(asked.hostname):
                for registered in self.redirect_uris or []:
                    known = urlsplit(str(registered))
                    if (
                        known.scheme == "http"
                        and known.hostname == asked.hostname
                        and ((known.path, known.query) == (asked.path, asked.query))
                    ):
                        return redirect_uri
        return super().validate_redirect_uri(redirect_uri)
