"""Private files, safely: the runtime dir and everything in it; and reading the user's own config files.

The runtime dir must be a real directory owned by the user with mode 0700; files are 0600, written atomically (a
private temporary file renamed into place, so no moment exists at a wider mode), never through a symlink, and read
only when they are regular files of ours that nobody else can read. Only ``os``, ``stat`` and ``errno``: the lean
``credential-process`` path reads its token with ``read_private`` too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import TYPE_CHECKING

from ..errors import ConfigError, UnsafeRuntimeDir

if TYPE_CHECKING:
    from pathlib import Path


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700 if needed; refuse one that is a symlink, not ours, or open to others."""
    try:
        path.mkdir(mode=0o700, parents=False)
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    except FileExistsError:
        pass
    check_private(path, directory=True)


def check_private(path: str | os.PathLike[str], *, directory: bool) -> None:
    """``path`` is a real directory (or regular file) of the user's that nobody else can read or write; every
    reader of the runtime dir checks it before trusting anything in it."""
    info = os.lstat(path)
    kind_ok = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    if not kind_ok:
        what = "a directory" if directory else "a regular file"
        raise UnsafeRuntimeDir(f"{path} is not {what} (a symlink or something else); remove it and try again")
    if info.st_uid != os.getuid():
        raise UnsafeRuntimeDir(f"{path} belongs to uid {info.st_uid}, not to you; remove it and try again")
    if info.st_mode & 0o077:
        wanted = "0700" if directory else "0600"
        raise UnsafeRuntimeDir(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; run `chmod {wanted} {path}` and try again"
        )


def runtime_dir_ready(path: str | os.PathLike[str]) -> bool:
    """Whether the runtime dir exists, once it is checked like the daemon checks it (``check_private``): a squatted
    or widened one raises ``UnsafeRuntimeDir``, one line, before anything in it is trusted."""
    try:
        check_private(path, directory=True)
    except FileNotFoundError:
        return False
    except OSError as exc:  # a plain file where one of the path's directories should be, and the like
        raise UnsafeRuntimeDir(f"{path} cannot be used ({exc.strerror}); fix its path and try again") from exc
    return True


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte, replacing any old file in one step."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)  # rename() replaces a symlink itself, never what it points at
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_user_file(path: str | os.PathLike[str], limit: int) -> bytes | None:
    """A file the user wrote (config.toml, the AWS config and credentials files): its bytes, ``None`` if there is
    none, ``ConfigError`` naming the file if it cannot be read. A FIFO, a device (``/dev/zero``) or anything larger
    than ``limit`` is refused without being read, so a planted file can neither hang a command nor fill its memory;
    symlinks are followed (dotfile managers use them). ``/dev/null`` is an empty file, as it is to every AWS tool:
    ``AWS_CONFIG_FILE=/dev/null`` is the usual way to say "no file"."""
    if os.fspath(path) == os.devnull:
        return b""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror})") from exc
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file (a FIFO, a device or a directory); make it a file")
        raise ConfigError(f"{path} is larger than the {limit} bytes govuk-imds reads; is it the right file?")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise ConfigError(f"{path} cannot be read ({exc.strerror})") from exc
    if len(data) > limit:  # it grew while being read
        raise ConfigError(f"{path} is larger than the {limit} bytes govuk-imds reads; is it the right file?")
    return data


def open_private_append(path: str | os.PathLike[str]) -> int:
    """A descriptor appending to a private file of ours (the background daemon's log), created 0600 if missing.
    A symlink, a FIFO or anything not a private regular file of the user's is refused, not followed or waited on."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeRuntimeDir(f"{path} is a symlink; remove it and try again") from exc
        raise UnsafeRuntimeDir(f"{path} cannot be opened ({exc.strerror}); remove it and try again") from exc
    info = os.fstat(descriptor)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise UnsafeRuntimeDir(f"{path} is not a private file of yours; remove it and try again")
    return descriptor


def read_private(path: str | os.PathLike[str]) -> bytes:
    """Read a file we wrote, refusing symlinks and files others could have written or read."""
    # O_NONBLOCK: a FIFO planted at the path must not hang us; it is refused below like anything irregular.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeRuntimeDir(f"{path} is a symlink; remove it and try again") from exc
        raise
    info = os.fstat(descriptor)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise UnsafeRuntimeDir(f"{path} is not a private file of yours; remove it and try again")
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read()
