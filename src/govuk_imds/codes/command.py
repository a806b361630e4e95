"""Running the command that prints an MFA code (``mfa_process``), and judging what it printed.

It runs with no shell (argv from ``configured``), stdin closed (a program that would ask something, such as a
password-protected YubiKey, fails instead of waiting for ever), its own process group (so a timeout stops whatever
it started), and a timeout. Its stdout must be the six-digit code alone; its stderr is read as it comes, so that a
request to touch the key ("Touch your YubiKey...", which ykman writes before it waits) reaches the person at once.
``judge`` is pure: what the output means, and the fix, in words that never repeat what was printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.shapes import MFA_CODE
from ..core.text import last_line

#: More than a code and a newline, with room for blanks: anything longer is not a code.
MAX_OUTPUT = 1024
#: How much of stderr is kept (its last line may go into a message).
MAX_STDERR = 8192
#: After the command exits, how long to wait for what it left in its pipes (a child it started may hold them).
DRAIN_SECONDS = 0.2
#: Known complaints of ykman (and the like) on stderr, and what to do about each.
KNOWN_FIXES = (
    ("no yubikey detected", "plug in your YubiKey"),
    ("timed out", "touch your YubiKey when it flashes"),
    ("multiple matches", "name one OATH account exactly (`ykman oath accounts list` shows them)"),
    ("no matching", "check the OATH account's name (`ykman oath accounts list` shows them)"),
    ("password", "run `ykman oath access remember` once, so that it can run without asking"),
)
# In a line quoted from stderr: numbers (a code, a counter) and long tokens (a seed) are not repeated.
_DIGITS = re.compile(r"\d{4,}")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{16,}")


@dataclass(frozen=True)
class Finished:
    """What the command did: its exit status (``None`` when it was stopped at the timeout) and its output."""

    returncode: int | None
    stdout: bytes = field(repr=False)
    stderr: str = ""


@dataclass(frozen=True)
class Verdict:
    """The code, or what went wrong and the fix (never holding what was printed)."""

    code: str | None = field(default=None, repr=False)
    problem: str = ""
    fix: str = ""


def run(argv: list[str], timeout: float, on_touch: Callable[[], None]) -> Finished:
    """Run ``argv`` and collect its output, calling ``on_touch`` once if its stderr asks for a touch. Raises
    ``OSError`` when it cannot be started (not found, not executable)."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    touched = False
    exited_at: float | None = None
    finished = False
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, out)
        selector.register(process.stderr, selectors.EVENT_READ, err)
        try:
            while selector.get_map():
                now = time.monotonic()
                if now >= deadline or (exited_at is not None and now - exited_at > DRAIN_SECONDS):
                    break
                for key, _ in selector.select(min(deadline - now, 0.05)):
                    chunk = os.read(key.fd, 4096)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffer: bytearray = key.data
                    buffer += chunk
                    if buffer is out:
                        del out[MAX_OUTPUT + 1 :]
                    else:
                        del err[: max(0, len(err) - MAX_STDERR)]
                        if not touched and b"touch" in err.lower():
                            touched = True
                            on_touch()
                if exited_at is None and _exited(process.pid):
                    exited_at = time.monotonic()
            while not _exited(process.pid) and time.monotonic() < deadline:  # it closed its output, still runs
                time.sleep(0.01)
            finished = _exited(process.pid)
        finally:
            # Whatever it started goes with it. Its group is killed before the command is reaped, while its pid
            # still names that group and nothing else.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            returncode = process.wait()
            process.stdout.close()
            process.stderr.close()
    return Finished(returncode if finished else None, bytes(out), err.decode("utf-8", "replace"))


def _exited(pid: int) -> bool:
    """Whether the command has exited, without reaping it (``WNOWAIT``)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def judge(finished: Finished, argv: list[str], timeout: float) -> Verdict:
    """Six digits alone on stdout after a clean exit is the code; anything else is a problem with its fix."""
    said = quoted(finished.stderr)
    if finished.returncode is None:
        return Verdict(problem=f"gave no code within {timeout:g} s and was stopped",
                       fix="touch your YubiKey when it flashes, or raise code_timeout in config.toml")
    if finished.returncode != 0:
        return Verdict(problem=f"exited with status {finished.returncode}" + (f" ({said})" if said else ""),
                       fix=_known_fix(finished.stderr) or "run it in a terminal to see why")
    alone = "it must print the six-digit code alone"
    if os.path.basename(argv[0]) == "ykman" and "--single" not in argv and "-s" not in argv:
        alone += " (ykman: `ykman oath accounts code --single <account>`)"
    if len(finished.stdout) > MAX_OUTPUT:
        return Verdict(problem="printed far more than a code", fix=alone)
    try:
        text = finished.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return Verdict(problem="printed something that is not text", fix=alone)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return Verdict(problem="printed nothing", fix=alone + " on stdout")
    if len(lines) > 1:
        return Verdict(problem=f"printed {len(lines)} lines", fix=alone)
    if MFA_CODE.fullmatch(lines[0]):
        return Verdict(code=lines[0])
    if lines[0].isdigit():
        return Verdict(problem=f"printed {len(lines[0])} digits, not 6", fix=alone)
    return Verdict(problem="printed something that is not a six-digit code", fix=alone)


def quoted(stderr: str) -> str:
    """The last line a command wrote on stderr, as a message may quote it: one printable line, with no numbers
    or long tokens in it (a code, a seed)."""
    return _TOKEN.sub("…", _DIGITS.sub("…", last_line(stderr)))


def _known_fix(stderr: str) -> str | None:
    lowered = stderr.lower()
    return next((fix for words, fix in KNOWN_FIXES if words in lowered), None)
