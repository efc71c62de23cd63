"""Secrets kept at rest by the team server (`OPENROUTER_MCP_AUTH=openrouter`): each user's OpenRouter key, and the
PKCE verifier of a sign-in in progress, sealed with Fernet (AES-128-CBC with HMAC-SHA256, `cryptography`) under
the operator's `OPENROUTER_MCP_KEY_SECRET`.

The secret is one or more values, comma-separated: each either a Fernet key (`Fernet.generate_key()`, 44 URL-safe
base64 characters) or a passphrase of at least `MIN_PASSPHRASE` characters, stretched to a key by HKDF-SHA256. The
first seals; every one opens (`MultiFernet`), so a secret is rotated by putting the new one first, and a value
sealed under an old one is sealed again under the first when it is next used (`Sealer.reseal`).

Each sealed value is bound to the row it belongs to (`bound`, e.g. the grant's id): the plaintext is
`bound + "\\n" + secret`, checked on opening, so a ciphertext moved to another row in the database opens to nothing.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ConfigError

__all__ = ["MIN_PASSPHRASE", "SECRET_VAR", "Sealer"]

SECRET_VAR = "OPENROUTER_MCP_KEY_SECRET"
MIN_PASSPHRASE = 32
# Fixed for every installation: HKDF needs no secret salt, and a per-installation one would have to be kept too.
HKDF_SALT = b"openrouter-research-mcp/sealed/v1"
HKDF_INFO = b"fernet key for users' OpenRouter keys"


def _fernet_key(value: str) -> bytes:
    """`value` as a Fernet key: itself when it is one, else derived from it as a passphrase."""
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(value) == 44 and len(raw) == 32:
        return value.encode("ascii")
    if len(value) < MIN_PASSPHRASE:
        raise ConfigError(
            f"{SECRET_VAR}: each value must be a Fernet key or a passphrase of at least {MIN_PASSPHRASE} characters "
            "(one of them is shorter); make one with `openssl rand -base64 32 | tr '+/' '-_'`."
        )
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(value.encode())
    return base64.urlsafe_b64encode(derived)


class Sealer:
    """Seals and opens values under the operator's secret (see the module docstring)."""

    def __init__(self, secret: str) -> None:
        values = [part.strip() for part in secret.split(",") if part.strip()]
        if not values:
            raise ConfigError(
                f"OPENROUTER_MCP_AUTH=openrouter needs {SECRET_VAR}: the secret that encrypts each user's OpenRouter "
                "key at rest (a long passphrase, or a Fernet key: `openssl rand -base64 32 | tr '+/' '-_'`). Keep "
                "it out of the data directory and the database, and the same on every replica."
            )
        self._fernets = [Fernet(_fernet_key(value)) for value in values]
        self._all = MultiFernet(self._fernets)

    def seal(self, bound: str, secret: str) -> str:
        """`secret`, sealed under the first value and bound to `bound`."""
        return self._fernets[0].encrypt(f"{bound}\n{secret}".encode()).decode("ascii")

    def open(self, bound: str, sealed: str) -> str | None:
        """What `seal(bound, …)` sealed; None when no value opens it or it was sealed for another row."""
        try:
            plain = self._all.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            return None
        owner, sep, secret = plain.partition("\n")
        return secret if sep and owner == bound else None

    def reseal(self, sealed: str) -> str | None:
        """`sealed` sealed again under the first value, when another value sealed it; else None (nothing to do)."""
        try:
            self._fernets[0].decrypt(sealed.encode("ascii"))
            return None
        except InvalidToken:
            pass
        try:
            return self._all.rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            return None
