"""The server over Streamable HTTP (`serve --transport http`): the SDK's transport at `/mcp` under uvicorn.

Safe by default: it binds 127.0.0.1 and refuses any other address unless authentication is configured; Host and
Origin are checked against the addresses it serves (DNS rebinding); request bodies are limited
(`OPENROUTER_MCP_MAX_BODY_MB`, 413); idle connections, and requests whose headers or body trickle in, are closed
(`bounds.py`). On SIGTERM or SIGINT it drains: new requests get 503 with `Retry-After`, calls in flight are answered
(up to `OPENROUTER_MCP_DRAIN_S`), and only then does uvicorn stop, so the SDK's SSE streams (which sse-starlette
closes at once on shutdown) are already done; running jobs are saved as interrupted on the way out. `/healthz` says
the process is alive, `/readyz` that the store and the catalog answer, `/metrics` (to this machine only) what the
server did.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import time
from collections.abc import Callable
from types import FrameType
from urllib.parse import urlsplit

import uvicorn
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _metrics
from ..config import Settings
from ..errors import ConfigError, OpenRouterError
from ..jobs.accounts import open_accounts
from ..jobs.store import StoreUnavailable
from ..server import ResearchServer, build_server
from . import bounds
from .auth import SubjectQuotas, TokenTable, refusals, refused
from .callers import http_caller, signed_in_callers
from .federation import OpenRouterSignIn
from .oauth import JwtVerifier, OAuthConfig
from .sealed import Sealer
from .sessions import cap_sessions
from .signin_pages import signin_routes
from .throttle import SignInThrottle

__all__ = ["build_http", "serve_http", "signing_in"]

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
IDLE_S = 30  # an idle keep-alive connection is closed after this long


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse to serve beyond this machine without authentication."""
    if settings.mcp_auth == "none" and not is_loopback(settings.mcp_host):
        raise ConfigError(
            f"OPENROUTER_MCP_HOST={settings.mcp_host} would let anyone who can reach this machine spend your "
            "OpenRouter key: serving beyond 127.0.0.1 needs authentication. Set OPENROUTER_MCP_AUTH=tokens and "
            "add a token with `openrouter-research-mcp token add NAME`, or bind 127.0.0.1."
        )


def public_url(settings: Settings) -> str:
    """The URL clients see for `/mcp` (OPENROUTER_MCP_PUBLIC_URL, else the bound address)."""
    if settings.mcp_public_url:
        return settings.mcp_public_url.rstrip("/")
    host = settings.mcp_host if ":" not in settings.mcp_host else f"[{settings.mcp_host}]"
    return f"http://{host}:{settings.mcp_port}{MCP_PATH}"


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Host and Origin allow-lists: the loopback names on the bound port, the bound host, the public URL's."""
    port = settings.mcp_port
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    origins = {f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"}
    bound = settings.mcp_host if ":" not in settings.mcp_host else f"[{settings.mcp_host}]"
    hosts.add(f"{bound}:{port}")
    origins.add(f"http://{bound}:{port}")
    if settings.mcp_public_url:
        parts = urlsplit(settings.mcp_public_url)
        hosts.add(parts.netloc)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=sorted(hosts), allowed_origins=sorted(origins)
    )


class Drain:
    """ASGI middleware: counts calls in flight and, once draining, refuses new ones with 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inflight = 0
        self.draining = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "GET":  # GET: health checks and listening streams
            await self.app(scope, receive, send)
            return
        if self.draining:
            response = PlainTextResponse(
                "This server is shutting down; try again in a moment (another replica may answer).",
                status_code=503,
                headers={"Retry-After": "5", "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


class AuthFailures:
    """ASGI middleware: each request to `/mcp` refused by authentication (401, 403) counted once in the metrics,
    by the reason its verifier noted (`remote/auth.py`), `missing` without a bearer token, `insufficient_scope`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != MCP_PATH:
            await self.app(scope, receive, send)
            return
        noted: list[str] = []
        mark = refusals.set(noted)

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                if message["status"] == 403:
                    reason = "insufficient_scope"
                elif noted:
                    reason = noted[-1]
                else:
                    bearer = any(k == b"authorization" and v[:7].lower() == b"bearer " for k, v in scope["headers"])
                    reason = "invalid" if bearer else "missing"
                _metrics.auth_failed(reason)
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            refusals.reset(mark)


def _relayed_or_remote(request: Request) -> bool:
    """Whether a request came from beyond this machine, directly or through a proxy on it."""
    peer = request.client.host if request.client else ""
    relayed = ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host")
    return not is_loopback(peer) or any(name in request.headers for name in relayed)


class DrainingServer(uvicorn.Server):
    """uvicorn that, on a stop signal, waits for the calls in flight (up to `grace` seconds) before it stops."""

    def __init__(self, config: uvicorn.Config, drain: Drain, grace: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.drain, self.grace, self.on_drain = drain, grace, on_drain
        self.drain_started: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_started is None:
            self.drain_started = time.monotonic()
            self.drain.draining = True
            self.on_drain()
            log.info("stopping: answering the %d call(s) in flight first (up to %g s)", self.drain.inflight, self.grace)
            return
        super().handle_exit(sig, frame)  # a second signal: stop now

    async def on_tick(self, counter: int) -> bool:
        if self.drain_started is not None and not self.should_exit:
            if self.drain.inflight == 0 or time.monotonic() - self.drain_started >= self.grace:
                self.should_exit = True
        return await super().on_tick(counter)


def _authentication(settings: Settings) -> tuple[TokenVerifier | None, AuthSettings | None]:
    """Who may call, by OPENROUTER_MCP_AUTH: nobody checked (`none`), our bearer tokens, or an OAuth issuer's JWTs
    (protected-resource metadata at `/.well-known/oauth-protected-resource/mcp`, 403 on a missing scope)."""
    if settings.mcp_auth == "none":
        return None, None
    accounts = open_accounts(settings)
    if settings.mcp_auth == "tokens":
        auth = AuthSettings(issuer_url=public_url(settings), resource_server_url=None)  # type: ignore[arg-type]
        return TokenTable(accounts), auth
    issuer = settings.mcp_oauth_issuer
    if not issuer:
        raise ConfigError(
            "OPENROUTER_MCP_AUTH=oauth needs OPENROUTER_MCP_OAUTH_ISSUER: the issuer URL of your authorization server "
            "(the `iss` of its access tokens, e.g. https://auth.example.com/realms/team)."
        )
    config = OAuthConfig(
        issuer=issuer,
        audience=settings.mcp_oauth_audience or public_url(settings),
        scopes=settings.mcp_oauth_scopes,
        jwks_url=settings.mcp_oauth_jwks_url,
    )
    auth = AuthSettings(
        issuer_url=issuer,  # type: ignore[arg-type]
        resource_server_url=public_url(settings),  # type: ignore[arg-type]
        required_scopes=list(config.scopes),
        validate_token_resource=False,  # the verifier checks `aud` itself, against an audience that may be no URL
    )
    return SubjectQuotas(JwtVerifier(config, on_refusal=refused), accounts), auth


def signing_in(settings: Settings, public: str) -> tuple[OpenRouterSignIn, AuthSettings]:
    """The provider and the SDK's settings for `OPENROUTER_MCP_AUTH=openrouter`, the MCP endpoint at `public`.

    The issuer is the public URL's origin: the SDK serves `/authorize`, `/token`, `/register`, `/revoke` and the
    RFC 8414 metadata at the root of the server, so it must be served at the root of its host (a reverse proxy
    passes the whole host through)."""
    secret = settings.mcp_key_secret.get_secret_value() if settings.mcp_key_secret else ""
    sealer = Sealer(secret)  # a missing or weak secret: ConfigError, before anything is served
    parts = urlsplit(public)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not loopback:
        raise ConfigError(
            f"OPENROUTER_MCP_AUTH=openrouter signs people in, which needs https: set OPENROUTER_MCP_PUBLIC_URL to "
            f"the https URL clients use (e.g. https://research.example.com/mcp), not {public}."
        )
    auth = AuthSettings(
        issuer_url=f"{parts.scheme}://{parts.netloc}",  # type: ignore[arg-type]
        resource_server_url=public,  # type: ignore[arg-type]
        client_registration_options=ClientRegistrationOptions(enabled=True),
        revocation_options=RevocationOptions(enabled=True),
        validate_token_resource=True,  # every token of ours is for this resource (`SignedInToken.resource`)
    )
    provider = OpenRouterSignIn(settings, open_accounts(settings), sealer, issuer=str(auth.issuer_url), resource=public)
    logging.getLogger("mcp.server.auth.handlers.authorize").addFilter(said_by_store_away)
    return provider, auth


def build_http(settings: Settings) -> tuple[ResearchServer, Drain]:
    """The MCP server and its ASGI app (with `/healthz` and `/readyz`) inside the drain."""
    check_bind(settings)
    _metrics.enable()
    if settings.mcp_auth == "openrouter":  # each user signs in with OpenRouter, and is billed to their account
        provider, signed = signing_in(settings, public_url(settings))
        server = build_server(
            settings,
            callers=signed_in_callers(provider),
            auth=signed,
            auth_server_provider=provider,
            on_ready=[provider.check_secret],
        )
        for path, methods, handler in signin_routes(provider):
            server.custom_route(path, methods=methods)(handler)
    else:
        verifier, auth = _authentication(settings)
        server = build_server(settings, callers=http_caller, auth=auth, token_verifier=verifier)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_request: Request) -> Response:
        shared = server.shared
        problems: list[str] = []
        if shared is None:
            problems.append("the server is still starting")
        else:
            if not shared.store.durable:
                problems.append(f"the job store is in memory ({shared.store.description})")
            try:
                await shared.catalog.get()
            except OpenRouterError as exc:
                problems.append(f"the model catalog is not available ({exc.message})")
        status = 200 if not problems else 503
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=status)

    security = transport_security(settings)
    port = settings.mcp_port
    local_hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}  # /metrics: this machine's names only

    async def metrics(request: Request) -> Response:
        if _relayed_or_remote(request):  # counts by tool and model are the operator's, not the callers'
            return PlainTextResponse("Not Found", status_code=404)
        # Not the public URL's host: a proxy on this machine that adds no forwarding header would relay it. And not
        # a web page's script on a name rebound to 127.0.0.1, reading it locally.
        if request.headers.get("host") not in local_hosts:
            return PlainTextResponse("Invalid Host header", status_code=421)
        shared = server.shared
        live = shared.jobs.live.values() if shared is not None else ()
        _metrics.watch_jobs(lambda: collections.Counter(handle.record.kind for handle in live))
        return Response(_metrics.render(), media_type=_metrics.CONTENT_TYPE)

    server.custom_route("/healthz", methods=["GET"])(healthz)
    server.custom_route("/readyz", methods=["GET"])(readyz)
    server.custom_route("/metrics", methods=["GET"])(metrics)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        # Replicas behind a round-robin balancer: a classic session's requests land on any replica, so none is
        # kept (the SDK's stateless mode); the 2026-07-28 generation is stateless by itself.
        stateless_http=settings.database is not None,
        transport_security=security,
        max_request_body_size=int(settings.mcp_max_body_mb * 1024 * 1024),
        host=settings.mcp_host,
    )
    if settings.database is None:  # (stateless: no sessions to cap)
        capped = cap_sessions(app, MCP_PATH, server.session_manager, settings.mcp_sessions_per_caller)
        if not capped and settings.mcp_auth != "none":
            log.warning(
                "The classic sessions per caller are not capped (OPENROUTER_MCP_SESSIONS_PER_CALLER): this release "
                "of the mcp SDK no longer wraps %s in its authentication as remote/sessions.py expects, so one "
                "caller could hold every session. Report it with the SDK's version.",
                MCP_PATH,
            )
    app.add_exception_handler(StoreUnavailable, store_away)
    if settings.mcp_auth == "openrouter":  # /register and /authorize are open to all: bounded per address
        return server, Drain(AuthFailures(SignInThrottle(app)))
    return server, Drain(AuthFailures(app))


STORE_AWAY = "This server cannot reach its database just now; try again in a minute."


async def store_away(_request: Request, exc: Exception) -> Response:
    """A route that needs the database while it is away (the OAuth endpoints' `/token`, `/register`, `/revoke`
    with `OPENROUTER_MCP_AUTH=openrouter`): a 503 a client retries, in OAuth's error shape, not a bare 500."""
    log.warning("%s A request was answered 503.", getattr(exc, "message", exc))
    return JSONResponse(
        {"error": "temporarily_unavailable", "error_description": STORE_AWAY},
        status_code=503,
        headers={"Retry-After": "60", "Cache-Control": "no-store"},
    )


def said_by_store_away(record: logging.LogRecord) -> bool:
    """A log filter: the SDK's `/authorize` logs whatever it did not expect with its traceback, then asks for the
    client again, which raises again and reaches `store_away`; a database away is said there, once, as a warning."""
    return not (record.exc_info and isinstance(record.exc_info[1], StoreUnavailable))


def more_files() -> None:
    """Raise this process's open-files limit to the most it may have: every connection is a file, and the usual
    soft limit (1,024) is reached by a thousand idle connections, which would lock everyone else out."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        most = hard if hard != resource.RLIM_INFINITY else 1 << 20
        if soft != resource.RLIM_INFINITY and soft < most:
            resource.setrlimit(resource.RLIMIT_NOFILE, (most, hard))
    except (ImportError, ValueError, OSError) as exc:  # Windows, or a limit this process may not change
        log.info("the open-files limit stays as it is (%s)", exc)


def serve_http(settings: Settings) -> None:
    """Serve until a stop signal, then drain (see the module docstring)."""
    more_files()
    server, drain = build_http(settings)
    config = uvicorn.Config(
        drain,
        host=settings.mcp_host,
        port=settings.mcp_port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=IDLE_S,
        http=bounds.protocol(),  # headers and bodies that trickle in are cut off
        timeout_graceful_shutdown=5,
        server_header=False,
        lifespan="on",
    )
    runner = DrainingServer(config, drain, settings.mcp_drain_s, server.shutting_down)
    log.info("serving MCP over HTTP at %s (auth: %s)", public_url(settings), settings.mcp_auth)
    runner.run()
