"""What the command groups share: the handler signature, how a group registers its commands, and the few ways a
command talks to the person at the terminal (a yes/no question, a source profile's name, the question an environment
with ``confirm = true`` asks). MFA codes: ``codes``."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable

from ..config.settings import Settings
from ..core.shapes import PROFILE_NAME
from ..errors import InvalidInput, NotConfirmed
from ..keys.admin import Confirm

#: A subcommand: receives its parsed arguments and the settings, returns the exit status.
Handler = Callable[[argparse.Namespace, Settings], int]
#: Registers a subcommand (name, handler, one-line summary) and returns its parser for the arguments.
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def terminal_confirm(yes: bool) -> Confirm:
    """A confirmation on the terminal, or always yes with ``--yes``; refuses up front when there is no terminal."""
    if yes:
        return lambda question: True
    if not sys.stdin.isatty():
        raise InvalidInput("this command asks for confirmation and there is no terminal to ask on; pass --yes")

    def confirm(question: str) -> bool:
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        return sys.stdin.readline().strip().lower() in {"y", "yes"}

    return confirm


def confirm_environment(environment: str, question: str, *, yes: bool, setting: str) -> None:
    """Ask before a command runs with ``environment``'s credentials, for an environment with ``confirm = true``.

    ``question`` holds ``{environment}``, shown in red on a colour terminal. The question goes to the controlling
    terminal (``/dev/tty``), not stdin and stdout: those may be the command's own input and output. ``yes`` (the
    command's ``--yes``) answers for scripts. Raises ``NotConfirmed`` on any answer but yes, and when there is no
    terminal to ask on. For ``exec``, ``console`` and ``shell``.
    """
    if yes:
        return
    try:
        # Read and written unbuffered, as getpass does: a terminal cannot seek, which a buffered "r+" file needs.
        descriptor = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        raise NotConfirmed(
            f"{environment} asks before running (confirm = true in {setting}) and there is no terminal to ask "
            "on; add --yes to run it anyway"
        ) from exc
    with io.TextIOWrapper(io.FileIO(descriptor, "w+"), encoding="utf-8", errors="replace") as terminal:
        colour = terminal.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        shown = f"\033[1;31m{environment}\033[0m" if colour else environment
        terminal.write(question.replace("{environment}", shown) + " [y/N] ")
        terminal.flush()
        answer = terminal.readline().strip().lower()
    if answer not in {"y", "yes"}:
        raise NotConfirmed(f"not confirmed; nothing was run with {environment}'s credentials")


def source_profile_name(name: str) -> str:
    """A source profile's name as typed, checked before it reaches a file or the keyring."""
    if not PROFILE_NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a profile name (letters, digits, . _ -)")
    return name
