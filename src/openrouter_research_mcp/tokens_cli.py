"""`openrouter-research-mcp token add|list|revoke`, `quota set|list|clear` and `signin list|end`: a team server's
callers, in the accounts database.

`token add NAME` prints the new token alone on stdout (so `TOKEN=$(openrouter-research-mcp token add alice)`
captures it) and its quotas on stderr; only its hash is stored. `token list` shows names and quotas, never tokens.
`quota set SUBJECT` gives an OAuth caller (the `sub` of their access tokens) quotas of their own. `signin list`
shows who is signed in with OpenRouter (`OPENROUTER_MCP_AUTH=openrouter`), `signin end USER` ends every sign-in of
one person at once, on every replica, their stored keys deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from ._constants import KEYS_URL
from ._util import usd
from .config import Settings
from .jobs.accounts import OAUTH_PRINCIPAL, Limits, open_accounts
from .jobs.signins import SignIns
from .jobs.store import StoreUnavailable
from .remote.federation import PRINCIPAL as SIGNED_IN

__all__ = ["run_quota_command", "run_signin_command", "run_token_command"]


def _limits_text(limits: Limits) -> str:
    parts = [
        f"{usd(limits.usd_per_day)}/day" if limits.usd_per_day is not None else "",
        f"{usd(limits.usd_per_month)}/month" if limits.usd_per_month is not None else "",
        f"{limits.calls_per_minute} calls/min" if limits.calls_per_minute is not None else "",
        f"{limits.jobs} jobs" if limits.jobs is not None else "",
    ]
    return ", ".join(p for p in parts if p) or "the defaults (OPENROUTER_QUOTA_*)"


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(args.usd_per_day, args.usd_per_month, args.calls_per_minute, args.jobs)


def run_token_command(settings: Settings, args: argparse.Namespace) -> int:
    accounts = open_accounts(settings)
    try:
        if args.token_command == "add":
            limits = _limits(args)
            try:
                token = accounts.add_token(args.name, limits)
            except ValueError as exc:
                sys.stderr.write(f"openrouter-research-mcp: {exc}\n")
                return 2
            sys.stdout.write(token + "\n")
            sys.stderr.write(
                f"Token for {args.name!r} ({_limits_text(limits)}). It is shown only now: give it to its user, who "
                "sends it as `Authorization: Bearer <token>`.\n"
            )
            return 0
        if args.token_command == "list":
            found = accounts.tokens()
            if not found:
                sys.stdout.write("No tokens yet: add one with `openrouter-research-mcp token add NAME`.\n")
            for info in found:
                made = time.strftime("%Y-%m-%d", time.gmtime(info.created))
                sys.stdout.write(f"{info.name}\tadded {made}\t{_limits_text(info.limits)}\n")
            return 0
        if accounts.revoke_token(args.name):
            sys.stderr.write(f"Revoked {args.name!r}: its token stops working at its next request.\n")
            return 0
        sys.stderr.write(f"openrouter-research-mcp: no token is named {args.name!r} (see `token list`).\n")
        return 1
    finally:
        accounts.close()


def run_quota_command(settings: Settings, args: argparse.Namespace) -> int:
    accounts = open_accounts(settings)
    try:
        if args.quota_command == "set":
            principal, limits = OAUTH_PRINCIPAL + args.subject, _limits(args)
            try:
                accounts.set_quota(principal, limits)
            except ValueError as exc:
                sys.stderr.write(f"openrouter-research-mcp: {exc}\n")
                return 2
            sys.stderr.write(f"{principal}: {_limits_text(limits)}, from its next request.\n")
            return 0
        if args.quota_command == "list":
            found = accounts.quotas()
            if not found:
                sys.stdout.write("No subject has quotas of its own: all have the defaults (OPENROUTER_QUOTA_*).\n")
            for principal, limits in found:
                sys.stdout.write(f"{principal}\t{_limits_text(limits)}\n")
            return 0
        if accounts.clear_quota(OAUTH_PRINCIPAL + args.subject):
            sys.stderr.write(f"{OAUTH_PRINCIPAL + args.subject} has the default quotas again.\n")
            return 0
        sys.stderr.write(f"openrouter-research-mcp: {args.subject!r} has no quotas of its own (see `quota list`).\n")
        return 1
    finally:
        accounts.close()


def run_signin_command(settings: Settings, args: argparse.Namespace) -> int:
    accounts = open_accounts(settings)
    signins = SignIns(accounts)
    try:
        if args.signin_command == "list":
            people = asyncio.run(signins.people())
            if not people:
                sys.stdout.write("Nobody is signed in with OpenRouter on this server.\n")
            for person in people:
                first, last, ends = (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t)) for t in (
                    person.first, person.last, person.expires))  # fmt: skip
                shown = f"{person.grants} sign-ins, first {first}, last {last}" if person.grants > 1 else last
                sys.stdout.write(f"{person.principal}\tsigned in {shown}\tuntil {ends}\n")
            return 0
        principal = args.user if args.user.startswith(SIGNED_IN) else SIGNED_IN + args.user
        ended = asyncio.run(signins.end_principal(principal))
        if not ended:
            sys.stderr.write(f"openrouter-research-mcp: {principal} is not signed in (see `signin list`).\n")
            return 1
        sys.stderr.write(
            f"Ended {ended} sign-in{'s' if ended > 1 else ''} of {principal} on every replica: their stored OpenRouter "
            "keys are deleted, their tokens stop working at the next request, and their MCP clients must sign in "
            f"again. The keys stay in their OpenRouter account until they delete them at {KEYS_URL}.\n"
        )
        return 0
    except StoreUnavailable as exc:
        sys.stderr.write(f"openrouter-research-mcp: {exc.message}\n")
        return 1
    finally:
        accounts.close()
