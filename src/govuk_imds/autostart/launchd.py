"""A LaunchAgent (``~/Library/LaunchAgents/uk.gov.govuk-imds.plist``) bootstrapped into the user's GUI session
(``gui/<uid>``), so the Keychain is reachable; logs in ``~/Library/Logs/govuk-imds/``."""

from __future__ import annotations

import time
from pathlib import Path

from .. import control
from ..config.locations import APP
from ..config.settings import Settings
from ..errors import ControlError, DaemonNotRunning, ServiceManagerError
from .base import ManagerBase, Report, detail
from .host import installed_command, pinned_environment
from .templates import LAUNCHD_LABEL, LOG_NAME, PLIST_NAME, render_launch_agent


class Launchd(ManagerBase):
    """A LaunchAgent in the user's GUI domain, driven with ``launchctl``."""

    @property
    def plist(self) -> Path:
        return self.host.home / "Library" / "LaunchAgents" / PLIST_NAME

    @property
    def log_dir(self) -> Path:
        return self.host.home / "Library" / "Logs" / APP

    @property
    def domain(self) -> str:
        return f"gui/{self.host.uid}"

    @property
    def target(self) -> str:
        return f"{self.domain}/{LAUNCHD_LABEL}"

    def files(self) -> list[Path]:
        return [self.plist]

    def _loaded(self) -> bool:
        return self._run(["launchctl", "print", self.target]).returncode == 0

    def install(self, settings: Settings) -> Report:
        self._refuse_background_daemon(settings)
        command = installed_command(self.host)
        if self.plist.exists() and self._loaded():
            self._run(["launchctl", "bootout", self.target])  # a reinstall replaces the running daemon
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._write(
            {
                self.plist: render_launch_agent(
                    command,
                    self.host.home,
                    settings.runtime.root,
                    pinned_environment(settings, self.host),
                    settings.port,
                )
            }
        )
        try:
            self._run(["launchctl", "enable", self.target])  # undo an earlier `launchctl disable`, if any
            self._must(["launchctl", "bootstrap", self.domain, str(self.plist)])
        except ServiceManagerError:
            self._remove_files()
            raise
        self._wait_until_ready(settings)
        return Report(
            [
                f"installed {self.plist} (runs {command[0]} serve)",
                f"govuk-imds runs as a LaunchAgent on 127.0.0.1:{settings.port}, started at login;"
                " next: `govuk-imds unlock <environment>`",
                f"logs: {self.log_dir / LOG_NAME}",
            ],
            running=True,
        )

    def uninstall(self) -> Report:
        if not self.plist.exists():
            return Report(["govuk-imds is not installed as a LaunchAgent; nothing to do"])
        booted_out = self._run(["launchctl", "bootout", self.target])
        removed = self._remove_files()
        report = Report(
            [f"removed {', '.join(str(path) for path in removed)}; the agent is stopped (logs kept in {self.log_dir})"]
        )
        if booted_out.returncode != 0 and self._loaded():
            report.warnings.append(f"`launchctl bootout {self.target}` said: {detail(booted_out)}")
        return report

    def status(self) -> Report:
        if not self.plist.exists():
            return Report(["govuk-imds is not installed as a service; `govuk-imds service install` installs it"])
        result = self._run(["launchctl", "print", self.target])
        report = Report([f"installed: {self.plist}"])
        if result.returncode != 0:
            report.lines.append(f"{LAUNCHD_LABEL}: not loaded (`govuk-imds start` loads it)")
            return report
        fields = {}
        for line in result.stdout.splitlines():
            key, separator, value = line.strip().partition(" = ")
            if separator and key in {"state", "pid", "last exit code"} and key not in fields:
                fields[key] = value.strip()
        state = fields.get("state", "unknown")
        pid = f", pid {fields['pid']}" if "pid" in fields else ""
        last = f", last exit: {fields['last exit code']}" if "last exit code" in fields else ""
        report.lines += [f"{LAUNCHD_LABEL}: {state}{pid}{last}", f"logs: {self.log_dir / LOG_NAME}"]
        report.running = state == "running"
        return report

    def start(self, settings: Settings) -> Report:
        if self._loaded():
            self._must(["launchctl", "kickstart", self.target])
        else:
            self._must(["launchctl", "bootstrap", self.domain, str(self.plist)])
        self._wait_until_ready(settings)
        return Report([f"govuk-imds is running as a LaunchAgent on 127.0.0.1:{settings.port}"], running=True)

    def stop(self) -> Report:
        if self._loaded():
            self._must(["launchctl", "bootout", self.target])
        return Report(["govuk-imds stopped (LaunchAgent; it starts again at the next login)"])

    def _wait_until_ready(self, settings: Settings) -> None:
        """launchctl returns once the process is spawned; the daemon is ready when its control socket answers."""
        if not self.host.wait_for_daemon:
            return
        deadline = time.monotonic() + control.START_TIMEOUT_SECONDS
        while True:
            try:
                control.request(settings.runtime.control_socket, {"op": "ping"}, timeout=2)
            except (DaemonNotRunning, ControlError):
                if time.monotonic() > deadline:
                    raise ServiceManagerError(
                        f"the LaunchAgent did not answer within {control.START_TIMEOUT_SECONDS:.0f} s; "
                        f"see {self.log_dir / LOG_NAME}"
                    ) from None
                time.sleep(0.1)
            else:
                return
