"""Which redirect URIs an MCP client may register with the team server's sign-in (`federation.py`), and which need
the person's consent on our own page before they are sent to OpenRouter.

A code sent to a loopback address (`http://127.0.0.1:PORT/...`, RFC 8252 §7.3) or to a private-use scheme
(`cursor://...`, §7.1) lands on the machine of the person signing in, so no one else can receive it. A code sent to
an https site goes wherever that site is: a client registered by anyone could name their own site and send someone
a link that starts a sign-in (the "confused deputy" of the MCP security guidance). So for those the person first
sees, on our page, which application asks and where their sign-in will be sent, and says yes.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["needs_consent", "redirect_refusal"]

REFUSED_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss"})


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
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
    if scheme == "http" and not _loopback(parts.hostname):
        return f"{uri!r} is plain http to another machine: use https, or http on 127.0.0.1 / localhost."
    if scheme in ("http", "https") and not parts.hostname:
        return f"{uri!r} names no host."
    return None


def needs_consent(uri: str) -> bool:
    """Whether a sign-in for this redirect URI must be confirmed on our page (an https site not on this machine)."""
    parts = urlsplit(uri)
    return parts.scheme.lower() == "https" and not _loopback(parts.hostname)
