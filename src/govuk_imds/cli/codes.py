"""The MFA code sources as the commands offer them (``codes/`` has the sources themselves): the options, and the
order for each way of asking.

- ``unlock`` and ``rotate-key``: ``--code``, stdin when it is not a terminal, ``mfa_process``, the terminal.
- ``unlock --prompt gui`` (a launcher, or the daemon's ``prompt = "gui"``): ``--code``, ``mfa_process``, a GUI
  dialog; stdin is not read.
- unlocking on demand (``exec``, ``env``, ``shell``, ``console``) runs ``unlock`` with stdin closed: so
  ``mfa_process``, then the terminal (``/dev/tty``); stdin and stdout belong to the command being run.

While ``mfa_process`` waits for a touch, the person is told: on stderr, and with a GUI prompt also on the desktop.
Not a command group: the groups that ask for codes import it. The sources are imported when codes are asked
for, so that the light commands that import this module (through ``sessions``) do not pay for them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from ..config.settings import Settings
from ..core.environment import EnvironmentSpec

if TYPE_CHECKING:
    from ..codes.sources import Source

#: GOV.UK's YubiKey guidance stores the MFA secret as the OATH account ``gds-users``; ``--single`` prints the code
#: alone. Another account name: ``ykman oath accounts list`` shows them.
YUBIKEY_COMMAND = "ykman oath accounts code --single gds-users"


def add_code_options(parser: argparse.ArgumentParser, *, prompt: bool) -> None:
    parser.add_argument(
        "--code", help="the six-digit MFA code, if one is needed (otherwise from stdin, mfa_process or a prompt)"
    )
    parser.add_argument(
        "--no-mfa-process", action="store_true", help="do not run the configured mfa_process; ask for the code instead"
    )
    if prompt:
        parser.add_argument(
            "--prompt",
            choices=["terminal", "gui"],
            default="terminal",
            help="where to ask for a code when one must be typed: the terminal, or a GUI dialog (zenity or kdialog; "
            "osascript on macOS) for launchers and keyboard shortcuts",
        )


def code_sources(
    settings: Settings,
    specs: Sequence[EnvironmentSpec],
    *,
    given: str | None,
    mfa_process: bool,
    prompt: str,
    stdin: TextIO,
) -> list[Source]:
    """``unlock``'s sources for ``specs`` (one MFA device)."""
    from ..codes.sources import Dialog, Given, Piped, Terminal

    names = " ".join(spec.name for spec in specs)
    subject = ", ".join(spec.name for spec in specs)
    sources: list[Source] = [Given(given)] if given is not None else []
    if prompt == "terminal" and not stdin.isatty():
        sources.append(Piped(stdin, f"{YUBIKEY_COMMAND} | govuk-imds unlock {names}"))
    if mfa_process:
        sources += _command(settings, _profiles(specs[0]), f"to unlock {subject}",
                            f"govuk-imds unlock {names} --no-mfa-process", gui=prompt == "gui")
    if prompt == "gui":
        sources.append(Dialog(subject, settings.code_timeout.total_seconds(), os.environ, f"govuk-imds unlock {names}"))
    else:
        sources.append(Terminal(specs[0].mfa_serial))
    return sources


def can_ask(settings: Settings, spec: EnvironmentSpec) -> bool:
    """Whether an unlock of ``spec`` on demand could get a code here: an mfa_process, or a terminal to ask on."""
    from ..codes.configured import configured_command
    from ..codes.sources import terminal_available

    return configured_command(settings, _profiles(spec)) is not None or terminal_available()


def rotation_sources(
    settings: Settings, source_profile: str, serial: str, *, given: str | None, mfa_process: bool, stdin: TextIO
) -> list[Source]:
    from ..codes.sources import Given, Piped, Terminal

    sources: list[Source] = [Given(given)] if given is not None else []
    if not stdin.isatty():
        sources.append(Piped(stdin, f"{YUBIKEY_COMMAND} | govuk-imds rotate-key {source_profile}"))
    if mfa_process:
        sources += _command(settings, [source_profile], f"to rotate {source_profile}'s key",
                            f"govuk-imds rotate-key {source_profile} --no-mfa-process", gui=False)
    sources.append(Terminal(serial))
    return sources


def _profiles(spec: EnvironmentSpec) -> list[str]:
    """Where an environment's mfa_process may be: its own profile, then its source profile (as aws-vault reads
    it)."""
    return [spec.profile, spec.source_profile]


def _command(settings: Settings, profiles: list[str], purpose: str, instead: str, *, gui: bool) -> list[Source]:
    """The configured mfa_process as a source (``instead``: the command line that types the code instead)."""
    from ..codes.configured import configured_command
    from ..codes.sources import Command

    configured = configured_command(settings, profiles)
    if configured is None:
        return []
    return [Command(configured, settings.code_timeout.total_seconds(), _touch_notice(purpose, gui=gui), instead)]


def _touch_notice(purpose: str, *, gui: bool) -> Callable[[], None]:
    def tell() -> None:
        print(f"touch your YubiKey {purpose} (mfa_process is waiting for it)", file=sys.stderr, flush=True)
        if gui:
            from ..desktop.notify import Notification, show_blocking

            show_blocking(Notification("govuk-imds: touch your YubiKey", f"Touch it {purpose}."), os.environ)

    return tell


def yubikey_hint(settings: Settings, source_profile: str) -> list[str]:
    """For ``init``'s next steps: how to never type a code, unless an mfa_process is set already."""
    from ..codes.configured import configured_command

    if configured_command(settings, [source_profile]) is not None:
        return []
    return [
        f"With a YubiKey you never type a code: add this line under [profile {source_profile}] in "
        f"{settings.aws_config_file}",
        f"  mfa_process = {YUBIKEY_COMMAND}",
        "(gds-users is the OATH account GOV.UK's guidance uses; `ykman oath accounts list` shows yours)",
    ]
