"""The sources of an MFA code, and trying them in order.

Each source either gives a code (six digits, checked), says it has none here (``None``: stdin is empty, there is
no terminal, no display) so the next one is tried, or fails with one line that names it and the fix. A source that
is there and fails is not passed over: a YubiKey that is not plugged in should be plugged in, not silently replaced
by a prompt. When every source has none, the line says why each had none.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from ..core.shapes import MFA_CODE
from ..desktop import dialog
from ..errors import CodeSourceFailed, InvalidInput, PromptCancelled
from .command import judge, run
from .configured import ConfiguredCommand

#: How often the GUI prompt asks again after something that is not six digits was typed.
DIALOG_TRIES = 3


class Source(Protocol):
    #: Why it had no code, once ``code`` returned ``None``.
    why_not: str

    def code(self) -> str | None: ...


def checked_code(text: str) -> str:
    """Six digits (surrounding blanks dropped), or ``InvalidInput`` that says what to type."""
    code = text.strip()
    if not MFA_CODE.fullmatch(code):
        raise InvalidInput("an MFA code is six digits; run the command again with the code your device shows")
    return code


def read_code(sources: Sequence[Source], fix: str) -> str:
    """The code from the first source that has one; ``CodeSourceFailed`` saying why none had, and ``fix``."""
    reasons = []
    for source in sources:
        code = source.code()
        if code is not None:
            return code
        reasons.append(source.why_not)
    raise CodeSourceFailed(f"no MFA code to use: {'; '.join(reasons) or 'no source of codes'}; {fix}")


@dataclass
class Given:
    """``--code``: in the process list for a moment, which is why the other sources exist."""

    value: str = field(repr=False)
    why_not: str = ""

    def code(self) -> str:
        return checked_code(self.value)


@dataclass
class Piped:
    """A line of stdin, when stdin is not a terminal. An empty stdin (``< /dev/null``, a service) has no code, and
    the next source is tried."""

    stream: TextIO
    example: str
    why_not: str = "stdin is empty"

    def code(self) -> str | None:
        line = self.stream.readline(256)
        if not line:
            return None
        if not MFA_CODE.fullmatch(line.strip()):
            raise CodeSourceFailed(f"stdin did not hold a six-digit MFA code; pipe in the code alone, e.g. "
                                   f"`{self.example}`")
        return line.strip()


@dataclass
class Command:
    """``mfa_process``. ``on_touch`` tells the person when the command asks for a touch; ``instead`` is the command
    line that types the code instead."""

    configured: ConfiguredCommand
    timeout: float
    on_touch: Callable[[], None]
    instead: str
    why_not: str = ""

    def code(self) -> str:
        argv = self.configured.argv()
        name = f"mfa_process ({self.configured.program}, set in {self.configured.where})"
        try:
            finished = run(argv, self.timeout, self.on_touch)
        except OSError as exc:
            raise CodeSourceFailed(
                f"{name} cannot be run ({exc.strerror or exc}); install it or fix mfa_process, or type the code "
                f"instead: `{self.instead}`"
            ) from None
        verdict = judge(finished, argv, self.timeout)
        if verdict.code is None:
            raise CodeSourceFailed(f"{name} {verdict.problem}; {verdict.fix}, or type the code instead: "
                                   f"`{self.instead}`")
        return verdict.code


def terminal_available() -> bool:
    """Whether this process has a terminal to ask on (``/dev/tty``), whatever its stdin and stdout are."""
    try:
        descriptor = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(descriptor)
    return True


@dataclass
class Terminal:
    """A prompt on the terminal (``/dev/tty``, not stdout: ``eval "$(govuk-imds env ...)"`` reads stdout), with no
    echo."""

    serial: str
    why_not: str = "there is no terminal to ask on"

    def code(self) -> str | None:
        if not terminal_available():
            return None
        return checked_code(getpass.getpass(f"MFA code for {self.serial}: "))


@dataclass
class Dialog:
    """A GUI prompt (zenity, kdialog, osascript). ``subject`` names what the code unlocks, for its text and for
    the line that says it stays locked."""

    subject: str
    timeout: float
    environ: Mapping[str, str]
    again: str
    why_not: str = "there is no display to show a prompt on (no DISPLAY or WAYLAND_DISPLAY)"

    def code(self) -> str | None:
        prompt = f"MFA code for {self.subject}"
        for _ in range(DIALOG_TRIES):
            argv = dialog.dialog_argv(prompt, max(1, round(self.timeout)), self.environ)
            if argv is None:
                return None
            result = dialog.run(argv, self.timeout)
            tool = os.path.basename(argv[0])
            if result.outcome is dialog.Outcome.CANCELLED:
                raise PromptCancelled(f"the prompt for the MFA code was cancelled; {self.subject} stays locked "
                                      f"(`{self.again}` asks again)")
            if result.outcome is dialog.Outcome.TIMED_OUT:
                raise PromptCancelled(f"the prompt for the MFA code was not answered within {self.timeout:g} s; "
                                      f"{self.subject} stays locked (`{self.again}` asks again)")
            if result.outcome is dialog.Outcome.FAILED:
                raise CodeSourceFailed(f"the GUI prompt ({tool}) failed: {result.text}; {self.subject} stays locked")
            if MFA_CODE.fullmatch(result.text):
                return result.text
            prompt = f"That was not six digits. MFA code for {self.subject}"
        raise CodeSourceFailed(f"no six-digit MFA code was typed into the prompt in {DIALOG_TRIES} tries; "
                               f"{self.subject} stays locked")
