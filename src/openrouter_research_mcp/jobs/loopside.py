"""Statements the event loop runs itself on a SQLite file, when they need not wait.

A handoff to a database's thread and back costs the server about 0.1 ms of CPU (two thread wake-ups; measured on
2 cores, where a whole `ask` is allowed 1.5 ms), while a look-up by primary key in a WAL database takes about
3 µs and a one-row upsert about 10 µs (both measured here). So the per-call statements (a bearer token's look-up,
a usage-ledger line)
are first tried here, on a connection of the event loop's own whose busy timeout is 0: a statement that would
have to wait for a lock fails at once instead, and then (as on any other failure: the file not made yet, damaged,
full) the caller hands it to the database's thread as before, whose error handling speaks. Readers never wait for
writers in WAL mode; a write waits only for another writer, and then goes to the thread.

A write here never checkpoints (`wal_autocheckpoint` 0: a checkpoint syncs the file, which is slow work): the store
asks its thread for a passive checkpoint every `CHECKPOINT_EVERY` commits made here.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["CHECKPOINT_EVERY", "WOULD_WAIT", "LoopSide"]

CHECKPOINT_EVERY = 500  # commits made on the loop between two checkpoints on the thread (WAL pages of ~4 KiB)
WOULD_WAIT: Any = object()  # `LoopSide.run` could not answer without waiting (or at all)

T = TypeVar("T")


class LoopSide:
    """The event loop's connection to one SQLite file: read-only, or taking one write transaction per `run`."""

    def __init__(self, path: Path, *, writes: bool = False) -> None:
        self.path, self.writes = path, writes
        self.commits = 0
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection | None:
        if not self.path.exists():  # made (and migrated) by the database's thread, never here
            return None
        db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        if self.writes:
            db.execute("PRAGMA synchronous = NORMAL")  # as the thread's connection: no sync per commit in WAL
            db.execute("PRAGMA wal_autocheckpoint = 0")
        else:
            db.execute("PRAGMA query_only = 1")
        return db

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn`'s result (in a write transaction, committed, when `writes`), or `WOULD_WAIT` (nothing written)."""
        try:
            db = self._db = self._db or self._open()
            if db is None:
                return WOULD_WAIT  # type: ignore[no-any-return]
            if not self.writes:
                return fn(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(db)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                raise
            self.commits += 1
            return out
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                self.close()  # broken, not busy: opened again next time
            return WOULD_WAIT  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
