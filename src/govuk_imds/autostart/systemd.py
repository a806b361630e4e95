"""systemd user units: ``govuk-imds.socket`` holds ``127.0.0.1:<port>`` (so the port stays taken while the daemon
restarts) and ``govuk-imds.service`` (``Type=notify``) runs the daemon, in ``$XDG_CONFIG_HOME/systemd/user``."""

from __future__ import annotations

from pathlib import Path

from ..config.locations import APP
from ..config.settings import Settings
from ..errors import ServiceManagerError
from .base import ManagerBase, Report, detail
from .host import installed_command, pinned_environment
from .templates import SERVICE_UNIT, SOCKET_UNIT, UNITS, render_socket_unit, service_unit_for


class Systemd(ManagerBase):
    """systemd user units, driven with ``systemctl --user``."""

    @property
    def unit_dir(self) -> Path:
        base = self.host.environ.get("XDG_CONFIG_HOME") or str(self.host.home / ".config")
        return Path(base) / "systemd" / "user"

    def files(self) -> list[Path]:
        return [self.unit_dir / SOCKET_UNIT, self.unit_dir / SERVICE_UNIT]

    def _systemctl(self, *arguments: str) -> list[str]:
        return ["systemctl", "--user", *arguments]

    def install(self, settings: Settings) -> Report:
        self._refuse_background_daemon(settings)
        command = installed_command(self.host)
        report = Report()
        runtime = self.host.environ.get("XDG_RUNTIME_DIR")
        if runtime and settings.runtime.root != Path(runtime) / APP:
            report.warnings.append(
                f"the service keeps its runtime files in {Path(runtime) / APP}, but this shell uses "
                f"{settings.runtime.root} (GOVUK_IMDS_RUNTIME_DIR); unset it so the CLI finds the service"
            )
        if any(path.exists() for path in self.files()):
            self._run(self._systemctl("stop", *UNITS))  # a reinstall replaces the running daemon
        socket_file, service_file = self.files()
        self._write(
            {
                socket_file: render_socket_unit(settings.port).encode(),
                service_file: service_unit_for(command, pinned_environment(settings, self.host)).encode(),
            }
        )
        try:
            self._must(self._systemctl("daemon-reload"))
            self._must(self._systemctl("enable", *UNITS))
        except ServiceManagerError:
            self._remove_files()
            self._run(self._systemctl("daemon-reload"))
            raise
        self._must(
            self._systemctl("start", *UNITS),
            f"; the units are installed: see `journalctl --user -u {SERVICE_UNIT}`, fix it and "
            "`govuk-imds start`, or `govuk-imds service uninstall`",
        )
        report.lines += [
            f"installed {socket_file} and {service_file} (ExecStart={command[0]} serve)",
            f"govuk-imds runs as a systemd user service on 127.0.0.1:{settings.port}, started at login;"
            " next: `govuk-imds unlock <environment>`",
            f"logs: journalctl --user -u {SERVICE_UNIT}",
        ]
        report.running = True
        return report

    def uninstall(self) -> Report:
        if not any(path.exists() for path in self.files()):
            return Report(["govuk-imds is not installed as a systemd user service; nothing to do"])
        disabled = self._run(self._systemctl("disable", "--now", *UNITS))
        removed = self._remove_files()
        self._run(self._systemctl("daemon-reload"))
        self._run(self._systemctl("reset-failed", *UNITS))
        report = Report([f"removed {', '.join(str(path) for path in removed)}; the service is stopped"])
        if disabled.returncode != 0:
            report.warnings.append(f"`systemctl --user disable --now` said: {detail(disabled)}")
        return report

    def status(self) -> Report:
        socket_file, service_file = self.files()
        if not service_file.exists():
            return Report(["govuk-imds is not installed as a service; `govuk-imds service install` installs it"])
        result = self._run(
            self._systemctl("show", "--property=Id,LoadState,ActiveState,SubState,UnitFileState,MainPID", *UNITS)
        )
        units = _parse_show(result.stdout)
        report = Report([f"installed: {socket_file}, {service_file}"])
        if result.returncode != 0 or not units:
            report.warnings.append(f"cannot ask systemd: {detail(result)}")
            return report
        for unit in UNITS:
            properties = units.get(unit, {})
            state = f"{properties.get('ActiveState', 'unknown')} ({properties.get('SubState', '?')})"
            pid = properties.get("MainPID", "0")
            running_as = f", pid {pid}" if unit == SERVICE_UNIT and pid not in {"", "0"} else ""
            report.lines.append(f"{unit}: {properties.get('UnitFileState', 'unknown')}, {state}{running_as}")
        report.lines.append(f"logs: journalctl --user -u {SERVICE_UNIT}")
        report.running = units.get(SERVICE_UNIT, {}).get("ActiveState") == "active"
        return report

    def start(self, settings: Settings) -> Report:
        self._must(self._systemctl("start", *UNITS), f"; see `journalctl --user -u {SERVICE_UNIT} -n 20`")
        return Report([f"govuk-imds is running as a systemd user service on 127.0.0.1:{settings.port}"], running=True)

    def stop(self) -> Report:
        self._must(self._systemctl("stop", *UNITS))
        return Report(["govuk-imds stopped (systemd user service; it starts again at the next login)"])


def _parse_show(text: str) -> dict[str, dict[str, str]]:
    """``systemctl show`` output: one block of ``Key=Value`` lines per unit, blocks separated by a blank line."""
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        properties = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in properties:
            units[properties["Id"]] = properties
    return units
