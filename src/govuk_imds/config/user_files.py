"""Rewriting a file the user owns and edits by hand (the AWS config, the credentials file), the one safe way.

The new content replaces the old in one step (a temporary file renamed over the target), so no reader ever sees half
a file. A symlinked file is followed and the link kept; the file's mode and owner stay as they were; a file the user
made read-only is refused rather than replaced behind their back; a file that changed since it was read is refused.
Failures are ``OSError`` with a readable ``strerror``: each caller words its own one-line message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path


def replace_user_file(path: Path, expected: bytes, content: bytes) -> None:
    """Write ``content`` over ``path`` (its target, if a symlink) atomically, keeping its mode and owner."""
    target = Path(os.path.realpath(path))
    info = target.stat()
    if not info.st_mode & stat.S_IWUSR:
        # The owner's write bit, not os.access: root may write anything, but a read-only file says "leave me".
        raise PermissionError(errno.EACCES, f"it is read-only (mode {stat.S_IMODE(info.st_mode):04o})")
    if target.read_bytes() != expected:
        raise OSError(0, "it changed while govuk-imds was working on it; run the command again")
    _write_then_rename(target, content, stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid))


def create_user_file(path: Path, content: bytes) -> None:
    """Create ``path`` (and a missing parent, 0700) with mode 0600, as the AWS CLI does; never over an existing one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _write_then_rename(target: Path, content: bytes, mode: int, owner: tuple[int, int]) -> None:
    temporary = target.with_name(f".{target.name}.govuk-imds-{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            with contextlib.suppress(PermissionError):
                os.fchown(handle.fileno(), *owner)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
