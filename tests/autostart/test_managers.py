"""`govuk-imds service install | uninstall | status` in a temporary home, with systemctl and launchctl recorded.

CI has no user systemd and no launchd, so the service-manager calls go through the ``Runner`` seam: a recorder
here, and in one test a fake ``systemctl`` on PATH reached through the real ``SubprocessRunner``. What systemd
itself makes of the units is in test_units.py (and the units ran under a real systemd user manager while this was
built, see docs/service.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import plistlib
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from govuk_imds.autostart.host import Host, installed_command
from govuk_imds.autostart.platform import installed, start_service, stop_service
from govuk_imds.autostart.templates import LAUNCHD_LABEL
from govuk_imds.cli.autostart import add_commands
from govuk_imds.config.settings import Settings, load_settings
from govuk_imds.errors import ServiceManagerError
from tests.support.world import BIN

ENTRY_POINT = BIN / "govuk-imds"
UID = 4321
UNITS = ["govuk-imds.socket", "govuk-imds.service"]

Answer = tuple[int, str, str]


@dataclass
class Recorder:
    """A ``Runner`` that records each command and answers from a script (default: success, no output)."""

    script: Callable[[list[str]], Answer | None] = lambda argv: None
    calls: list[list[str]] = field(default_factory=list)

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        self.calls.append(command)
        returncode, stdout, stderr = self.script(command) or (0, "", "")
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)


@dataclass
class Machine:
    home: Path
    runtime: Path
    environ: dict[str, str]
    recorder: Recorder

    def host(self, platform: str = "linux", **changes: Any) -> Host:
        host = Host(
            environ=self.environ,
            platform=platform,
            uid=UID,
            runner=self.recorder,
            argv0=str(ENTRY_POINT),
            python=sys.executable,
            wait_for_daemon=False,
        )
        return replace(host, **changes)

    def settings(self) -> Settings:
        return load_settings(self.environ)

    @property
    def unit_dir(self) -> Path:
        return self.home / ".config" / "systemd" / "user"

    @property
    def plist(self) -> Path:
        return self.home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    home = tmp_path / "home"
    home.mkdir()
    runtime = Path(os.environ.get("TMPDIR", "/tmp")) / f"imds-svc-{os.getpid()}-{id(tmp_path)}"
    runtime.mkdir(mode=0o700)
    environ = {
        "HOME": str(home),
        "PATH": f"{BIN}:/usr/bin:/bin",
        "XDG_RUNTIME_DIR": str(runtime),
        "LANG": "C.UTF-8",
    }
    yield Machine(home, runtime, environ, Recorder())
    for path in sorted(runtime.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    runtime.rmdir()


def run_cli(host: Host, settings: Settings, *argv: str) -> int:
    """The way the CLI registers a command group: `add_commands(command)` with its `command` function."""
    parser = argparse.ArgumentParser(prog="govuk-imds")
    commands = parser.add_subparsers(dest="command")

    def command(
        name: str, handler: Callable[[argparse.Namespace, Settings], int], summary: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    add_commands(command, host=host)
    arguments = parser.parse_args(argv)
    return int(arguments.handler(arguments, settings))


def systemctl(*arguments: str) -> list[str]:
    return ["systemctl", "--user", *arguments]


# -- systemd -------------------------------------------------------------------------------------------------------


def test_install_writes_both_units_with_the_real_command_and_starts_them(
    machine: Machine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(machine.host(), machine.settings(), "service", "install") == 0
    service = (machine.unit_dir / "govuk-imds.service").read_text()
    socket_unit = (machine.unit_dir / "govuk-imds.socket").read_text()
    assert f"\nExecStart={ENTRY_POINT} serve\n" in service
    assert "%h/.local/bin" not in service
    assert "\nListenStream=127.0.0.1:9911\n" in socket_unit
    assert machine.recorder.calls == [
        systemctl("daemon-reload"),
        systemctl("enable", *UNITS),
        systemctl("start", *UNITS),
    ]
    for unit in UNITS:
        assert stat.S_IMODE((machine.unit_dir / unit).stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert "journalctl --user -u govuk-imds.service" in out
    assert installed(machine.environ, platform="linux")


def test_install_uses_the_configured_port_and_pins_a_chosen_aws_config(machine: Machine) -> None:
    config = machine.home / "elsewhere" / "imds.toml"
    config.parent.mkdir()
    config.write_text("port = 24680\n")
    machine.environ["GOVUK_IMDS_CONFIG"] = str(config)
    machine.environ["AWS_CONFIG_FILE"] = str(machine.home / "work" / "aws-config")
    run_cli(machine.host(), machine.settings(), "service", "install")
    service = (machine.unit_dir / "govuk-imds.service").read_text()
    assert "\nListenStream=127.0.0.1:24680\n" in (machine.unit_dir / "govuk-imds.socket").read_text()
    # The service manager does not run the user's shell: the files the CLI reads must be named for the daemon.
    assert f'\nEnvironment="GOVUK_IMDS_CONFIG={config}"\n' in service
    assert f'\nEnvironment="AWS_CONFIG_FILE={machine.home / "work" / "aws-config"}"\n' in service


def test_a_port_chosen_by_variable_is_pinned_for_the_daemon(machine: Machine) -> None:
    machine.environ["GOVUK_IMDS_PORT"] = "13579"
    run_cli(machine.host(), machine.settings(), "service", "install")
    assert "\nListenStream=127.0.0.1:13579\n" in (machine.unit_dir / "govuk-imds.socket").read_text()
    assert '\nEnvironment="GOVUK_IMDS_PORT=13579"\n' in (machine.unit_dir / "govuk-imds.service").read_text()


def test_default_files_are_not_pinned(machine: Machine) -> None:
    run_cli(machine.host(), machine.settings(), "service", "install")
    assert "Environment=" not in (machine.unit_dir / "govuk-imds.service").read_text()


def test_a_runtime_dir_the_service_cannot_share_is_warned_about(
    machine: Machine, capsys: pytest.CaptureFixture[str]
) -> None:
    machine.environ["GOVUK_IMDS_RUNTIME_DIR"] = str(machine.home / "run")
    run_cli(machine.host(), machine.settings(), "service", "install")
    err = capsys.readouterr().err
    assert f"the service keeps its runtime files in {machine.runtime / 'govuk-imds'}" in err
    assert "unset it" in err


def test_reinstalling_stops_the_running_units_first(machine: Machine) -> None:
    run_cli(machine.host(), machine.settings(), "service", "install")
    machine.recorder.calls.clear()
    run_cli(machine.host(), machine.settings(), "service", "install")
    assert machine.recorder.calls[0] == systemctl("stop", *UNITS)
    assert machine.recorder.calls[1:] == [
        systemctl("daemon-reload"),
        systemctl("enable", *UNITS),
        systemctl("start", *UNITS),
    ]


def test_a_failed_enable_leaves_nothing_behind(machine: Machine) -> None:
    machine.recorder.script = lambda argv: (
        (1, "", "Failed to connect to bus: No medium found\n") if "enable" in argv else None
    )
    with pytest.raises(ServiceManagerError, match=r"`systemctl --user enable .*` failed: Failed to connect to bus"):
        run_cli(machine.host(), machine.settings(), "service", "install")
    assert not (machine.unit_dir / "govuk-imds.service").exists()
    assert not (machine.unit_dir / "govuk-imds.socket").exists()
    assert machine.recorder.calls[-1] == systemctl("daemon-reload")
    assert not installed(machine.environ, platform="linux")


def test_a_failed_start_keeps_the_units_and_points_at_the_journal(machine: Machine) -> None:
    machine.recorder.script = lambda argv: (
        (1, "", 'Job failed. See "journalctl --user -xeu govuk-imds.service" for details.\n')
        if "start" in argv
        else None
    )
    with pytest.raises(ServiceManagerError) as raised:
        run_cli(machine.host(), machine.settings(), "service", "install")
    message = str(raised.value)
    assert "\n" not in message
    assert "the units are installed: see `journalctl --user -u govuk-imds.service`" in message
    assert "govuk-imds service uninstall" in message
    assert installed(machine.environ, platform="linux")


def test_uninstall_disables_and_removes_the_units(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(machine.host(), machine.settings(), "service", "install")
    machine.recorder.calls.clear()
    assert run_cli(machine.host(), machine.settings(), "service", "uninstall") == 0
    assert machine.recorder.calls == [
        systemctl("disable", "--now", *UNITS),
        systemctl("daemon-reload"),
        systemctl("reset-failed", *UNITS),
    ]
    assert list(machine.unit_dir.iterdir()) == []
    assert not installed(machine.environ, platform="linux")
    assert "removed" in capsys.readouterr().out


def test_uninstall_when_not_installed_does_nothing(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(machine.host(), machine.settings(), "service", "uninstall") == 0
    assert machine.recorder.calls == []
    assert "not installed" in capsys.readouterr().out


SHOW = (
    "Id=govuk-imds.socket\nLoadState=loaded\nActiveState=active\nSubState=listening\nUnitFileState=enabled\n"
    "MainPID=0\n\n"
    "Id=govuk-imds.service\nLoadState=loaded\nActiveState={state}\nSubState={sub}\nUnitFileState=enabled\n"
    "MainPID={pid}\n"
)


@pytest.mark.parametrize(
    ("state", "sub", "pid", "status", "shown"),
    [
        ("active", "running", "4242", 0, "govuk-imds.service: enabled, active (running), pid 4242"),
        ("failed", "failed", "0", 7, "govuk-imds.service: enabled, failed (failed)"),
    ],
)
def test_status_reports_each_unit(
    machine: Machine, capsys: pytest.CaptureFixture[str], state: str, sub: str, pid: str, status: int, shown: str
) -> None:
    run_cli(machine.host(), machine.settings(), "service", "install")
    capsys.readouterr()
    machine.recorder.script = lambda argv: (
        (0, SHOW.format(state=state, sub=sub, pid=pid), "") if "show" in argv else None
    )
    assert run_cli(machine.host(), machine.settings(), "service", "status") == status
    lines = capsys.readouterr().out.splitlines()
    assert "govuk-imds.socket: enabled, active (listening)" in lines
    assert shown in lines
    assert machine.recorder.calls[-1][:3] == systemctl("show")


def test_status_when_not_installed(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(machine.host(), machine.settings(), "service", "status") == 7
    assert "`govuk-imds service install` installs it" in capsys.readouterr().out
    assert machine.recorder.calls == []


def test_service_needs_an_action(machine: Machine) -> None:
    with pytest.raises(SystemExit) as raised:
        run_cli(machine.host(), machine.settings(), "service")
    assert raised.value.code == 2


def test_start_and_stop_use_systemctl(machine: Machine) -> None:
    settings = machine.settings()
    assert start_service(settings, host=machine.host()).running
    stop_service(host=machine.host())
    assert machine.recorder.calls == [systemctl("start", *UNITS), systemctl("stop", *UNITS)]


def test_through_a_real_process_and_a_fake_systemctl(machine: Machine, tmp_path: Path) -> None:
    """The real SubprocessRunner and Host.current(): the unit names the command installed next to this Python."""
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "systemctl").write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$SYSTEMCTL_LOG"\n')
    (fake / "systemctl").chmod(0o755)
    log = tmp_path / "systemctl.log"
    program = (
        "import argparse, os, sys\n"
        "from govuk_imds.config.settings import load_settings\n"
        "from govuk_imds.cli.autostart import add_commands\n"
        "parser = argparse.ArgumentParser()\n"
        "commands = parser.add_subparsers(dest='command')\n"
        "def command(name, handler, summary):\n"
        "    sub = commands.add_parser(name)\n"
        "    sub.set_defaults(handler=handler)\n"
        "    return sub\n"
        "add_commands(command)\n"
        "arguments = parser.parse_args(sys.argv[1:])\n"
        "sys.exit(arguments.handler(arguments, load_settings(os.environ)))\n"
    )
    environment = {**machine.environ, "PATH": f"{fake}:/usr/bin:/bin", "SYSTEMCTL_LOG": str(log)}
    for action in ("install", "uninstall"):
        done = subprocess.run(
            [sys.executable, "-c", program, "service", action],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        if action == "install":
            assert f"\nExecStart={ENTRY_POINT} serve\n" in (machine.unit_dir / "govuk-imds.service").read_text()
    assert log.read_text().splitlines() == [
        "--user daemon-reload",
        "--user enable govuk-imds.socket govuk-imds.service",
        "--user start govuk-imds.socket govuk-imds.service",
        "--user disable --now govuk-imds.socket govuk-imds.service",
        "--user daemon-reload",
        "--user reset-failed govuk-imds.socket govuk-imds.service",
    ]
    assert not (machine.unit_dir / "govuk-imds.service").exists()


def test_a_missing_systemctl_is_one_clear_line(machine: Machine, tmp_path: Path) -> None:
    from govuk_imds.autostart.host import SubprocessRunner

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    runner = SubprocessRunner({**machine.environ, "PATH": str(empty)})
    with pytest.raises(ServiceManagerError, match=r"^`systemctl` was not found"):
        start_service(machine.settings(), host=machine.host(runner=runner))


# -- a daemon already running ----------------------------------------------------------------------------------


@contextlib.contextmanager
def answering_daemon(control_socket: Path, pid: int = 4242) -> Iterator[list[dict[str, object]]]:
    """A control socket that answers like a running daemon; yields the requests it received."""
    control_socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(control_socket))
    server.listen(8)
    server.settimeout(0.05)  # how soon the thread notices the end of the test
    requests: list[dict[str, object]] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(10)
            with connection:
                requests.append(json.loads(connection.makefile("rb").readline()))
                connection.sendall(json.dumps({"ok": True, "pid": pid, "port": 9911}).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield requests
    finally:
        stop.set()
        server.close()
        thread.join(10)
        control_socket.unlink(missing_ok=True)


def test_install_refuses_while_a_background_daemon_holds_the_port(machine: Machine) -> None:
    settings = machine.settings()
    with answering_daemon(settings.runtime.control_socket), pytest.raises(ServiceManagerError) as raised:
        run_cli(machine.host(), settings, "service", "install")
    assert str(raised.value) == (
        "a govuk-imds daemon started with `govuk-imds start` is running (pid 4242); "
        "run `govuk-imds stop`, then `govuk-imds service install` again"
    )
    assert machine.recorder.calls == []
    assert not machine.unit_dir.exists()


# -- launchd -------------------------------------------------------------------------------------------------------


def launchctl_not_loaded(argv: list[str]) -> Answer | None:
    if argv[:2] == ["launchctl", "print"]:
        return 113, "", f'Could not find service "{LAUNCHD_LABEL}" in domain for port\n'
    return None


def test_macos_install_writes_the_agent_and_bootstraps_it_into_the_gui_session(
    machine: Machine, capsys: pytest.CaptureFixture[str]
) -> None:
    machine.recorder.script = launchctl_not_loaded
    settings = machine.settings()
    assert run_cli(machine.host("darwin"), settings, "service", "install") == 0
    agent = plistlib.loads(machine.plist.read_bytes())
    assert agent["ProgramArguments"] == [str(ENTRY_POINT), "serve"]
    log_dir = machine.home / "Library" / "Logs" / "govuk-imds"
    assert agent["StandardErrorPath"] == str(log_dir / "govuk-imds.log")
    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    assert agent["EnvironmentVariables"]["GOVUK_IMDS_RUNTIME_DIR"] == str(settings.runtime.root)
    assert machine.recorder.calls == [
        ["launchctl", "enable", f"gui/{UID}/{LAUNCHD_LABEL}"],
        ["launchctl", "bootstrap", f"gui/{UID}", str(machine.plist)],
    ]
    assert str(log_dir / "govuk-imds.log") in capsys.readouterr().out
    assert installed(machine.environ, platform="darwin")
    assert not installed(machine.environ, platform="linux")


def test_macos_reinstall_boots_the_old_agent_out_first(machine: Machine) -> None:
    run_cli(machine.host("darwin"), machine.settings(), "service", "install")
    machine.recorder.calls.clear()
    run_cli(machine.host("darwin"), machine.settings(), "service", "install")  # print succeeds: loaded
    assert machine.recorder.calls[:2] == [
        ["launchctl", "print", f"gui/{UID}/{LAUNCHD_LABEL}"],
        ["launchctl", "bootout", f"gui/{UID}/{LAUNCHD_LABEL}"],
    ]


def test_macos_failed_bootstrap_removes_the_agent(machine: Machine) -> None:
    machine.recorder.script = lambda argv: (
        (5, "", "Bootstrap failed: 5: Input/output error\n") if "bootstrap" in argv else None
    )
    with pytest.raises(ServiceManagerError, match="Bootstrap failed: 5: Input/output error"):
        run_cli(machine.host("darwin"), machine.settings(), "service", "install")
    assert not machine.plist.exists()


def test_macos_uninstall_boots_out_and_removes_the_agent(machine: Machine) -> None:
    run_cli(machine.host("darwin"), machine.settings(), "service", "install")
    machine.recorder.calls.clear()
    assert run_cli(machine.host("darwin"), machine.settings(), "service", "uninstall") == 0
    assert machine.recorder.calls == [["launchctl", "bootout", f"gui/{UID}/{LAUNCHD_LABEL}"]]
    assert not machine.plist.exists()
    assert not installed(machine.environ, platform="darwin")


def test_macos_status_reads_launchctl_print(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(machine.host("darwin"), machine.settings(), "service", "install")
    capsys.readouterr()
    printed = (
        f"gui/{UID}/{LAUNCHD_LABEL} = {{\n\tactive count = 1\n\tstate = running\n\tpid = 777\n"
        "\tlast exit code = 0\n}\n"
    )
    machine.recorder.script = lambda argv: (0, printed, "") if argv[:2] == ["launchctl", "print"] else None
    assert run_cli(machine.host("darwin"), machine.settings(), "service", "status") == 0
    assert f"{LAUNCHD_LABEL}: running, pid 777, last exit: 0" in capsys.readouterr().out
    machine.recorder.script = launchctl_not_loaded
    assert run_cli(machine.host("darwin"), machine.settings(), "service", "status") == 7


def test_macos_start_waits_until_the_daemon_answers(machine: Machine) -> None:
    run_cli(machine.host("darwin"), machine.settings(), "service", "install")
    settings = machine.settings()
    machine.recorder.calls.clear()
    machine.recorder.script = launchctl_not_loaded
    with answering_daemon(settings.runtime.control_socket) as requests:
        start_service(settings, host=machine.host("darwin", wait_for_daemon=True))
    assert requests == [{"op": "ping"}]
    assert machine.recorder.calls[-1] == ["launchctl", "bootstrap", f"gui/{UID}", str(machine.plist)]


def test_macos_stop_boots_the_agent_out(machine: Machine) -> None:
    stop_service(host=machine.host("darwin"))
    assert machine.recorder.calls == [
        ["launchctl", "print", f"gui/{UID}/{LAUNCHD_LABEL}"],
        ["launchctl", "bootout", f"gui/{UID}/{LAUNCHD_LABEL}"],
    ]


def test_other_platforms_are_told_what_to_do_instead(machine: Machine) -> None:
    with pytest.raises(ServiceManagerError, match=r"supports systemd \(Linux\) and launchd \(macOS\), not win32"):
        run_cli(machine.host("win32"), machine.settings(), "service", "install")
    assert not installed(machine.environ, platform="win32")


# -- which command the service runs --------------------------------------------------------------------------------


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_command_the_user_ran_wins_and_its_link_is_kept(machine: Machine, tmp_path: Path) -> None:
    link = tmp_path / "local" / "bin" / "govuk-imds"
    link.parent.mkdir(parents=True)
    link.symlink_to(ENTRY_POINT)  # pipx's ~/.local/bin entry: a link into its venv that survives upgrades
    assert installed_command(machine.host(argv0=str(link))) == [str(link)]


def test_the_script_next_to_python_is_used_for_python_dash_m(machine: Machine, tmp_path: Path) -> None:
    script = executable(tmp_path / "venv" / "bin" / "govuk-imds")
    host = machine.host(argv0="/somewhere/govuk_imds/__main__.py", python=str(tmp_path / "venv" / "bin" / "python"))
    assert installed_command(host) == [str(script)]


def test_path_is_the_last_resort(machine: Machine, tmp_path: Path) -> None:
    script = executable(tmp_path / "on-path" / "govuk-imds")
    machine.environ["PATH"] = str(script.parent)
    host = machine.host(argv0="-c", python=str(tmp_path / "no-venv" / "python"))
    assert installed_command(host) == [str(script)]


def test_a_file_that_is_not_executable_is_skipped(machine: Machine, tmp_path: Path) -> None:
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "govuk-imds").write_text("not executable")
    machine.environ["PATH"] = str(tmp_path / "nothing-here")
    host = machine.host(argv0="-c", python=str(tmp_path / "venv" / "bin" / "python"))
    with pytest.raises(ServiceManagerError, match=r"^cannot find the installed `govuk-imds` command"):
        installed_command(host)
