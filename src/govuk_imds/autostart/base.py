"""What every service manager does (install, uninstall, status, start, stop) and the parts they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .. import control
from ..config.files import atomic_write
from ..config.settings import Settings
from ..errors import ControlError, DaemonNotRunning, ServiceManagerError
from .host import Host

if TYPE_CHECKING:
    import subprocess


@dataclass
class Report:
    """What a command did or found, as lines for a person; ``running`` decides `service status`'s exit status."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    running: bool = False


class ServiceManager(Protocol):
    def files(self) -> list[Path]: ...
    def install(self, settings: Settings) -> Report: ...
    def uninstall(self) -> Report: ...
    def status(self) -> Report: ...
    def start(self, settings: Settings) -> Report: ...
    def stop(self) -> Report: ...


def detail(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip().splitlines()
    return text[-1].rstrip(".") if text else f"exit status {result.returncode}"


class ManagerBase:
    def __init__(self, host: Host) -> None:
        self.host = host

    def _run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return self.host.runner.run(list(argv))

    def _must(self, argv: Sequence[str], hint: str = "") -> subprocess.CompletedProcess[str]:
        result = self._run(argv)
        if result.returncode != 0:
            raise ServiceManagerError(f"`{' '.join(argv)}` failed: {detail(result)}{hint}")
        return result

    def files(self) -> list[Path]:
        raise NotImplementedError

    def _remove_files(self) -> list[Path]:
        removed = []
        for path in self.files():
            if path.exists() or path.is_symlink():
                path.unlink()
                removed.append(path)
        return removed

    def _write(self, contents: Mapping[Path, bytes]) -> None:
        for path, data in contents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)

    def _refuse_background_daemon(self, settings: Settings) -> None:
        """A daemon from `govuk-imds start` holds the port: the service could not bind it. Say so before writing."""
        if any(path.exists() for path in self.files()):
            return  # installed already: the daemon answering is the service's, replaced below
        try:
            answer = control.request(settings.runtime.control_socket, {"op": "ping"}, timeout=2)
        except (DaemonNotRunning, ControlError):
            return
        raise ServiceManagerError(
            f"a govuk-imds daemon started with `govuk-imds start` is running (pid {answer.get('pid', '?')}); "
            "run `govuk-imds stop`, then `govuk-imds service install` again"
        )
