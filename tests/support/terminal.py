"""A real pseudo-terminal for tests that type at an interactive program (a shell, a prompt) and read its screen.

The child takes the terminal as its controlling terminal (as a login shell would) and then becomes the program. It is
a fresh interpreter started by subprocess (fork and exec in C), so no Python code runs in a fork of the
multi-threaded test process, where a lock held by another thread at the fork could hang the child for ever.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Sequence

import pytest

TAKE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.argv[1], sys.argv[1:])"
)
#: Colours and cursor movements, for reading a screen as text.
ESCAPES = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][A-Za-z0-9]|[=>78])")


class Terminal:
    """An interactive program on a pty: ``send`` keys, ``expect`` a pattern on what it printed since the last match."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], *, columns: int = 200) -> None:
        self._fd, child_side = pty.openpty()
        os.set_blocking(self._fd, False)
        import fcntl
        import struct
        import termios

        fcntl.ioctl(child_side, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        self._child = subprocess.Popen(
            [sys.executable, "-c", TAKE_TERMINAL, *argv],
            stdin=child_side, stdout=child_side, stderr=child_side, env=env, start_new_session=True,
        )
        os.close(child_side)
        self.screen = b""  # everything printed so far
        self._seen = 0  # what `expect` has matched up to

    def send(self, keys: str) -> None:
        os.write(self._fd, keys.encode())

    def expect(self, pattern: str | bytes, timeout: float = 20) -> re.Match[bytes]:
        """Wait until ``pattern`` appears in the output after the previous match (escape codes left in)."""
        wanted = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = wanted.search(self.screen, self._seen)
            if found:
                self._seen = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                text = self.screen.decode(errors="replace")
                pytest.fail(f"{wanted.pattern!r} did not appear within {timeout:g} s; the screen:\n{text}")
            ready, _, _ = select.select([self._fd], [], [], min(left, 0.1))
            if ready:
                try:
                    self.screen += os.read(self._fd, 65536)
                except OSError:  # EIO: the program has gone
                    time.sleep(0.05)

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait(timeout=10)
        os.close(self._fd)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plain(screen: bytes) -> str:
    """What a person reads: the screen without colour and cursor codes."""
    return ESCAPES.sub(b"", screen).decode(errors="replace")
