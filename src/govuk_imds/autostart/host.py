"""Everything the autostart commands take from this machine, behind seams tests replace: the environment, the
platform, the uid, and a ``Runner`` for ``systemctl``/``launchctl`` (CI has no user systemd and no launchd)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..config.locations import installed_command as find_installed_command
from ..config.paths import default_config_file
from ..config.settings import Settings
from ..errors import ServiceManagerError

if TYPE_CHECKING:
    import subprocess


class Runner(Protocol):
    """Runs one service-manager command and returns its outcome; never raises for a non-zero exit status."""

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]: ...


@dataclass(frozen=True)
class SubprocessRunner:
    """The real runner: the command with the caller's environment (``systemctl --user`` needs
    ``XDG_RUNTIME_DIR`` and ``DBUS_SESSION_BUS_ADDRESS`` to find the user manager)."""

    environ: Mapping[str, str]
    timeout: float = 90.0  # `systemctl start` waits for READY=1

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        import subprocess

        try:
            return subprocess.run(
                list(argv), capture_output=True, text=True, env=dict(self.environ), timeout=self.timeout, check=False
            )
        except FileNotFoundError as exc:
            raise ServiceManagerError(
                f"`{argv[0]}` was not found; is this machine's service manager installed?"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ServiceManagerError(f"`{' '.join(argv)}` did not finish within {self.timeout:.0f} s") from exc


@dataclass(frozen=True)
class Host:
    """Everything the service commands take from this machine, so that tests can substitute each part."""

    environ: Mapping[str, str]
    platform: str
    uid: int
    runner: Runner
    argv0: str = ""
    python: str = ""
    wait_for_daemon: bool = True

    @classmethod
    def current(cls) -> Host:
        return cls(
            environ=dict(os.environ),
            platform=sys.platform,
            uid=os.getuid(),
            runner=SubprocessRunner(dict(os.environ)),
            argv0=sys.argv[0] if sys.argv else "",
            python=sys.executable,
        )

    @property
    def home(self) -> Path:
        return Path(self.environ.get("HOME", "~")).expanduser()


def installed_command(host: Host) -> list[str]:
    """The absolute path of the installed ``govuk-imds`` command, as the service manager must run it."""
    found = find_installed_command(host.argv0, host.python, host.environ.get("PATH", os.defpath))
    if found is None:
        raise ServiceManagerError(
            "cannot find the installed `govuk-imds` command; install govuk-imds (e.g. `pipx install govuk-imds`) "
            "and run `govuk-imds service install` from it"
        )
    return found


def pinned_environment(settings: Settings, host: Host) -> dict[str, str]:
    """Variables the service needs to read the same files and port as the CLI that installs it. The service manager
    starts the daemon without the user's shell variables, so what a variable or flag chose is pinned."""
    pinned: dict[str, str] = {}
    if settings.config_file != default_config_file({"HOME": str(host.home)}):
        pinned["GOVUK_IMDS_CONFIG"] = str(settings.config_file)
    if settings.aws_config_file != host.home / ".aws" / "config":
        pinned["AWS_CONFIG_FILE"] = str(settings.aws_config_file)
    if host.environ.get("GOVUK_IMDS_PORT"):
        pinned["GOVUK_IMDS_PORT"] = str(settings.port)  # the socket unit listens there
    return pinned
