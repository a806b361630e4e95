"""`govuk-imds service install | uninstall | status`: run the daemon under the platform's service manager.

Linux: two systemd user units, ``govuk-imds.socket`` (holds ``127.0.0.1:<port>``, so the port stays taken while the
daemon restarts) and ``govuk-imds.service`` (``Type=notify``, started at login and by the socket), in
``$XDG_CONFIG_HOME/systemd/user``. macOS: a LaunchAgent, ``~/Library/LaunchAgents/uk.gov.govuk-imds.plist``,
bootstrapped into the user's GUI session (``gui/<uid>``) so the Keychain is reachable, logging to
``~/Library/Logs/govuk-imds/``.

The unit files and the plist are rendered from the templates in this module, so an installed package carries them
without package data. The copies in the repository's ``systemd/`` and ``launchd/`` directories are these templates
rendered with placeholder paths, and a test keeps them identical. ``install`` writes the real absolute path of the
installed ``govuk-imds`` command, never a placeholder.

Every call to ``systemctl`` and ``launchctl`` goes through a ``Runner``, so tests record the calls (CI has no user
systemd and no launchd). This module stays light: no boto3, aiohttp or keyring, and it never reads
``os.environ`` at import time.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from . import control
from .config import DEFAULT_PORT, Settings
from .errors import ControlError, DaemonNotRunning, ServiceManagerError
from .locations import APP
from .paths import atomic_write, default_config_file

if TYPE_CHECKING:
    import argparse
    import subprocess

    from .cli import AddCommand

SERVICE_UNIT = "govuk-imds.service"
SOCKET_UNIT = "govuk-imds.socket"
UNITS = (SOCKET_UNIT, SERVICE_UNIT)
LAUNCHD_LABEL = "uk.gov.govuk-imds"
PLIST_NAME = f"{LAUNCHD_LABEL}.plist"
LOG_NAME = "govuk-imds.log"
START_TIMEOUT_SECONDS = 20.0

#: What the repository's copies of the templates hold where ``install`` writes real paths. ``%h`` is systemd's
#: specifier for the home directory: the checked-in unit works as it is for a ``pipx install``.
PLACEHOLDER_SYSTEMD_EXEC_START = "%h/.local/bin/govuk-imds serve"
PLACEHOLDER_HOME = Path("/Users/USERNAME")
PLACEHOLDER_MACOS_RUNTIME_DIR = Path("/private/var/folders/xx/USER_TMPDIR/T/govuk-imds")


# -- the seam ------------------------------------------------------------------------------------------------------


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
    """The absolute path of the installed ``govuk-imds`` command, as the service manager must run it.

    In order: the script this process was started as (what the user typed, e.g. pipx's ``~/.local/bin`` link, kept
    as a link so upgrades keep working); the script next to this interpreter (a virtualenv run as ``python -m``);
    ``govuk-imds`` on ``PATH``.
    """
    candidates: list[Path] = []
    if host.argv0 and Path(host.argv0).name == APP:
        candidates.append(Path(os.path.abspath(host.argv0)))
    if host.python:
        candidates.append(Path(host.python).parent / APP)
    found = shutil.which(APP, path=host.environ.get("PATH", os.defpath))
    if found:
        candidates.append(Path(os.path.abspath(found)))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    raise ServiceManagerError(
        "cannot find the installed `govuk-imds` command; install govuk-imds (e.g. `pipx install govuk-imds`) "
        "and run `govuk-imds service install` from it"
    )


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


# -- templates -----------------------------------------------------------------------------------------------------

_SERVICE_TEMPLATE = """\
# govuk-imds as a systemd user service: started at login and by govuk-imds.socket, restarted on failure.
# `govuk-imds service install` writes this file with the real path of the installed command in ExecStart, and
# `govuk-imds service uninstall` removes it. Change settings in govuk-imds's config.toml, then install again.
[Unit]
Description=govuk-imds: short-lived AWS credentials on 127.0.0.1 (ECS container credential endpoint)
Requires=govuk-imds.socket
After=govuk-imds.socket

[Service]
# The daemon sends READY=1 once it serves and STOPPING=1 on shutdown, to $NOTIFY_SOCKET.
Type=notify
ExecStart={exec_start}
ExecReload=kill -HUP $MAINPID
Restart=on-failure
RestartSec=1s
# 2: the configuration is wrong; 7: refused socket, unsafe runtime dir or a second daemon. A person must act.
RestartPreventExitStatus=2 7
TimeoutStopSec=15s
{environment}UMask=0077
LimitCORE=0
# %t/govuk-imds: the control socket and the token files, kept across restarts so open shells keep working.
RuntimeDirectory=govuk-imds
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
SyslogIdentifier=govuk-imds

# Sandboxing. The daemon reads its configs under $HOME, writes %t/govuk-imds, serves loopback TCP, reaches STS
# over TCP, and uses Unix sockets (its control socket, $NOTIFY_SOCKET; the D-Bus user bus stays reachable, though
# only the CLI talks to the keyring).
# - The system-call filters (seccomp) apply in every user manager.
# - The file-system settings need a user namespace. systemd 253 and later create one by themselves (PrivateUsers=)
#   and skip these settings where user namespaces are restricted; systemd 252 (Debian 12) skips them unless
#   PrivateUsers=yes is added in a drop-in (docs/service.md). PrivateUsers=yes is not set here: where user
#   namespaces are unavailable it keeps the service from starting at all.
# - Nothing here drops capabilities (CapabilityBoundingSet=, PrivateDevices=, ProtectClock=, ProtectKernelModules=,
#   ProtectKernelLogs=): a user manager cannot, and the service would fail with status 218/CAPABILITIES. The
#   daemon runs as you and holds no capabilities anyway.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateMounts=yes
PrivateIPC=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
KeyringMode=private
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM

[Install]
WantedBy=default.target
Also=govuk-imds.socket
"""

_SOCKET_TEMPLATE = """\
# The port of govuk-imds's credential endpoint, held by systemd: it stays taken while the daemon restarts, and the
# first request starts govuk-imds.service if it is not running. `govuk-imds service install` writes the port
# configured in config.toml; install again after changing it.
[Unit]
Description=govuk-imds credential endpoint socket (127.0.0.1:{port})

[Socket]
# 127.0.0.1 only: the daemon refuses a socket bound anywhere else. Never ReusePort=: no other process may share it.
ListenStream=127.0.0.1:{port}
NoDelay=yes
Backlog=1024

[Install]
WantedBy=sockets.target
"""


def _systemd_word(word: str) -> str:
    """One ExecStart= argument: specifiers (%) and variables ($) escaped, quoted when it holds anything special."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if escaped and not any(character.isspace() or character in "\"'\\;" for character in escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _systemd_assignment(name: str, value: str) -> str:
    text = f"{name}={value}".replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def render_service_unit(exec_start: str, environment: Mapping[str, str] | None = None) -> str:
    """``govuk-imds.service`` with ``exec_start`` as written (already escaped for systemd)."""
    lines = "".join(f"Environment={_systemd_assignment(name, value)}\n" for name, value in (environment or {}).items())
    return _SERVICE_TEMPLATE.format(exec_start=exec_start, environment=lines)


def service_unit_for(command: Sequence[str], environment: Mapping[str, str] | None = None) -> str:
    return render_service_unit(" ".join(_systemd_word(word) for word in [*command, "serve"]), environment)


def render_socket_unit(port: int) -> str:
    if not 1 <= port <= 65535:
        raise ServiceManagerError(f"port {port} is not between 1 and 65535")
    return _SOCKET_TEMPLATE.format(port=port)


def render_launch_agent(command: Sequence[str], home: Path, runtime_dir: Path, environment: Mapping[str, str]) -> bytes:
    """The LaunchAgent plist. launchd expands neither ``~`` nor variables, so every path is absolute.

    The runtime dir is pinned: launchd does not give agents the login shell's ``$TMPDIR``, where the CLI looks.
    """
    import plistlib

    log = str(home / "Library" / "Logs" / APP / LOG_NAME)
    document = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": [*command, "serve"],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a failure, not after `govuk-imds stop`
        "LimitLoadToSessionType": "Aqua",  # the GUI login session: the one with the Keychain
        "StandardOutPath": log,
        "StandardErrorPath": log,
        "Umask": 0o077,
        "SoftResourceLimits": {"Core": 0},
        "HardResourceLimits": {"Core": 0},
        "EnvironmentVariables": {"GOVUK_IMDS_RUNTIME_DIR": str(runtime_dir), **environment},
    }
    return plistlib.dumps(document, fmt=plistlib.FMT_XML, sort_keys=True)


def template_files() -> dict[str, bytes]:
    """The repository's ``systemd/`` and ``launchd/`` files, by path relative to the repository root."""
    return {
        f"systemd/{SERVICE_UNIT}": render_service_unit(PLACEHOLDER_SYSTEMD_EXEC_START).encode(),
        f"systemd/{SOCKET_UNIT}": render_socket_unit(DEFAULT_PORT).encode(),
        f"launchd/{PLIST_NAME}": render_launch_agent(
            [str(PLACEHOLDER_HOME / ".local" / "bin" / APP)], PLACEHOLDER_HOME, PLACEHOLDER_MACOS_RUNTIME_DIR, {}
        ),
    }


# -- the service managers ------------------------------------------------------------------------------------------


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


def _detail(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip().splitlines()
    return text[-1].rstrip(".") if text else f"exit status {result.returncode}"


class _Base:
    def __init__(self, host: Host) -> None:
        self.host = host

    def _run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return self.host.runner.run(list(argv))

    def _must(self, argv: Sequence[str], hint: str = "") -> subprocess.CompletedProcess[str]:
        result = self._run(argv)
        if result.returncode != 0:
            raise ServiceManagerError(f"`{' '.join(argv)}` failed: {_detail(result)}{hint}")
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


class Systemd(_Base):
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
            report.warnings.append(f"`systemctl --user disable --now` said: {_detail(disabled)}")
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
            report.warnings.append(f"cannot ask systemd: {_detail(result)}")
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


class Launchd(_Base):
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
                    command, self.host.home, settings.runtime.root, pinned_environment(settings, self.host)
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
            report.warnings.append(f"`launchctl bootout {self.target}` said: {_detail(booted_out)}")
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
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                control.request(settings.runtime.control_socket, {"op": "ping"}, timeout=2)
            except (DaemonNotRunning, ControlError):
                if time.monotonic() > deadline:
                    raise ServiceManagerError(
                        f"the LaunchAgent did not answer within {START_TIMEOUT_SECONDS:.0f} s; "
                        f"see {self.log_dir / LOG_NAME}"
                    ) from None
                time.sleep(0.1)
            else:
                return


def manager_for(host: Host) -> ServiceManager:
    if host.platform.startswith("linux"):
        return Systemd(host)
    if host.platform == "darwin":
        return Launchd(host)
    raise ServiceManagerError(
        f"`govuk-imds service` supports systemd (Linux) and launchd (macOS), not {host.platform}; "
        "run `govuk-imds start` at login instead"
    )


# -- what the CLI uses ---------------------------------------------------------------------------------------------


def installed(environ: Mapping[str, str], *, platform: str | None = None) -> bool:
    """Whether `govuk-imds service install` has installed the service for this user (its files exist)."""
    host = Host(environ=environ, platform=platform or sys.platform, uid=os.getuid(), runner=SubprocessRunner(environ))
    try:
        manager = manager_for(host)
    except ServiceManagerError:
        return False
    return any(path.exists() for path in manager.files())


def start_service(settings: Settings, *, host: Host | None = None) -> Report:
    """Start the installed service and return once it serves (systemd waits for READY=1; launchd is polled)."""
    return manager_for(host or Host.current()).start(settings)


def stop_service(*, host: Host | None = None) -> Report:
    """Stop the installed service (and, on Linux, its socket) until the next login or `govuk-imds start`."""
    return manager_for(host or Host.current()).stop()


def add_commands(command: AddCommand, *, host: Host | None = None) -> None:
    """Register `govuk-imds service install | uninstall | status`. ``host`` replaces this machine in tests."""

    def cmd_service(arguments: argparse.Namespace, settings: Settings) -> int:
        manager = manager_for(host or Host.current())
        action = arguments.service_action
        if action == "install":
            report = manager.install(settings)
        elif action == "uninstall":
            report = manager.uninstall()
        else:
            report = manager.status()
        for line in report.warnings:
            print(f"govuk-imds: warning: {line}", file=sys.stderr)
        for line in report.lines:
            print(line)
        if action == "status" and not report.running:
            return DaemonNotRunning.exit_code
        return 0

    service = command("service", cmd_service, "install, uninstall or inspect govuk-imds as a login service")
    actions = service.add_subparsers(dest="service_action", metavar="ACTION", required=True)
    actions.add_parser(
        "install",
        help="write the systemd user units (Linux) or LaunchAgent (macOS), enable and start them",
        description="write the systemd user units (Linux) or LaunchAgent (macOS), enable and start them",
    )
    actions.add_parser(
        "uninstall",
        help="stop and disable the service and remove its files",
        description="stop and disable the service and remove its files",
    )
    actions.add_parser("status", help="show whether the service is installed and running")
