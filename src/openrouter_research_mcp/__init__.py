"""openrouter-research-mcp: the OpenRouter model catalog as MCP research tools."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["__version__", "main"]

SETUP_HINT = "see 'Client setup' in the README"
SERVE_FLAGS = {"mcp_transport": "transport", "mcp_host": "host", "mcp_port": "port"}  # setting -> serve flag


def _money(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of USD (a number, 0 or more)")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (a whole number, 0 or more)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openrouter-research-mcp",
        description="An MCP server that exposes the OpenRouter model catalog as research tools: on stdio for one "
        "person's MCP client (Claude Desktop, Cursor, VS Code, the MCP Inspector), or over Streamable HTTP for a "
        "team (serve --transport http).",
        epilog="Configuration comes from the environment (or the .env file). The one setting you need is "
        "OPENROUTER_API_KEY, your OpenRouter key (https://openrouter.ai/keys), or instead sign in once with "
        "`openrouter-research-mcp login`; every other OPENROUTER_* variable has a default (the README lists them "
        "all). Run `openrouter-research-mcp doctor` to check the setup.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="a .env file that fills in variables missing from the environment (default: ./.env)",
    )
    commands = parser.add_subparsers(dest="command", metavar="{serve,doctor,login,logout,token,quota,signin,migrate}")
    serve = commands.add_parser("serve", help="run the MCP server (the default): stdio, or HTTP for a team")
    serve.add_argument("--transport", choices=("stdio", "http"), help="default: OPENROUTER_MCP_TRANSPORT or stdio")
    serve.add_argument("--host", help="HTTP: the address to bind (default: OPENROUTER_MCP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP: the port (default: OPENROUTER_MCP_PORT or 8000)")
    commands.add_parser("doctor", help="check the configuration, the catalog and the key, and print a report")
    _login_parser(commands)
    token = commands.add_parser("token", help="bearer tokens of a team server (OPENROUTER_MCP_AUTH=tokens)")
    tokens = token.add_subparsers(dest="token_command", metavar="{add,list,revoke}", required=True)
    add = tokens.add_parser("add", help="make a token for NAME and print it once (the token alone on stdout)")
    add.add_argument("name")
    _quota_flags(add, "this token's")
    tokens.add_parser("list", help="list the tokens' names and quotas (never the tokens)")
    revoke = tokens.add_parser("revoke", help="revoke NAME's token; it stops working at the next request")
    revoke.add_argument("name")
    quota = commands.add_parser("quota", help="quotas of OAuth callers (OPENROUTER_MCP_AUTH=oauth), by subject")
    quotas = quota.add_subparsers(dest="quota_command", metavar="{set,list,clear}", required=True)
    set_ = quotas.add_parser("set", help="set the quotas of the caller whose tokens carry `sub` SUBJECT")
    set_.add_argument("subject")
    _quota_flags(set_, "this subject's")
    quotas.add_parser("list", help="list the subjects with quotas of their own")
    clear = quotas.add_parser("clear", help="give SUBJECT the default quotas (OPENROUTER_QUOTA_*) again")
    clear.add_argument("subject")
    signin = commands.add_parser("signin", help="who is signed in with OpenRouter (OPENROUTER_MCP_AUTH=openrouter)")
    signins = signin.add_subparsers(dest="signin_command", metavar="{list,end}", required=True)
    signins.add_parser("list", help="list the people signed in, when, and until when (never a key or token)")
    end = signins.add_parser("end", help="end every sign-in of USER (openrouter:<user id>, or the id) at once")
    end.add_argument("user")
    commands.add_parser("migrate", help="bring the PostgreSQL schema (OPENROUTER_DATABASE_URL) up to date, then exit")
    return parser


def _login_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = commands.add_parser(
        "login",
        help="sign in with OpenRouter in the browser and store the key it makes (OS keyring, else a private file)",
    )
    login.add_argument(
        "--headless",
        action="store_true",
        help="no browser here (SSH): print the address to open elsewhere and read the code it shows from stdin",
    )
    login.add_argument("--key-label", metavar="LABEL", help="the name the new key gets in your OpenRouter settings")
    login.add_argument("--port", type=_port, default=0, help="the loopback port the browser returns to (default: any)")
    login.add_argument("--wait", type=_seconds, default=300.0, help="seconds to wait for the browser (default: 300)")
    commands.add_parser("logout", help="remove the key `login` stored (then delete it on OpenRouter too)")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0 picks a free one)")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a wait in seconds (more than 0, at most 3600)")
    return value


def _quota_flags(parser: argparse.ArgumentParser, whose: str) -> None:
    parser.add_argument("--usd-per-day", type=_money, help=f"{whose} USD quota per UTC day")
    parser.add_argument("--usd-per-month", type=_money, help=f"{whose} USD quota per UTC month")
    parser.add_argument("--calls-per-minute", type=_count, help=f"{whose} tool calls per minute")
    parser.add_argument("--jobs", type=_count, help=f"{whose} research and benchmark jobs running at once")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C before the server's own signal handling starts. A subclass, because CPython 3.11 takes a plain
    KeyboardInterrupt raised inside source run by `exec` (a dataclass being made during start-up, say) as unhandled
    even once it is caught, and then ends the process by SIGINT (exit 130, no traceback) instead of exit 0."""


def _interrupt(_signum: int, _frame: object) -> None:
    raise Interrupted


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, load the configuration once, and serve MCP over stdio (or run `doctor`). Ctrl-C at any
    moment quits quietly: exit 0 for the server (as a person stopping it expects), 130 for `doctor` and `login`."""
    command = "serve"
    ours = threading.current_thread() is threading.main_thread()
    if ours:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        args = _parser().parse_args(argv)
        args.command = args.command or "serve"
        command = args.command
        _run(args)
    except KeyboardInterrupt:  # until the wire takes SIGINT over, Ctrl-C is a KeyboardInterrupt (`Interrupted`)
        if command in ("doctor", "login"):
            raise SystemExit(130) from None
    finally:
        if ours and signal.getsignal(signal.SIGINT) is _interrupt:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _defer_model_builds() -> None:
    """Have every pydantic model made from here on (the SDK's several hundred, and ours) build its validator and
    serializer when first used instead of when its class is made: pydantic's own `defer_build`, the same models
    either way. Most are never used in a session, so start-up is shorter by a fifth (`bench/run.py`, cold start).
    Only the command line does this; importing the package changes nothing."""
    import pydantic

    pydantic.BaseModel.model_config["defer_build"] = True


def _run(args: argparse.Namespace) -> None:
    # Imports that pull in the MCP SDK wait until the arguments are known, so --help and --version are instant.
    _defer_model_builds()
    from ._logging import configure_logging
    from .config import load_settings
    from .errors import ConfigError

    if args.command == "logout":  # needs no configuration, so a broken one cannot keep a key from being removed
        from .signin_cli import run_logout

        raise SystemExit(run_logout())
    overrides = {}
    if args.command == "serve":
        overrides = {name: getattr(args, flag, None) for name, flag in SERVE_FLAGS.items()}
    try:
        settings = load_settings(env_file=args.env_file, **overrides)
    except ConfigError as exc:
        sys.stderr.write(f"openrouter-research-mcp: configuration error: {exc}\n")
        raise SystemExit(2) from None
    if args.command == "login":
        from .signin_cli import run_login

        configure_logging("ERROR", "")
        raise SystemExit(run_login(settings, args))
    key_source = None
    if args.command in ("serve", "doctor"):  # OPENROUTER_API_KEY first, then the key `login` stored
        from .keystore import with_stored_key

        settings, key_source = with_stored_key(settings)
    secret = settings.api_key.get_secret_value() if settings.api_key else ""
    if args.command == "doctor":
        import asyncio

        from .doctor import run_doctor

        configure_logging("ERROR", secret)
        report, ok = asyncio.run(run_doctor(settings, key_source))
        sys.stdout.write(report.replace(secret, "***") if secret else report)
        sys.stdout.write("\n")
        raise SystemExit(0 if ok else 1)
    if args.command == "migrate":
        configure_logging("ERROR", secret)
        raise SystemExit(_migrate(settings))
    if args.command in ("token", "quota", "signin"):
        from .tokens_cli import run_quota_command, run_signin_command, run_token_command

        configure_logging("ERROR", secret)
        run = {"token": run_token_command, "quota": run_quota_command, "signin": run_signin_command}[args.command]
        raise SystemExit(run(settings, args))
    configure_logging(settings.log_level, secret, settings.log_format)
    if settings.mcp_transport == "http":
        from .remote.http import serve_http

        try:
            serve_http(settings)
        except ConfigError as exc:
            sys.stderr.write(f"openrouter-research-mcp: {exc}\n")
            raise SystemExit(2) from None
        return
    from .server import build_server

    server = build_server(settings)
    if os.name == "posix":  # where the wire is ours (wire.py): from here on it takes Ctrl-C and SIGTERM
        from .wire import hold_signals

        hold_signals()
    if sys.stdin.isatty():
        logging.getLogger(__name__).warning(
            "waiting for an MCP client on stdin (press Ctrl-C to quit); this server is meant to be started by one (%s)",
            SETUP_HINT,
        )
    import anyio

    # uvloop, where it installs (Linux, macOS): the same asyncio API at about a tenth less CPU per call.
    anyio.run(server.run_stdio_async, backend_options={"use_uvloop": _has_uvloop()})


def _migrate(settings: Settings) -> int:
    """`migrate`: apply the PostgreSQL migrations not applied yet (every server does at start-up too, under a lock,
    so running this first is for operators who want the schema changed before any replica starts)."""
    if settings.database is None:
        sys.stderr.write(
            "openrouter-research-mcp: nothing to migrate: OPENROUTER_DATABASE_URL is not set (the embedded SQLite "
            "store migrates itself when the server starts).\n"
        )
        return 2
    import psycopg

    from .jobs.postgres import SCHEMA, describe_url, migrate_now

    try:
        applied = migrate_now(settings.database)
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"openrouter-research-mcp: the database at {describe_url(settings.database)}: {text}\n")
        return 1
    done = f"applied migrations {', '.join(map(str, applied))}" if applied else "already up to date"
    sys.stdout.write(f"{describe_url(settings.database)}: schema version {SCHEMA}, {done}\n")
    return 0


def _has_uvloop() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None
