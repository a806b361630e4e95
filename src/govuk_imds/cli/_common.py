"""What the command groups share: the handler signature, how a group registers its commands, and the few ways a
command talks to the person at the terminal (a yes/no question, a source profile's name). MFA codes: ``codes``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..config.settings import Settings
from ..core.shapes import PROFILE_NAME
from ..errors import InvalidInput
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


def source_profile_name(name: str) -> str:
    """A source profile's name as typed, checked before it reaches a file or the keyring."""
    if not PROFILE_NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a profile name (letters, digits, . _ -)")
    return name
