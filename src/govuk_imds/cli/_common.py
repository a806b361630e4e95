"""What the command groups share: the handler signature, how a group registers its commands, and the few ways a
command talks to the person at the terminal (an MFA code, a yes/no question, a source profile's name)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from ..config.settings import Settings
from ..core.shapes import MFA_CODE, PROFILE_NAME
from ..errors import InvalidInput
from ..keys.admin import Confirm

#: A subcommand: receives its parsed arguments and the settings, returns the exit status.
Handler = Callable[[argparse.Namespace, Settings], int]
#: Registers a subcommand (name, handler, one-line summary) and returns its parser for the arguments.
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def read_mfa_code(flag: str | None, serial: str) -> str:
    """The code from ``--code``, else a prompt on the terminal, else a line of stdin; six digits or ``InvalidInput``."""
    if flag is not None:
        code = flag
    elif sys.stdin.isatty():
        code = getpass.getpass(f"MFA code for {serial}: ")
    else:
        code = sys.stdin.readline()
    return checked_mfa_code(code)


def checked_mfa_code(code: str) -> str:
    """Six digits (surrounding blanks dropped), or ``InvalidInput`` that says what to type."""
    code = code.strip()
    if not MFA_CODE.fullmatch(code):
        raise InvalidInput("an MFA code is six digits; run the command again with the code your device shows")
    return code


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


def source_profile_name(name: str) -> str:
    """A source profile's name as typed, checked before it reaches a file or the keyring."""
    if not PROFILE_NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a profile name (letters, digits, . _ -)")
    return name
