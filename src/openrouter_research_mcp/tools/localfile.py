"""Reading a file a caller named, safely: one file descriptor, checked, then read.

The path is resolved (symlinks followed, so a link inside a root to a file inside a root works) and, when
`OPENROUTER_FILE_ROOTS` is set, must be inside a root before anything is opened: a path outside gets one message
whether or not it exists, and no device or FIFO outside the roots is ever touched. It is then opened by walking
the resolved path one component at a time from the root that holds it (or `/`), each directory opened relative to
the one before with `O_NOFOLLOW | O_DIRECTORY` and the file itself with `O_NOFOLLOW | O_NONBLOCK`: any component
swapped for a symlink after the resolution fails to open, so nothing outside the roots is opened even for a moment,
and a FIFO or a device opens at once instead of blocking. Everything else is asked of that descriptor, never of the
name again: it must be a regular file (`fstat`), no larger than the limit, and its real path (what the descriptor points
to, from the kernel) must be inside `OPENROUTER_FILE_ROOTS`. Only then is it read, from that descriptor, at most
the limit. So a name swapped between check and read cannot make the server read another file.

The whole read runs on a daemon thread with a time limit: a file system that hangs (a dead network mount) fails the
call in time and never holds up the server's exit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ..errors import RequestError

__all__ = ["in_daemon_thread", "read_local"]

T = TypeVar("T")


def _check_name(spec: str) -> str:
    if "\x00" in spec:
        raise RequestError(
            "An attachment path contains a NUL character, which no file name can hold. Give the file's path as it "
            "appears in the file manager or terminal."
        )
    try:
        spec.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(
            "An attachment path contains characters that are not valid text (a broken encoding). Rename the file "
            "or give its path again."
        ) from None
    return spec


def _real_path(fd: int, fallback: str) -> Path:
    """Where the descriptor really points (Linux and most Unixes say so under /proc; elsewhere, the resolved name,
    checked against the descriptor's own device and inode)."""
    with contextlib.suppress(OSError):
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    candidate = Path(fallback)
    mine, theirs = os.fstat(fd), os.stat(candidate)
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        raise RequestError(f"{fallback} changed while it was being opened. Attach it again.")
    return candidate


def _loops(path: str) -> bool:
    """Whether following `path` goes round a loop of symbolic links."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _outside(spec: str, allowed: Sequence[Path]) -> RequestError:
    shown = ", ".join(str(r) for r in allowed)
    return RequestError(
        f"{spec} is outside the folders this server may read ({shown}); set OPENROUTER_FILE_ROOTS to allow it, or "
        "copy the file into one of them."
    )


_NOFOLLOW, _CLOEXEC = getattr(os, "O_NOFOLLOW", 0), getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC
# A directory on the way is opened only to look names up in it: `O_PATH` (Linux) needs no read permission on it,
# just the search permission any path lookup needs, so a folder such as a 0711 home directory can be walked through.
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_PATH", 0) | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
_WALKS = os.open in os.supports_dir_fd  # where it does not (Windows), one open by name


def _open_beneath(resolved: str, allowed: Sequence[Path]) -> int:
    """Open `resolved` (a path with no symbolic link left in it) component by component from the root that holds it,
    following no link: a component that is not what the resolution saw fails to open. An `OSError` names the path
    up to the component that failed."""
    if not _WALKS:
        return os.open(resolved, _OPEN_FLAGS)
    path = Path(resolved)
    base = max((root for root in allowed if _inside(path, [root])), key=lambda r: len(r.parts), default=None)
    base = base or Path(path.anchor)
    names = path.parts[len(base.parts) :]
    if not names:  # the root itself: a directory, refused as one by the caller
        return os.open(base, _OPEN_FLAGS)
    fd = os.open(base, _DIR_FLAGS)
    try:
        for depth, name in enumerate(names):
            last = depth == len(names) - 1
            try:
                opened = os.open(name, _OPEN_FLAGS if last else _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(base.joinpath(*names[: depth + 1]))) from None
            os.close(fd)
            fd = opened
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_local(spec: str, roots: Sequence[Path], limit: int, limit_mb: float) -> tuple[bytes, str]:
    """The bytes of the regular file `spec` names (at most `limit`), and its file name; see the module docstring."""
    label = os.path.basename(_check_name(spec)) or spec
    allowed = [root.resolve() for root in roots]
    try:
        resolved = os.path.realpath(os.path.expanduser(spec))
        if allowed and not _inside(Path(resolved), allowed):
            raise _outside(spec, allowed)
        fd = _open_beneath(resolved, allowed)
    except OSError as exc:
        failed = exc.filename if isinstance(exc.filename, str) else resolved  # the path up to the part that failed
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(failed):
            if _loops(failed):
                raise RequestError(f"{spec} is a loop of symbolic links. Attach the file itself.") from None
            became = "it became a link" if failed == resolved else "a folder on its path became a link"
            raise RequestError(f"{spec} changed while it was being opened ({became}). Attach it again.") from None
        if exc.errno == errno.ELOOP:
            raise RequestError(f"{spec} is a loop of symbolic links. Attach the file itself.") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise RequestError(f"{spec} cannot be read: this server is not allowed to open it.") from None
        raise RequestError(f"{spec} does not exist or cannot be read. Give the absolute path of a file.") from None
    except ValueError:  # a name the operating system refuses outright
        raise RequestError(f"{spec!r} is not a path this system can open. Give the file's path again.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise RequestError(f"{spec} is {what}. Attach a regular file.")
        if allowed and not _inside(_real_path(fd, resolved), allowed):  # a swap between resolving and opening
            raise _outside(spec, allowed)
        if info.st_size > limit:
            raise RequestError(
                f"{label} is {info.st_size / 1048576:.1f} MB, over the {limit_mb:g} MB limit "
                "(OPENROUTER_MAX_ATTACHMENT_MB). Attach a smaller file, or a URL to it."
            )
        os.set_blocking(fd, True)  # a regular file: reads may block as usual (they are bounded in time above us)
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise RequestError(
                f"{label} grew past the {limit_mb:g} MB limit (OPENROUTER_MAX_ATTACHMENT_MB) while it was read."
            )
        return b"".join(chunks), os.path.basename(resolved)
    except OSError as exc:
        raise RequestError(f"{spec} could not be read ({exc.strerror or type(exc).__name__}).") from None
    finally:
        os.close(fd)


def in_daemon_thread(work: Callable[[], T], seconds: float, what: str) -> T:
    """Run `work` on a daemon thread and wait at most `seconds` for it (a hung read never holds up an exit)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="read-attachment", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise RequestError(
            f"Preparing {what} took longer than {seconds:g} s (a file system that hangs, or images too large to "
            "decode quickly). Attach smaller files, or try again."
        )
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
