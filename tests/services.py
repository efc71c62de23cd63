"""Real services the tests start for themselves, in temporary directories on loopback ports: PostgreSQL (Debian's
`postgresql` package: `initdb` and `pg_ctl`) and nginx. Nothing here is mocked; where a service is not installed,
the tests that need it are skipped with a loud reason (`.ci/run` installs both).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Postgres",
    "nginx",
    "nginx_binary",
    "nginx_config",
    "nginx_site",
    "pg_bindir",
    "postgres",
    "skip_without_nginx",
]

# --------------------------------------------------------------------------------------------------- PostgreSQL

PG_MISSING = "PostgreSQL is not installed: apt-get install -y postgresql (see .ci/run)"


def pg_bindir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: on PATH, else Debian's versioned directory (the newest)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Postgres:
    """One PostgreSQL server in a temporary directory: `url(db)` for a database on it, `stop()`/`start()` to take
    it away and bring it back (same port, same data), `database()` for a new empty database."""

    bindir: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://mcp@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300"
        )
        self._ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def database(self) -> str:
        """A new empty database's URL (each test its own, on the session's one server)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server of its own for the duration (raises `LookupError` when none is installed). As root it
    runs as the `postgres` user, since PostgreSQL refuses to run as root."""
    bindir = pg_bindir()
    if bindir is None:
        raise LookupError(PG_MISSING)
    root = Path(tempfile.mkdtemp(prefix="orm-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise LookupError("PostgreSQL refuses to run as root and there is no `postgres` user") from None
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = Postgres(bindir, root, _free_port(), as_user)
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(server.data),
            "-A",
            "trust",
            "-U",
            "mcp",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],  # fmt: skip
        check=True,
        capture_output=True,
        timeout=120,
    )
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# -------------------------------------------------------------------------------------------------------- nginx

NGINX_MISSING = "nginx is not installed: apt-get install -y nginx (see .ci/run)"
NGINX_UPSTREAM = "replicas"


def nginx_binary() -> str | None:
    """Debian's nginx: on PATH, else /usr/sbin/nginx (not on a normal user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def skip_without_nginx() -> str:
    """The nginx binary, or skip the calling test with the command that installs it."""
    import pytest

    binary = nginx_binary()
    if binary is None:
        pytest.skip(NGINX_MISSING)
    return binary


def nginx_site(upstreams: Sequence[str], listen: str) -> str:
    """The balancer itself: plain round-robin over `upstreams` (`host:port`), one `upstream` and one `server` block.

    The same text is `deploy/nginx.conf` (with the compose replicas) and the README's example, and the tests run it
    inside `nginx_config`, so what is documented is what is tested (`tests/unit/test_deploy_files.py`)."""
    servers = "".join(f"    server {upstream};\n" for upstream in upstreams)
    return (
        "# openrouter-research-mcp replicas behind plain round-robin: no sticky sessions (README: Run it at scale).\n"
        f"upstream {NGINX_UPSTREAM} {{\n"
        f"{servers}"
        "    keepalive 32;\n"
        "    keepalive_timeout 20s;  # under the replicas' 30 s idle close: never reuse a connection they closed\n"
        "}\n"
        "\n"
        "server {\n"
        f"    listen {listen};\n"
        "    client_max_body_size 100m;  # the replicas' own limit (OPENROUTER_MCP_MAX_BODY_MB) answers, with its 413\n"
        "\n"
        "    location / {\n"
        f"        proxy_pass http://{NGINX_UPSTREAM};\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";  # keep-alive to the replicas\n'
        "        proxy_set_header Host $http_host;  # with the port: the replicas check it against the public URL\n"
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_buffering off;  # SSE responses flow event by event\n"
        "        proxy_cache off;\n"
        "        proxy_connect_timeout 2s;  # a dead replica: on to the next one quickly\n"
        "        proxy_read_timeout 1h;  # long tool calls and listening streams\n"
        "        proxy_send_timeout 1h;\n"
        "    }\n"
        "}\n"
    )


def nginx_config(upstreams: Sequence[str], port: int, prefix: Path, *, user: str | None = None) -> str:
    """A whole nginx.conf for a test: `nginx_site` on 127.0.0.1:`port`, every file nginx writes under `prefix`,
    one worker; `user` only as root (whose workers would otherwise be `nobody`, unable to enter the temp dir)."""
    paths = "".join(
        f"    {directive} {prefix / name};\n"
        for directive, name in [
            ("client_body_temp_path", "client_body"),
            ("proxy_temp_path", "proxy"),
            ("fastcgi_temp_path", "fastcgi"),
            ("uwsgi_temp_path", "uwsgi"),
            ("scgi_temp_path", "scgi"),
        ]
    )
    site = textwrap.indent(nginx_site(upstreams, f"127.0.0.1:{port}"), "    ")
    return (
        (f"user {user};\n" if user else "")
        + "worker_processes 1;\n"
        + "worker_rlimit_nofile 8192;\n"
        + "worker_shutdown_timeout 2s;\n"
        + f"pid {prefix / 'nginx.pid'};\n"
        + f"error_log {prefix / 'error.log'} warn;\n"
        + "\n"
        + "events {\n    worker_connections 4096;\n}\n"
        + "\n"
        + "http {\n"
        + f"    access_log {prefix / 'access.log'};\n"
        + paths
        + "\n"
        + site
        + "}\n"
    )


def _nginx_accepting(proc: subprocess.Popen[bytes], port: int, prefix: Path, deadline: float) -> bool:
    """Wait until nginx accepts on `port`; False when it exited (a port taken since we chose it, a bad config)."""
    while proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        if time.monotonic() > deadline:
            raise TimeoutError(f"nginx did not accept on 127.0.0.1:{port} within 10 s:\n{_nginx_logs(prefix)}")
        time.sleep(0.01)
    return False


def _nginx_logs(prefix: Path) -> str:
    return "\n".join(
        (prefix / name).read_text(errors="replace") for name in ("stderr.log", "error.log") if (prefix / name).exists()
    )


def _stop_nginx(proc: subprocess.Popen[bytes]) -> None:
    """SIGQUIT (graceful: connections finish, bounded by worker_shutdown_timeout), then kill the whole group, so no
    worker outlives its master."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def nginx(upstreams: list[str], *, port: int | None = None) -> Iterator[str]:
    """nginx balancing round-robin over `upstreams` (`host:port`), started for the duration in a temporary
    directory; yields its base URL `http://127.0.0.1:PORT`. Raises `LookupError` when nginx is not installed (a test
    calls `skip_without_nginx()` first to be skipped instead)."""
    binary = nginx_binary()
    if binary is None:
        raise LookupError(NGINX_MISSING)
    prefix = Path(tempfile.mkdtemp(prefix="orm-nginx-"))
    user = pwd.getpwuid(0).pw_name if os.geteuid() == 0 else None
    command = [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", "nginx.conf", "-g", "daemon off;"]
    try:
        for _attempt in range(3 if port is None else 1):  # a free port can be taken before nginx binds it
            chosen = port or _free_port()
            (prefix / "nginx.conf").write_text(nginx_config(upstreams, chosen, prefix, user=user))
            with (prefix / "stderr.log").open("wb") as stderr:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                    start_new_session=True,  # its own process group, so stopping it reaches the workers too
                )
            try:
                if _nginx_accepting(proc, chosen, prefix, time.monotonic() + 10):
                    yield f"http://127.0.0.1:{chosen}"
                    return
            finally:
                _stop_nginx(proc)
        raise RuntimeError(f"nginx did not start:\n{_nginx_logs(prefix)}")
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
