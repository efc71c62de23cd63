"""openrouter-research-mcp: the OpenRouter model catalog as MCP research tools."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["__version__", "main"]

SETUP_HINT = "see 'Client setup' in the README"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openrouter-research-mcp",
        description="An MCP server (stdio) that exposes the OpenRouter model catalog as research tools. "
        "Start it from an MCP client such as Claude Desktop, Cursor, VS Code or the MCP Inspector.",
        epilog="Configuration comes from the environment (or the .env file). The one setting you need is "
        "OPENROUTER_API_KEY, your OpenRouter key (https://openrouter.ai/keys); every other OPENROUTER_* "
        "variable has a default (the README lists them all). Run `openrouter-research-mcp doctor` to check "
        "the setup.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "doctor"),
        default="serve",
        help="serve (default): run the MCP server on stdio; doctor: check the configuration, the "
        "catalog and the key, and print a report",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="a .env file that fills in variables missing from the environment (default: ./.env)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, load the configuration once, and serve MCP over stdio (or run `doctor`). Ctrl-C at any
    moment quits quietly: exit 0 for the server (as a person stopping it expects), 130 for `doctor`."""
    command = "serve"
    try:
        args = _parser().parse_args(argv)
        command = args.command
        _run(args)
    except KeyboardInterrupt:  # until the wire takes SIGINT over, Ctrl-C is Python's KeyboardInterrupt
        if command == "doctor":
            raise SystemExit(130) from None


def _run(args: argparse.Namespace) -> None:
    # Imports that pull in the MCP SDK wait until the arguments are known, so --help and --version are instant.
    from ._logging import configure_logging
    from .config import load_settings
    from .errors import ConfigError

    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigError as exc:
        sys.stderr.write(f"openrouter-research-mcp: configuration error: {exc}\n")
        raise SystemExit(2) from None
    secret = settings.api_key.get_secret_value() if settings.api_key else ""
    if args.command == "doctor":
        import asyncio

        from .doctor import run_doctor

        configure_logging("ERROR", secret)
        report, ok = asyncio.run(run_doctor(settings))
        sys.stdout.write(report.replace(secret, "***") if secret else report)
        sys.stdout.write("\n")
        raise SystemExit(0 if ok else 1)
    configure_logging(settings.log_level, secret)
    from .server import build_server

    server = build_server(settings)
    if sys.stdin.isatty():
        logging.getLogger(__name__).warning(
            "waiting for an MCP client on stdin (press Ctrl-C to quit); this server is meant to be started by one (%s)",
            SETUP_HINT,
        )
    server.run()
