"""The unit files and the LaunchAgent: what the repository holds, what `service install` renders, and what
systemd and plistlib make of them."""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from govuk_imds.autostart.templates import (
    LAUNCHD_LABEL,
    PLIST_NAME,
    SERVICE_UNIT,
    SOCKET_UNIT,
    render_launch_agent,
    render_socket_unit,
    service_unit_for,
    template_files,
)
from govuk_imds.config.locations import LAUNCHD_SOCKET_NAME
from tests.support.world import BIN, require

REPOSITORY = Path(__file__).resolve().parents[2]
ENTRY_POINT = BIN / "govuk-imds"
#: `systemd-analyze security --offline=yes` on the shipped service unit (systemd 252, Debian 12). The offline
#: review scores a unit without User= as if it ran as root, so the capability lines count against it although a
#: user service holds no capabilities. A higher number means a sandbox setting was lost.
DOCUMENTED_EXPOSURE = 5.1


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    require(tool is not None, "systemd-analyze (Debian package systemd)")
    assert tool is not None
    return tool


def analyze(tmp_path: Path, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "xdg-runtime"  # the user manager's scope needs a runtime dir to exist
    runtime.mkdir(mode=0o700, exist_ok=True)
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_RUNTIME_DIR": str(runtime), "LANG": "C.UTF-8"}
    return subprocess.run(
        [systemd_analyze(), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=tmp_path,
        check=False,
    )


def write_units(directory: Path, service: str, socket_unit: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SERVICE_UNIT).write_text(service)
    (directory / SOCKET_UNIT).write_text(socket_unit)
    return directory / SOCKET_UNIT, directory / SERVICE_UNIT


def test_the_repository_copies_are_the_templates_rendered_with_placeholders() -> None:
    for relative, content in template_files().items():
        path = REPOSITORY / relative
        assert path.read_bytes() == content, f"{relative} is stale: regenerate it from templates.template_files()"


def test_the_checked_in_units_hold_the_settings_the_issue_asks_for() -> None:
    service = (REPOSITORY / "systemd" / SERVICE_UNIT).read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "UMask=0077",
        "LimitCORE=0",
        "LimitNOFILE=8192",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "Requires=govuk-imds.socket",
        "ExecStart=%h/.local/bin/govuk-imds serve",
    ):
        assert line in service.splitlines(), line
    # Settings that need to drop capabilities stop a user service with 218/CAPABILITIES.
    for absent in ("CapabilityBoundingSet=", "PrivateDevices=", "ProtectClock=", "ProtectKernelModules=", "User="):
        assert not any(line.startswith(absent) for line in service.splitlines()), absent
    socket_unit = (REPOSITORY / "systemd" / SOCKET_UNIT).read_text()
    assert "ListenStream=127.0.0.1:9911" in socket_unit.splitlines()
    assert not any(line.startswith(("ReusePort=", "FreeBind=", "BindIPv6Only=")) for line in socket_unit.splitlines())


def test_the_socket_unit_carries_the_configured_port() -> None:
    assert "ListenStream=127.0.0.1:24680\n" in render_socket_unit(24680)
    assert "9911" not in render_socket_unit(24680)


def test_installed_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    socket_file, service_file = write_units(
        tmp_path / "units", service_unit_for([str(ENTRY_POINT)]), render_socket_unit(9911)
    )
    assert f"ExecStart={ENTRY_POINT} serve\n" in service_file.read_text()
    for scope in ("--user", "--system"):
        verified = analyze(tmp_path, "verify", scope, socket_file, service_file)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout + verified.stderr == "", "systemd warned about the units"


def test_verify_catches_a_mistake(tmp_path: Path) -> None:
    """Guard against a vacuous pass: a misspelt setting is reported (systemd still exits 0 for it)."""
    service = service_unit_for([str(ENTRY_POINT)]).replace("PrivateTmp=yes", "PrivateTemp=yes")
    socket_file, service_file = write_units(tmp_path / "units", service, render_socket_unit(9911))
    verified = analyze(tmp_path, "verify", "--user", socket_file, service_file)
    assert "Unknown key" in verified.stderr and "PrivateTemp" in verified.stderr


def test_paths_with_spaces_and_percent_signs_reach_systemd_intact(tmp_path: Path) -> None:
    """systemd would expand %h or split at the space; verify finds the command only if quoting is right."""
    odd = tmp_path / "my tools 100%" / "bin"
    odd.mkdir(parents=True)
    (odd / "govuk-imds").symlink_to(ENTRY_POINT)
    environment = {"AWS_CONFIG_FILE": str(tmp_path / "aws 50%" / 'say "config"')}
    service = service_unit_for([str(odd / "govuk-imds")], environment)
    assert 'ExecStart="' in service and "100%%" in service
    socket_file, service_file = write_units(tmp_path / "units", service, render_socket_unit(9911))
    verified = analyze(tmp_path, "verify", "--user", socket_file, service_file)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout + verified.stderr == ""
    expected = str(tmp_path / "aws 50%%" / 'say \\"config\\"')
    assert f'Environment="AWS_CONFIG_FILE={expected}"\n' in service


def test_security_exposure_stays_at_the_documented_level(tmp_path: Path) -> None:
    _, service_file = write_units(tmp_path / "units", service_unit_for([str(ENTRY_POINT)]), render_socket_unit(9911))
    reviewed = analyze(tmp_path, "security", "--user", "--offline=yes", "--no-pager", service_file)
    assert reviewed.returncode == 0, reviewed.stderr
    match = re.search(r"Overall exposure level for govuk-imds\.service: (\d+\.\d)", reviewed.stdout)
    assert match, reviewed.stdout[-500:]
    assert float(match.group(1)) <= DOCUMENTED_EXPOSURE, reviewed.stdout


# -- launchd -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["repository", "rendered"])
def test_the_launch_agent_parses_and_holds_the_keys(source: str, tmp_path: Path) -> None:
    if source == "repository":
        data = (REPOSITORY / "launchd" / PLIST_NAME).read_bytes()
        home = Path("/Users/USERNAME")
        program = str(home / ".local" / "bin" / "govuk-imds")
    else:
        home = tmp_path / "Users" / "someone"
        program = str(ENTRY_POINT)
        data = render_launch_agent([program], home, tmp_path / "runtime", {"AWS_CONFIG_FILE": "/elsewhere/config"},
                                   9911)
    agent = plistlib.loads(data)
    assert agent["Label"] == LAUNCHD_LABEL
    assert agent["ProgramArguments"] == [program, "serve"]
    assert Path(agent["ProgramArguments"][0]).is_absolute()
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    log = str(home / "Library" / "Logs" / "govuk-imds" / "govuk-imds.log")
    assert agent["StandardOutPath"] == agent["StandardErrorPath"] == log
    assert agent["LimitLoadToSessionType"] == "Aqua"
    assert agent["Umask"] == 0o077
    assert agent["SoftResourceLimits"] == agent["HardResourceLimits"] == {"Core": 0, "NumberOfFiles": 8192}
    # launchd holds the port, loopback only, as the systemd socket unit does; the daemon asks for it by this name.
    assert agent["Sockets"] == {LAUNCHD_SOCKET_NAME: {"SockNodeName": "127.0.0.1", "SockServiceName": "9911",
                                                      "SockType": "stream", "SockFamily": "IPv4"}}
    assert "GOVUK_IMDS_RUNTIME_DIR" in agent["EnvironmentVariables"]
    if source == "rendered":
        assert agent["EnvironmentVariables"] == {
            "GOVUK_IMDS_RUNTIME_DIR": str(tmp_path / "runtime"),
            "AWS_CONFIG_FILE": "/elsewhere/config",
        }
