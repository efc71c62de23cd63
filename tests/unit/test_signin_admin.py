"""`openrouter-research-mcp signin list|end`: an operator sees who is signed in with OpenRouter and ends one
person's sign-ins at once, on SQLite and PostgreSQL, as a command beside the running server (`tokens_cli.py`)."""

from __future__ import annotations

import subprocess
import sys
import time

from ..fakes.openrouter import FakeOpenRouter
from ..support import cli_env
from . import test_federation as federation
from .test_federation import World

world = federation.world  # its fixture: a provider on SQLite, then on PostgreSQL


def signin(world: World, fake: FakeOpenRouter, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(fake, world.path.parent.parent, OPENROUTER_DATABASE_URL=world.url or "")
    return subprocess.run(
        [sys.executable, "-m", "openrouter_research_mcp", "signin", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


async def test_signin_list_and_end_one_person_everywhere(world: World, fake_openrouter: FakeOpenRouter) -> None:
    world.clock.now = time.time()  # the command judges what is live by the wall clock
    assert "Nobody is signed in" in signin(world, fake_openrouter, "list").stdout
    client = await world.client()
    first, key = await world.sign_in(client)
    user = fake_openrouter.signin.keys[key].user_id
    other, _ = await world.sign_in()
    listed = signin(world, fake_openrouter, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    principals = {line.split("\t")[0] for line in lines}
    assert f"openrouter:{user}" in principals and len(lines) == len(principals)
    assert key not in listed.stdout + listed.stderr and first.access_token not in listed.stdout

    ended = signin(world, fake_openrouter, "end", user)  # the bare user id will do
    assert ended.returncode == 0, ended.stderr
    assert "openrouter:" + user in ended.stderr and "openrouter.ai/settings/keys" in ended.stderr
    replica = world.replica()  # another server on the same database: refused there too, at once
    try:
        assert await replica.provider.load_access_token(first.access_token) is None
        assert await world.provider.load_access_token(first.access_token) is None
        assert first.refresh_token and await world.provider.load_refresh_token(client, first.refresh_token) is None
        assert await world.provider.load_access_token(other.access_token) is not None  # nobody else is affected
    finally:
        replica.accounts.close()
    assert f"openrouter:{user}" not in signin(world, fake_openrouter, "list").stdout
    gone = signin(world, fake_openrouter, "end", f"openrouter:{user}")
    assert gone.returncode == 1 and "is not signed in (see `signin list`)" in gone.stderr
