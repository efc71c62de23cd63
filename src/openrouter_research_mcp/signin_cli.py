"""`openrouter-research-mcp login` and `logout`: sign in with OpenRouter (OAuth with PKCE), no key to paste.

`login` opens the browser at OpenRouter's authorization page and waits on a one-shot loopback listener
(`http://127.0.0.1:PORT/callback/STATE`, a free port) for the browser's return with the code. `STATE` is a fresh
random secret in the callback's path: OpenRouter sends the browser back to `callback_url?code=CODE`, and a path,
unlike a query of our own, cannot clash with the `code` it appends. A request to any other path, or with another
state, gets an error page and does not end the wait, so neither a stray local request nor a web page that guesses
the port can end or steer the sign-in (and PKCE means a code obtained elsewhere would be refused anyway); the
listener stops after the one good request, or at the time limit (`--wait`). `--headless` (over SSH, say) prints the
address instead and reads the code the page shows from the terminal, or from standard input when that is not a
terminal. The code (with the verifier that only this process knows) is exchanged for a key, which `keystore` keeps.
Everything goes to stderr: stdout stays empty, and no key or code is ever written anywhere but the store.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._constants import DEFAULT_CONNECT_TIMEOUT, KEYS_URL
from ._version import __version__
from .config import Settings
from .errors import OpenRouterError
from .keystore import delete_key, save_key
from .openrouter.signin import auth_page_url, authorization_url, code_challenge, exchange_code, new_verifier

__all__ = ["LoopbackCallback", "SignInError", "read_code", "run_login", "run_logout"]

REQUEST_TIMEOUT = 10.0  # seconds one connection to the listener may take to send its request
PROG = "openrouter-research-mcp"


class SignInError(Exception):
    """The sign-in did not finish; the message says why and what to do."""


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _page(title: str, text: str) -> bytes:
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<body style='font-family:sans-serif;max-width:40em;margin:4em auto'><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></body>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Listener
    timeout = REQUEST_TIMEOUT  # a connection that never sends its request (a browser's preconnect) ends in time

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - the URL holds the code: never logged
        return

    def _reply(self, status: int, title: str, text: str) -> None:
        body = _page(title, text)
        self.send_response(status)
        for name, value in (
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
        ):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items() if values}
        state = url.path.removeprefix("/callback/") if url.path.startswith("/callback/") else ""
        if not secrets.compare_digest(state.encode(), self.server.state.encode()):
            self.server.turn_away()
            return self._reply(
                400,
                "Not this sign-in",
                f"This address does not belong to the sign-in in progress. Run `{PROG} login` again if you need to.",
            )
        # The page goes out before the outcome is settled: once it is, the process may finish and exit.
        if self.server.done.is_set():
            return self._reply(409, "Already done", "This sign-in has finished; the terminal says how it went.")
        # Settled even when the page cannot go out: a browser that hung up (the tab closed) still brought the code.
        if query.get("code"):
            try:
                self._reply(200, "Signed in", "You can close this tab and go back to the terminal.")
                self.wfile.flush()
            finally:
                self.server.finish(code=query["code"])
            return None
        if query.get("error"):
            # Shown in the terminal: no control characters (escape sequences) from an address.
            declined = "".join(c for c in query["error"] if c.isprintable())[:100] or "no reason given"
            try:
                self._reply(400, "Sign-in cancelled", f"OpenRouter said: {declined}. Nothing was stored.")
                self.wfile.flush()
            finally:
                self.server.finish(declined=declined)
            return None
        self.server.turn_away()
        return self._reply(400, "No code", "The address carries no sign-in code; the terminal is still waiting.")

    def do_POST(self) -> None:
        self.server.turn_away()
        self._reply(405, "Not allowed", "The sign-in listener only takes the browser's return (GET).")


class _Listener(ThreadingHTTPServer):
    """Each connection on its own thread, so one that stalls (a preconnect) cannot hold up the browser's return;
    the first request with the state and a code (or an error) settles the outcome and sets `done`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.state = secrets.token_urlsafe(24)
        self.done = threading.Event()
        self.code: str | None = None
        self.declined: str | None = None
        self.refused = 0  # requests turned away (another path or state, no code, not a GET)
        self._lock = threading.Lock()

    def finish(self, *, code: str | None = None, declined: str | None = None) -> bool:
        """Settle the outcome, once: False when it was settled already."""
        with self._lock:
            if self.done.is_set():
                return False
            self.code, self.declined = code, declined
            self.done.set()
            return True

    def turn_away(self) -> None:
        with self._lock:
            self.refused += 1

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002 - a client that hangs up
        return


class LoopbackCallback:
    """The one-shot listener on 127.0.0.1 that the browser comes back to; a context manager that closes it."""

    def __init__(self, port: int = 0) -> None:
        try:
            self._server = _Listener(("127.0.0.1", port))
        except OSError as exc:
            which = f"port {port}" if port else "a free port"
            raise SignInError(
                f"Could not listen on 127.0.0.1 ({which}) for the browser's return: {exc.strerror or exc}. "
                f"Pick another with `{PROG} login --port N`, or sign in with `{PROG} login --headless`."
            ) from None

    @property
    def callback_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/callback/{self._server.state}"

    @property
    def refused(self) -> int:
        """How many requests were turned away so far."""
        return self._server.refused

    def wait(self, seconds: float) -> str:
        """Serve until the browser comes back with a code (returned); SignInError at the time limit, or when the
        user declined on the page. The listener stops taking requests before this returns."""
        server = self._server
        serving = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="login-callback", daemon=True
        )
        serving.start()
        try:
            arrived = server.done.wait(seconds)
        finally:
            server.shutdown()
            serving.join()
        if not arrived:
            raise SignInError(
                f"No answer from the browser within {seconds:g} s, so nothing was stored. Run `{PROG} login` "
                f"again (`--wait SECONDS` gives more time), or `{PROG} login --headless` to paste the code."
            )
        if server.code is None:
            raise SignInError(
                f"The sign-in was cancelled on OpenRouter's page ({server.declined}); nothing was stored. Run "
                f"`{PROG} login` again to retry."
            )
        return server.code

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> LoopbackCallback:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_code(stream: Any, prompt: Callable[[], None]) -> str:
    """One code from `stream` (the page's code, or the whole address it was sent to, `...?code=CODE`)."""
    prompt()
    try:  # no stdin at all (`<&-`), a closed one, or bytes that are not text: no code either
        line = stream.readline() if stream is not None else ""
    except (OSError, ValueError):
        line = ""
    text = line.strip() if isinstance(line, str) else ""
    if "code=" in text:  # the address, or just its `code=...`
        text = (parse_qs(urlsplit(text).query or text).get("code") or [""])[0].strip()
    if not text:
        raise SignInError(f"No code was entered, so nothing was stored. Run `{PROG} login --headless` again.")
    return text


def _open_in_background(url: str, opener: Callable[[str], bool]) -> None:
    """Open the browser on a thread: a browser command that runs until it is closed (a text browser over SSH, or
    the tests' stand-in) must not keep the listener from answering it."""

    def run() -> None:
        try:
            opened = opener(url)
        except Exception:
            opened = False
        if not opened:
            _say(
                "Could not open a browser: open the address above on this machine, or press Ctrl-C and run "
                f"`{PROG} login --headless`."
            )

    threading.Thread(target=run, name="open-browser", daemon=True).start()


async def _exchange(settings: Settings, code: str, verifier: str) -> str:
    import httpx

    headers = {
        "HTTP-Referer": settings.app_url,
        "X-Title": settings.app_title,
        "User-Agent": f"{PROG}/{__version__}",
    }
    timeout = httpx.Timeout(settings.timeout, connect=min(DEFAULT_CONNECT_TIMEOUT, settings.timeout))
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
        return (await exchange_code(http, settings.base_url, code, verifier)).key


def _code(settings: Settings, args: argparse.Namespace, verifier: str) -> str:
    page = auth_page_url(settings.base_url, settings.auth_url)
    challenge = code_challenge(verifier)
    if args.headless:
        url = authorization_url(page, challenge=challenge, callback_url=None, key_label=args.key_label)
        _say(f"Open this address in a browser (on any device), sign in, and copy the code it shows:\n\n  {url}\n")
        interactive = sys.stdin is not None and sys.stdin.isatty()

        def prompt() -> None:
            if interactive:  # piped in, the code needs no prompt
                sys.stderr.write("Code: ")
                sys.stderr.flush()

        return read_code(sys.stdin, prompt)
    with LoopbackCallback(args.port) as callback:
        url = authorization_url(page, challenge=challenge, callback_url=callback.callback_url, key_label=args.key_label)
        _say(f"Opening your browser to sign in with OpenRouter. If it does not open, visit:\n\n  {url}\n")
        _open_in_background(url, lambda address: webbrowser.open(address, new=2))
        _say(f"Waiting for the browser (up to {args.wait:g} s; Ctrl-C to give up)...")
        return callback.wait(args.wait)


def run_login(settings: Settings, args: argparse.Namespace) -> int:
    """`login [--headless] [--key-label L] [--port N] [--wait S]`: 0 when a key is stored, 1 when the sign-in
    failed (the message says why)."""
    verifier = new_verifier()
    try:
        code = _code(settings, args, verifier)
        key = asyncio.run(_exchange(settings, code, verifier))
    except SignInError as exc:
        _say(f"{PROG}: {exc}")
        return 1
    except OpenRouterError as exc:
        _say(f"{PROG}: {exc.message}")
        return 1
    try:
        saved = save_key(key)
    except OSError as exc:
        _say(
            f"{PROG}: OpenRouter made a key, but it could not be stored ({type(exc).__name__}: {exc.strerror or exc}). "
            f"Delete that key at {KEYS_URL}, fix the problem and sign in again."
        )
        return 1
    if saved.fallback_reason:
        _say(f"Note: {saved.fallback_reason}, so the key went to a file only you can read.")
    where = "the OS keyring" if saved.where == "keyring" else saved.where.removeprefix("file ")
    _say(f"Signed in. The key is stored in {where}.")
    if saved.replaced:
        _say(f"It replaces the key stored before, which still works until you delete it at {KEYS_URL}.")
    if settings.has_api_key:
        _say("Note: OPENROUTER_API_KEY is set (environment or .env) and takes precedence over the stored key.")
    _say(f"The server uses the stored key whenever OPENROUTER_API_KEY is unset. Check it with `{PROG} doctor`.")
    return 0


def run_logout() -> int:
    """`logout`: remove the stored key (keyring and file); 0 unless something could not be removed."""
    removed, failed = delete_key()
    for where in removed:
        _say(f"Removed the stored key from {'the OS keyring' if where == 'keyring' else where.removeprefix('file ')}.")
    for what in failed:
        _say(f"{PROG}: could not remove the key from {what}.")
    if not removed and not failed:
        _say("No stored key was found: nothing to remove.")
    if removed:
        _say(f"The key itself still works on OpenRouter until you delete it at {KEYS_URL}.")
    if os.environ.get("OPENROUTER_API_KEY", "").strip():
        _say("Note: OPENROUTER_API_KEY is still set in the environment; the server goes on using it.")
    return 1 if failed else 0
