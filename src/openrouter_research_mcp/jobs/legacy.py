"""Work saved by earlier releases, one JSON file per job under `OPENROUTER_DATA_DIR`, imported into the store.

It runs in the background after start-up (reading and parsing on a worker thread), so a data directory with
thousands of saved runs starts as fast as an empty one. A file is moved to `imported/` only once every file of its
folder is in the database; an unreadable one is set aside as `<name>.unreadable` with a warning. Nothing is moved
when the store is not durable (it serves from memory): the files stay the only copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .store import JobRecord, JobStore, StoreError

__all__ = ["BATCH", "LegacyKind", "import_legacy"]

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class LegacyKind:
    """One folder of saved jobs: where, which file names are ids, and how a file becomes a record."""

    folder: str
    ids: re.Pattern[str]
    convert: Callable[[str], JobRecord]  # the file's text -> the record (raises ValueError when unreadable)


def _set_aside(path: Path, why: Exception) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_suffix(".unreadable"))
    log.warning("%s is unreadable (%s); moved to %s", path.name, type(why).__name__, path.with_suffix(".unreadable"))


def _read(folder: Path, kind: LegacyKind) -> tuple[list[JobRecord], list[Path]]:
    records: list[JobRecord] = []
    files: list[Path] = []
    if not folder.is_dir():
        return records, files
    with contextlib.suppress(OSError):
        for path in sorted(folder.glob("*.json")):
            if not kind.ids.fullmatch(path.stem) or not path.is_file():
                continue
            try:
                records.append(kind.convert(path.read_bytes().decode("utf-8")))
            except (UnicodeDecodeError, ValueError) as exc:
                _set_aside(path, exc)
                continue
            except OSError as exc:
                log.warning("could not read %s: %s", path, exc)
                continue
            files.append(path)
    return records, files


def _move(files: Sequence[Path], into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for path in files:
        with contextlib.suppress(OSError):
            os.replace(path, into / path.name)


async def import_legacy(store: JobStore, data_dir: Path, kinds: Sequence[LegacyKind]) -> int:
    """Import every kind's saved files into `store`; returns how many records were new."""
    added = 0
    for kind in kinds:
        folder = data_dir / kind.folder
        records, files = await asyncio.to_thread(_read, folder, kind)
        if not records:
            continue
        try:
            for start in range(0, len(records), BATCH):
                added += await store.import_records(records[start : start + BATCH])
        except StoreError as exc:
            log.warning("saved %s could not be imported (%s); the files stay where they are", kind.folder, exc.message)
            continue
        if store.durable:
            await asyncio.to_thread(_move, files, data_dir / "imported" / kind.folder)
        log.info("%d saved %s imported from %s", len(records), kind.folder, folder)
    return added
