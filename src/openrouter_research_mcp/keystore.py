"""Where `login` keeps the OpenRouter key it got: the OS keyring, or else a file only the user may read.

The keyring (the `keyring` package: macOS Keychain, Windows Credential Locker, the Secret Service on Linux) is tried
first. Where it has no usable backend (its `fail` or `null` backends, an empty chain, or any error such as a locked
or absent Secret Service) the key goes to `KEY_FILE_NAME` in the user's config directory (platformdirs; on Linux
`$XDG_CONFIG_HOME/openrouter-research-mcp`, else `~/.config/...`), created 0600 from the start, in a 0700 directory,
and moved into place atomically. Never in the working directory, never in a log.

`with_stored_key(settings)` is how `main()` applies the precedence: OPENROUTER_API_KEY (environment, then .env)
first, then the stored key.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .openrouter.signin import KEY_SHAPE

if TYPE_CHECKING:
    from .config import Settings

__all__ = [
    "KEYRING_SERVICE",
    "KEYRING_USER",
    "KEY_FILE_NAME",
    "KeySource",
    "Saved",
    "default_key_file",
    "delete_key",
    "load_key",
    "save_key",
    "with_stored_key",
]

log = logging.getLogger(__name__)

KEYRING_SERVICE = "openrouter-research-mcp"
KEYRING_USER = "openrouter-api-key"
KEY_FILE_NAME = "openrouter-key"
MAX_KEY_FILE = 4096  # bytes read of the key file at most: a key is about 80


@dataclass(frozen=True)
class KeySource:
    """Where the key in use came from, for people: "environment", ".env file", "keyring" or "file PATH"."""

    name: str
    stored: bool  # from the store `login` fills (keyring or file), so `login` again is the fix when it stops working


@dataclass(frozen=True)
class Saved:
    """Where `save_key` put the key, and why not in the keyring when it fell back to the file."""

    where: str
    fallback_reason: str | None = None
    replaced: bool = False  # a key stored before was overwritten


def default_key_file() -> Path:
    """The fallback file in the user's config directory (read only when called, never at import)."""
    import platformdirs

    from .config import APP_NAME

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / KEY_FILE_NAME


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _keyring() -> tuple[Any, str | None]:
    """The usable keyring backend, or None and why there is none."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null

        backend = keyring.get_keyring()
    except Exception as exc:  # a broken backend setting or an import failure is "no keyring", not a crash
        return None, f"the keyring could not be opened ({_describe(exc)})"
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None, "no keyring backend is available on this system"
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None, "no keyring backend is available on this system"
    return backend, None


def _read_file(path: Path) -> str | None:
    """The key in `path`, or None: missing, unreadable, or not what `login` writes there (one key on one line, in a
    plain file: never through a symbolic link, nor from a FIFO that would block the server's start), each logged,
    without the content, with what to do."""
    again = f"remove it, or run `{KEYRING_SERVICE} login` again"
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            log.warning("the stored key file %s is a symbolic link, so it is not read: %s", path, again)
        else:
            log.warning("could not read the stored key file %s (%s)", path, _describe(exc))
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read(MAX_KEY_FILE + 1) if stat.S_ISREG(info.st_mode) else None
    except OSError as exc:
        log.warning("could not read the stored key file %s (%s)", path, _describe(exc))
        return None
    if data is None:
        log.warning("the stored key file %s is not a plain file, so it is not read: %s", path, again)
        return None
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        text = None
    if text == "":
        return None
    if text is None or len(data) > MAX_KEY_FILE or not KEY_SHAPE.fullmatch(text):
        log.warning("the stored key file %s does not hold a key (it is damaged or was edited): %s", path, again)
        return None
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s may be read by other users: run `chmod 600 %s`, or `login` again", path, path)
    return text


def _private_folder(folder: Path) -> None:
    """Make sure only the user may change `folder`: one that others may write to (made before, under a loose
    umask) would let them swap the key file for their own key, and see the research billed to it. Ours is narrowed
    to 0700; one that belongs to someone else is refused."""
    if os.name != "posix":
        return
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(errno.EPERM, f"{folder} belongs to another user, so the key is not written there")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(folder, 0o700)


def _write_file(path: Path, key: str) -> None:
    """Write `key` to `path`: a new file made 0600 (O_EXCL, so never one that someone else prepared), then renamed
    over the old one, so no reader sees half a key and no moment exists when the key is readable by others."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(f"{key}\n".encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def load_key(path: Path | None = None) -> tuple[str, str] | None:
    """The stored key and where it is ("file PATH", or "keyring"), or None. The file is read first: `save_key`
    removes it whenever the keyring takes a key, so one that exists is the key in use, and reading it spares the
    server the keyring's start-up (about 0.15 s). An error from the keyring is logged (without the key)."""
    path = path or default_key_file()
    key = _read_file(path)
    if key:
        return key, f"file {path}"
    backend, _ = _keyring()
    if backend is not None:
        try:
            key = backend.get_password(KEYRING_SERVICE, KEYRING_USER)
        except Exception as exc:
            log.warning("could not read the OS keyring (%s); trying the key file", _describe(exc))
        else:
            if isinstance(key, str) and KEY_SHAPE.fullmatch(key.strip()):
                return key.strip(), "keyring"
            if key:
                log.warning("the OS keyring holds something that is not a key: run `%s login` again", KEYRING_SERVICE)
    return None


def save_key(key: str, path: Path | None = None) -> Saved:
    """Store `key` in the keyring, or, where none is usable, in `path` (default: `default_key_file()`)."""
    path = path or default_key_file()
    replaced = load_key(path) is not None
    backend, reason = _keyring()
    if backend is not None:
        try:
            backend.set_password(KEYRING_SERVICE, KEYRING_USER, key)
            if backend.get_password(KEYRING_SERVICE, KEYRING_USER) != key:
                raise RuntimeError("the keyring did not keep the key")
        except Exception as exc:
            reason = f"the OS keyring refused it ({_describe(exc)})"
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # an older key in the file must not outlive this one
            return Saved("keyring", replaced=replaced)
    _write_file(path, key)
    return Saved(f"file {path}", fallback_reason=reason, replaced=replaced)


def delete_key(path: Path | None = None) -> tuple[list[str], list[str]]:
    """Remove the stored key from the keyring and the file: (what was removed, what could not be and why)."""
    path = path or default_key_file()
    removed: list[str] = []
    failed: list[str] = []
    backend, _ = _keyring()
    if backend is not None:
        try:
            if backend.get_password(KEYRING_SERVICE, KEYRING_USER) is not None:
                backend.delete_password(KEYRING_SERVICE, KEYRING_USER)
                removed.append("keyring")
        except Exception as exc:
            failed.append(f"the OS keyring ({_describe(exc)})")
    try:
        path.unlink()
        removed.append(f"file {path}")
    except FileNotFoundError:
        pass
    except OSError as exc:
        failed.append(f"{path} ({_describe(exc)})")
    return removed, failed


def with_stored_key(settings: Settings, path: Path | None = None) -> tuple[Settings, KeySource | None]:
    """`settings` with a key, and where it came from: OPENROUTER_API_KEY (environment, then the .env file) when set,
    else the key `login` stored, else no key (and None)."""
    if settings.has_api_key:
        from_env = bool(os.environ.get("OPENROUTER_API_KEY", "").strip())
        return settings, KeySource("environment" if from_env else ".env file", stored=False)
    found = load_key(path)
    if found is None:
        return settings, None
    from pydantic import SecretStr

    key, where = found
    return settings.model_copy(update={"api_key": SecretStr(key)}), KeySource(where, stored=True)
