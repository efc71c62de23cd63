"""A fake OAuth authorization server on loopback: metadata and a JWKS to fetch, and keys that mint access tokens.

Standard library HTTP (a `ThreadingHTTPServer` on a daemon thread, as `openrouter.py`); keys made at start-up with
cryptography, so nothing secret lives in the repository.

```
with FakeIssuer() as issuer:                       # one RSA (RS256) and one EC P-256 (ES256) key published
    token = issuer.mint({"scope": "research"})     # signed by the default key, valid for 300 s
    issuer.mint(key=issuer.ec, headers={"kid": None})
    new = issuer.rotate()                          # a new RS256 key in the JWKS, and the default from now on
    issuer.jwks_status = 503                       # the JWKS endpoint fails
    assert issuer.jwks_fetches == 1
```

It serves `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration` (with `path`, RFC 8414's
`/.well-known/oauth-authorization-server{path}` and OpenID's `{path}/.well-known/openid-configuration`) and `/jwks`,
public keys only. Attributes tests may change: `serve_oauth_metadata`, `serve_oidc_metadata`, `metadata_issuer`
(the `issuer` the metadata names), `jwks_status`, `jwks_body` (served instead of the keys), `jwks_latency`,
`jwks_gate` (a `threading.Event` the JWKS answer waits for, when set); `requests` logs every path asked for.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

__all__ = ["AUDIENCE", "SUBJECT", "FakeIssuer", "SigningKey", "b64url"]

AUDIENCE = "https://mcp.example.test/mcp"
SUBJECT = "alice"
LIFETIME_S = 300
_CURVES: dict[str, ec.EllipticCurve] = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}


def b64url(data: bytes) -> str:
    """Base64url without padding, as in a JWS."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in mapping.items() if value is not None}


@dataclass(frozen=True)
class SigningKey:
    """A private key, its kid and algorithm, and its public JWK."""

    kid: str
    alg: str
    private: Any
    jwk: dict[str, Any]

    @staticmethod
    def generate(alg: str = "RS256", kid: str | None = None, *, rsa_bits: int = 2048) -> SigningKey:
        """A fresh key for `alg` (RS*/PS*: RSA, ES*: its curve, EdDSA: Ed25519)."""
        kid = kid or secrets.token_hex(8)
        public: dict[str, Any]
        if alg[:2] in ("RS", "PS"):
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
            public = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        elif alg in _CURVES:
            private = ec.generate_private_key(_CURVES[alg])
            public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
            public = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            raise ValueError(f"no key for {alg}")
        return SigningKey(kid, alg, private, {**public, "kid": kid, "use": "sig", "alg": alg})

    def public_pem(self) -> bytes:
        """The public key as PEM: what a key-confusion attacker uses as an HMAC secret."""
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


class FakeIssuer:
    """The fake authorization server; see the module docstring."""

    def __init__(self, *, path: str = "", audience: str = AUDIENCE, scope: str = "research") -> None:
        self.path = path.rstrip("/")
        self.audience = audience
        self.scope = scope
        self.rsa = SigningKey.generate("RS256")
        self.ec = SigningKey.generate("ES256")
        self.keys: list[SigningKey] = [self.rsa, self.ec]
        self.default = self.rsa
        self.serve_oauth_metadata = True
        self.serve_oidc_metadata = True
        self.metadata_issuer: str | None = None  # None: the real issuer
        self.jwks_status = 200
        self.jwks_body: Any = None  # served instead of the keys when set
        self.jwks_latency = 0.0
        self.jwks_gate: threading.Event | None = None
        self.requests: list[str] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeIssuer:
        """Bind 127.0.0.1 on a free port and serve on a daemon thread."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-issuer", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeIssuer is not running: call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        """`http://127.0.0.1:<port><path>`, once started."""
        return self.origin + self.path

    @property
    def jwks_url(self) -> str:
        return self.origin + "/jwks"

    @property
    def jwks_fetches(self) -> int:
        """How many times the JWKS was asked for."""
        return self.count("/jwks")

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests.count(path)

    # ------------------------------------------------------------------------------------------------ tokens

    def rotate(self, alg: str = "RS256") -> SigningKey:
        """Publish a new key (new kid) and sign with it by default from now on."""
        key = SigningKey.generate(alg)
        with self._lock:
            self.keys.append(key)
            self.default = key
        return key

    def claims(self, now: float | None = None) -> dict[str, Any]:
        """The default claims: ours, for `SUBJECT`, valid from `now` for LIFETIME_S."""
        now = time.time() if now is None else now
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": SUBJECT,
            "azp": "team-client",
            "iat": int(now),
            "exp": int(now) + LIFETIME_S,
            "scope": self.scope,
            "jti": secrets.token_hex(8),
        }

    def mint(
        self,
        claims_overrides: dict[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> str:
        """A signed JWT: the default claims with `claims_overrides` laid over (a None value removes the claim), and
        the header `{"kid": key.kid, "typ": "at+jwt"}` with `headers` laid over likewise."""
        key = key or self.default
        payload = _without_none({**self.claims(now), **(claims_overrides or {})})
        header = _without_none({"kid": key.kid, "typ": "at+jwt", **(headers or {})})
        with warnings.catch_warnings():  # a deliberately weak test key is the point of some tests
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            return jwt.encode(payload, key.private, algorithm=alg or key.alg, headers=header)

    # ------------------------------------------------------------------------------------------------ serving

    def _metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.metadata_issuer if self.metadata_issuer is not None else self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.jwks_url,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": self.scope.split(),
        }

    def _answer(self, path: str) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(path)
            keys = [key.jwk for key in self.keys]
        if path == f"/.well-known/oauth-authorization-server{self.path}" and self.serve_oauth_metadata:
            return 200, self._metadata()
        oidc = {f"{self.path}/.well-known/openid-configuration", f"/.well-known/openid-configuration{self.path}"}
        if path in oidc and self.serve_oidc_metadata:
            return 200, self._metadata()
        if path == "/jwks":
            if self.jwks_latency:
                self._stopping.wait(self.jwks_latency)
            if self.jwks_gate is not None:
                self.jwks_gate.wait()
            if self.jwks_status != 200:
                return self.jwks_status, {"error": "unavailable"}
            return 200, self.jwks_body if self.jwks_body is not None else {"keys": keys}
        return 404, {"error": "not_found"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeIssuer) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002 - recorded for the test
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, OSError):
            self.fake.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - keep test output quiet
        return

    def do_GET(self) -> None:
        status, payload = self.server.fake._answer(self.path.split("?")[0])
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
