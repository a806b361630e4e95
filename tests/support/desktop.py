"""A desktop for the screen-lock tests: stand-in logind and screensaver services (``desktop_service.py``) on
private D-Bus buses, driven line by line."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SERVICE = Path(__file__).with_name("desktop_service.py")


class StandIn:
    """One running stand-in service; ``send("lock _32")`` returns the monotonic time the signal went out."""

    def __init__(self, role: str, address: str) -> None:
        self.process = subprocess.Popen([sys.executable, str(SERVICE), role, address], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().strip()
        assert ready == "READY", f"the {role} stand-in did not start (said {ready!r})"

    def send(self, command: str) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "SENT"
        return time.monotonic()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def stand_in(role: str, address: str) -> Iterator[StandIn]:
    service = StandIn(role, address)
    try:
        yield service
    finally:
        service.stop()
