"""What a team server that signs its users in with OpenRouter (`OPENROUTER_MCP_AUTH=openrouter`,
`remote/federation.py`) keeps, in the accounts database (`accounts.py`: the SQLite file, or PostgreSQL for
replicas), so every process and replica sees the same sign-ins and a revocation takes effect everywhere at once:

- `signin_clients`: the MCP clients registered (RFC 7591 dynamic registration), their metadata as JSON;
- `signin_pending`: sign-ins in progress, from our `/authorize` to OpenRouter's callback, by the hash of their
  flow id, with the client's PKCE challenge, redirect URI and state, our own PKCE verifier for OpenRouter (sealed),
  and the hash of the browser cookie that binds them, until `expires`;
- `signin_grants`: one per finished sign-in: the principal, the client, and the user's OpenRouter key, sealed (the
  server never stores it in the clear); it lives until its last refresh token expires;
- `signin_codes` and `signin_tokens`: our authorization codes, access and refresh tokens, by their SHA-256 hash only;
  a code or refresh token is marked `used` rather than deleted, so a replay is recognised (and ends the grant).

A SQLite file that cannot be used just now (locked past its busy timeout, read-only, its folder unwritable, the
disk full) is `StoreUnavailable`, as a PostgreSQL that is away is, so the OAuth endpoints answer it as an outage and
not as a bug. Times are the injected clock's (`Accounts.clock`). Rows past their time are deleted when a sign-in
starts. Nothing here seals, opens or logs a secret: the callers pass sealed values and hashes in, and get them back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .accounts import Accounts, Db, hash_token
from .store import StoreUnavailable

__all__ = ["SIGNIN_SCHEMA", "Access", "Code", "Grant", "Pending", "Refresh", "SignIns", "SignedIn"]

# The tables in SQLite, made with the accounts' own (`accounts.py`); on PostgreSQL they are the job store's
# migration 3 (`postgres.MIGRATIONS`), the same tables in its types.
SIGNIN_SCHEMA = """
CREATE TABLE IF NOT EXISTS signin_clients (
    client_id TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS signin_pending (
    flow_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_explicit INTEGER NOT NULL,
    code_challenge TEXT NOT NULL,
    state TEXT,
    scopes TEXT,
    resource TEXT,
    verifier TEXT NOT NULL,
    expires REAL NOT NULL,
    browser TEXT
);
CREATE TABLE IF NOT EXISTS signin_grants (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT,
    resource TEXT,
    sealed_key TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS signin_grants_principal ON signin_grants (principal);
CREATE TABLE IF NOT EXISTS signin_codes (
    id_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_explicit INTEGER NOT NULL,
    code_challenge TEXT NOT NULL,
    expires REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS signin_codes_grant ON signin_codes (grant_id);
CREATE TABLE IF NOT EXISTS signin_tokens (
    id_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    expires REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS signin_tokens_grant ON signin_tokens (grant_id);
"""


@dataclass(frozen=True)
class Pending:
    """A sign-in in progress (see the module docstring)."""

    flow_hash: str
    client_id: str
    redirect_uri: str
    redirect_explicit: bool
    code_challenge: str
    state: str | None
    scopes: str | None
    resource: str | None
    verifier: str  # sealed
    expires: float
    browser: str | None = None  # the hash of the cookie that binds it to one browser, once bound


@dataclass(frozen=True)
class Grant:
    """A finished sign-in: whose it is, and their OpenRouter key (sealed)."""

    id: str
    principal: str
    client_id: str
    scopes: str | None
    resource: str | None
    sealed_key: str
    expires: float


@dataclass(frozen=True)
class Code:
    id_hash: str
    grant_id: str
    client_id: str
    redirect_uri: str
    redirect_explicit: bool
    code_challenge: str
    scopes: str | None
    resource: str | None
    expires: float
    used: bool


@dataclass(frozen=True)
class Refresh:
    id_hash: str
    grant_id: str
    client_id: str
    scopes: str | None
    resource: str | None
    expires: float
    used: bool
    sealed_key: str  # the grant's: a refresh is refused when it no longer opens


@dataclass(frozen=True)
class Access:
    """A live access token's grant, with the quotas set for its principal (`quota set`), if any."""

    grant: Grant
    expires: float
    quotas: tuple[float | None, float | None, int | None, int | None] | None


@dataclass(frozen=True)
class SignedIn:
    """One person's live sign-ins (`signin list`): how many, the first and the last, and when the last one ends."""

    principal: str
    grants: int
    first: float
    last: float
    expires: float


T = TypeVar("T")

_PENDING = (
    "flow_hash, client_id, redirect_uri, redirect_explicit, code_challenge, state, scopes, resource, verifier, "
    "expires, browser"
)
_GRANT = "g.id, g.principal, g.client_id, g.scopes, g.resource, g.sealed_key, g.expires"


def _pending(row: Any) -> Pending:
    return Pending(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6], row[7], row[8], row[9], row[10])


def _grant(row: Any) -> Grant:
    return Grant(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


class SignIns:
    """The sign-in tables of one accounts database (see the module docstring)."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    @property
    def now(self) -> float:
        return self.accounts.clock()

    async def _run(self, fn: Callable[[Db], T], *, write: bool = True) -> T:
        try:
            return await self.accounts.run(fn, write=write)
        except (sqlite3.OperationalError, OSError) as exc:  # PostgreSQL's are StoreUnavailable already
            raise StoreUnavailable(
                f"The accounts database ({self.accounts.path}) cannot be used just now "
                f"({str(exc).strip() or type(exc).__name__}): sign-ins cannot be checked or kept. Try again in a "
                "moment; if it lasts, check that the file and its folder are writable and that no other process "
                "holds it locked."
            ) from exc

    # ---------------------------------------------------------------------------------------------- clients

    async def save_client(self, client_id: str, info: str, *, most_unused: int) -> None:
        """Keep a newly registered client; beyond `most_unused` clients with no sign-in (none finished, none in
        progress), the oldest such are forgotten, so registrations alone cannot grow the database without end."""

        def save(db: Db) -> None:
            db.execute(
                "INSERT INTO signin_clients (client_id, info, created) VALUES (?, ?, ?)", (client_id, info, self.now)
            )
            unused = (
                "FROM signin_clients c WHERE NOT EXISTS (SELECT 1 FROM signin_grants g WHERE g.client_id = c.client_id)"
                " AND NOT EXISTS (SELECT 1 FROM signin_pending p WHERE p.client_id = c.client_id)"
            )
            over = int(db.execute(f"SELECT COUNT(*) {unused}").fetchone()[0]) - most_unused
            if over > 0:
                oldest = [r[0] for r in db.execute(f"SELECT c.client_id {unused} ORDER BY c.created LIMIT ?", (over,))]
                for old in oldest:
                    db.execute("DELETE FROM signin_clients WHERE client_id = ?", (old,))

        await self._run(save)

    async def reseal_client(self, client_id: str, info: str) -> None:
        await self._run(
            lambda db: db.execute("UPDATE signin_clients SET info = ? WHERE client_id = ?", (info, client_id))
        )

    async def client(self, client_id: str) -> str | None:
        row = await self._run(
            lambda db: db.execute("SELECT info FROM signin_clients WHERE client_id = ?", (client_id,)).fetchone(),
            write=False,
        )
        return str(row[0]) if row else None

    # --------------------------------------------------------------------------------------------- pending

    async def add_pending(self, pending: Pending, *, most: int) -> bool:
        """Keep a new sign-in in progress, and delete every row whose time has passed; False (nothing kept) when
        `most` sign-ins are in progress already."""

        def add(db: Db) -> bool:
            now = self.now
            db.execute("DELETE FROM signin_pending WHERE expires < ?", (now,))
            db.execute("DELETE FROM signin_codes WHERE expires < ?", (now,))
            db.execute("DELETE FROM signin_tokens WHERE expires < ?", (now,))
            for table in ("signin_codes", "signin_tokens"):
                db.execute(
                    f"DELETE FROM {table} WHERE grant_id IN (SELECT id FROM signin_grants WHERE expires < ?)", (now,)
                )
            db.execute("DELETE FROM signin_grants WHERE expires < ?", (now,))
            if int(db.execute("SELECT COUNT(*) FROM signin_pending").fetchone()[0]) >= most:
                return False
            p = pending
            db.execute(
                f"INSERT INTO signin_pending ({_PENDING}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    p.flow_hash, p.client_id, p.redirect_uri, int(p.redirect_explicit), p.code_challenge, p.state,
                    p.scopes, p.resource, p.verifier, p.expires, p.browser,
                ),
            )  # fmt: skip
            return True

        return await self._run(add)

    async def pending(self, flow: str) -> Pending | None:
        """The live sign-in in progress with this flow id."""
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_PENDING} FROM signin_pending WHERE flow_hash = ? AND expires >= ?",
                (hash_token(flow), self.now),
            ).fetchone(),
            write=False,
        )
        return _pending(row) if row else None

    async def bind(self, flow: str, browser: str) -> Pending | None:
        """Bind the live sign-in `flow` to the browser whose cookie is `browser`, once: None when it is unknown,
        past its time, or bound already (to this browser or another)."""

        def bind(db: Db) -> Pending | None:
            row = db.execute(
                f"UPDATE signin_pending SET browser = ? WHERE flow_hash = ? AND browser IS NULL AND expires >= ? "
                f"RETURNING {_PENDING}",
                (hash_token(browser), hash_token(flow), self.now),
            ).fetchone()
            return _pending(row) if row else None

        return await self._run(bind)

    async def take(self, flow: str, browser: str) -> Pending | None:
        """Remove and return the live sign-in `flow` if the browser cookie `browser` is the one bound to it: each
        sign-in in progress is finished (or abandoned) at most once."""

        def take(db: Db) -> Pending | None:
            row = db.execute(
                f"DELETE FROM signin_pending WHERE flow_hash = ? AND browser = ? AND expires >= ? RETURNING {_PENDING}",
                (hash_token(flow), hash_token(browser), self.now),
            ).fetchone()
            return _pending(row) if row else None

        return await self._run(take)

    # ---------------------------------------------------------------------------------------- grants, codes

    async def add_grant(self, grant: Grant, code: str, pending: Pending, code_expires: float) -> None:
        """Keep a finished sign-in and the authorization code that hands it to the client."""

        def add(db: Db) -> None:
            g = grant
            db.execute(
                "INSERT INTO signin_grants (id, principal, client_id, scopes, resource, sealed_key, created, expires) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (g.id, g.principal, g.client_id, g.scopes, g.resource, g.sealed_key, self.now, g.expires),
            )
            db.execute(
                "INSERT INTO signin_codes (id_hash, grant_id, redirect_uri, redirect_explicit, code_challenge, "
                "expires, used) VALUES (?, ?, ?, ?, ?, ?, 0)",
                (hash_token(code), g.id, pending.redirect_uri, int(pending.redirect_explicit),
                 pending.code_challenge, code_expires),
            )  # fmt: skip

        await self._run(add)

    async def code(self, code: str) -> Code | None:
        """The authorization code (used or not) and its grant; None when unknown or its grant has ended."""
        row = await self._run(
            lambda db: db.execute(
                "SELECT c.id_hash, c.grant_id, g.client_id, c.redirect_uri, c.redirect_explicit, c.code_challenge, "
                "g.scopes, g.resource, c.expires, c.used FROM signin_codes c JOIN signin_grants g ON g.id = c.grant_id "
                "WHERE c.id_hash = ?",
                (hash_token(code),),
            ).fetchone(),
            write=False,
        )
        if row is None:
            return None
        return Code(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7], row[8], bool(row[9]))

    async def grant(self, grant_id: str) -> Grant | None:
        row = await self._run(
            lambda db: db.execute(f"SELECT {_GRANT} FROM signin_grants g WHERE g.id = ?", (grant_id,)).fetchone(),
            write=False,
        )
        return _grant(row) if row else None

    # ---------------------------------------------------------------------------------------------- tokens

    async def issue(
        self,
        grant_id: str,
        *,
        spent: tuple[str, str],  # ("code" | "refresh", its hash): used up by this issue, or nothing is issued
        access: tuple[str, float],
        refresh: tuple[str, float],
    ) -> bool:
        """Use up a code or refresh token and issue the grant's new access and refresh tokens (the grant's other
        access tokens end: one live access token per grant), in one transaction; False when it was used already
        (two requests raced with one code or refresh token: only one wins)."""

        def issue(db: Db) -> bool:
            table = "signin_codes" if spent[0] == "code" else "signin_tokens"
            won = db.execute(
                f"UPDATE {table} SET used = 1 WHERE id_hash = ? AND grant_id = ? AND used = 0", (spent[1], grant_id)
            ).rowcount
            if not won:
                return False
            db.execute("DELETE FROM signin_tokens WHERE grant_id = ? AND kind = 'access'", (grant_id,))
            for kind, (digest, expires) in (("access", access), ("refresh", refresh)):
                db.execute(
                    "INSERT INTO signin_tokens (id_hash, grant_id, kind, expires, used) VALUES (?, ?, ?, ?, 0)",
                    (digest, grant_id, kind, expires),
                )
            db.execute(
                "UPDATE signin_grants SET expires = ? WHERE id = ? AND expires < ?", (refresh[1], grant_id, refresh[1])
            )
            return True

        return await self._run(issue)

    async def access(self, token: str) -> Access | None:
        """The grant of a live access token (looked up by hash on every request, so an ended grant is refused at
        once), and its principal's quotas; None when unknown or past its time."""

        def read(db: Db) -> Access | None:
            row = db.execute(
                f"SELECT {_GRANT}, t.expires, s.usd_per_day, s.usd_per_month, s.calls_per_minute, s.jobs, "
                "s.principal FROM signin_tokens t JOIN signin_grants g ON g.id = t.grant_id "
                "LEFT JOIN subjects s ON s.principal = g.principal "
                "WHERE t.id_hash = ? AND t.kind = 'access' AND t.expires >= ?",
                (hash_token(token), self.now),
            ).fetchone()
            if row is None:
                return None
            quotas = (row[8], row[9], row[10], row[11]) if row[12] is not None else None
            return Access(_grant(row[:7]), row[7], quotas)

        return await self._run(read, write=False)

    async def refresh(self, token: str) -> Refresh | None:
        """A refresh token (used or not) and its grant; None when unknown or its grant has ended."""
        row = await self._run(
            lambda db: db.execute(
                "SELECT t.id_hash, t.grant_id, g.client_id, g.scopes, g.resource, t.expires, t.used, g.sealed_key "
                "FROM signin_tokens t JOIN signin_grants g ON g.id = t.grant_id "
                "WHERE t.id_hash = ? AND t.kind = 'refresh'",
                (hash_token(token),),
            ).fetchone(),
            write=False,
        )
        if row is None:
            return None
        return Refresh(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7])

    async def reseal(self, grant_id: str, sealed_key: str) -> None:
        await self._run(
            lambda db: db.execute("UPDATE signin_grants SET sealed_key = ? WHERE id = ?", (sealed_key, grant_id))
        )

    # ------------------------------------------------------------------------------------------------- end

    async def end(self, grant_id: str) -> bool:
        """End a grant: its stored key, codes and tokens are deleted, in one transaction."""

        def end(db: Db) -> bool:
            db.execute("DELETE FROM signin_tokens WHERE grant_id = ?", (grant_id,))
            db.execute("DELETE FROM signin_codes WHERE grant_id = ?", (grant_id,))
            return bool(db.execute("DELETE FROM signin_grants WHERE id = ?", (grant_id,)).rowcount)

        return await self._run(end)

    async def end_principal(self, principal: str) -> int:
        """End every grant of one person (their stored keys with them); how many there were."""

        def end(db: Db) -> int:
            ids = [r[0] for r in db.execute("SELECT id FROM signin_grants WHERE principal = ?", (principal,))]
            for grant_id in ids:
                db.execute("DELETE FROM signin_tokens WHERE grant_id = ?", (grant_id,))
                db.execute("DELETE FROM signin_codes WHERE grant_id = ?", (grant_id,))
                db.execute("DELETE FROM signin_grants WHERE id = ?", (grant_id,))
            return len(ids)

        return await self._run(end)

    async def people(self) -> list[SignedIn]:
        """Everyone signed in now, by principal."""

        def read(db: Db) -> list[SignedIn]:
            rows = db.execute(
                "SELECT principal, COUNT(*), MIN(created), MAX(created), MAX(expires) FROM signin_grants "
                "WHERE expires >= ? GROUP BY principal ORDER BY principal",
                (self.now,),
            )
            return [SignedIn(r[0], int(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows]

        return await self._run(read)

    async def sealed_sample(self, most: int) -> list[tuple[str, str]]:
        """The newest `most` sealed keys and `most` sealed client registrations, each with the row it is bound to."""

        def read(db: Db) -> list[tuple[str, str]]:
            grants = db.execute("SELECT id, sealed_key FROM signin_grants ORDER BY created DESC LIMIT ?", (most,))
            sample = [(str(r[0]), str(r[1])) for r in grants]
            clients = db.execute("SELECT client_id, info FROM signin_clients ORDER BY created DESC LIMIT ?", (most,))
            return sample + [(str(r[0]), str(r[1])) for r in clients]

        return await self._run(read, write=False)
