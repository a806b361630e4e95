"""The systemd units and the LaunchAgent plist, rendered from templates in code.

An installed package carries them without package data. The repository's ``systemd/`` and ``launchd/`` files are
these templates rendered with placeholder paths (``template_files``), and a test keeps them identical. ``install``
writes the real absolute path of the installed ``govuk-imds`` command, never a placeholder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..config.locations import APP, DESCRIPTOR_LIMIT, LAUNCHD_SOCKET_NAME
from ..config.settings import DEFAULT_PORT
from ..errors import ServiceManagerError

SERVICE_UNIT = "govuk-imds.service"
SOCKET_UNIT = "govuk-imds.socket"
UNITS = (SOCKET_UNIT, SERVICE_UNIT)
LAUNCHD_LABEL = "uk.gov.govuk-imds"
PLIST_NAME = f"{LAUNCHD_LABEL}.plist"
LOG_NAME = "govuk-imds.log"


#: What the repository's copies of the templates hold where ``install`` writes real paths. ``%h`` is systemd's
#: specifier for the home directory: the checked-in unit works as it is for a ``pipx install``.
PLACEHOLDER_SYSTEMD_EXEC_START = "%h/.local/bin/govuk-imds serve"
PLACEHOLDER_HOME = Path("/Users/USERNAME")
PLACEHOLDER_MACOS_RUNTIME_DIR = Path("/private/var/folders/xx/USER_TMPDIR/T/govuk-imds")

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
# Far more descriptors than the 1,024 a user service gets by default: the daemon caps its connections below this.
LimitNOFILE={descriptor_limit}
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
    return _SERVICE_TEMPLATE.format(exec_start=exec_start, environment=lines, descriptor_limit=DESCRIPTOR_LIMIT)


def service_unit_for(command: Sequence[str], environment: Mapping[str, str] | None = None) -> str:
    return render_service_unit(" ".join(_systemd_word(word) for word in [*command, "serve"]), environment)


def render_socket_unit(port: int) -> str:
    if not 1 <= port <= 65535:
        raise ServiceManagerError(f"port {port} is not between 1 and 65535")
    return _SOCKET_TEMPLATE.format(port=port)


def render_launch_agent(
    command: Sequence[str], home: Path, runtime_dir: Path, environment: Mapping[str, str], port: int
) -> bytes:
    """The LaunchAgent plist. launchd expands neither ``~`` nor variables, so every path is absolute.

    The runtime dir is pinned: launchd does not give agents the login shell's ``$TMPDIR``, where the CLI looks.
    ``Sockets`` makes launchd hold ``127.0.0.1:<port>`` itself, as systemd's socket unit does: the port stays taken
    while the daemon restarts, so nobody else can listen there and collect tokens meanwhile, and the tokens can be
    kept across the restart.
    """
    if not 1 <= port <= 65535:
        raise ServiceManagerError(f"port {port} is not between 1 and 65535")
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
        "SoftResourceLimits": {"Core": 0, "NumberOfFiles": DESCRIPTOR_LIMIT},
        "HardResourceLimits": {"Core": 0, "NumberOfFiles": DESCRIPTOR_LIMIT},
        "Sockets": {
            LAUNCHD_SOCKET_NAME: {
                "SockNodeName": "127.0.0.1",  # loopback only: the daemon refuses a socket bound anywhere else
                "SockServiceName": str(port),
                "SockType": "stream",
                "SockFamily": "IPv4",
            }
        },
        "EnvironmentVariables": {"GOVUK_IMDS_RUNTIME_DIR": str(runtime_dir), **environment},
    }
    return plistlib.dumps(document, fmt=plistlib.FMT_XML, sort_keys=True)


def template_files() -> dict[str, bytes]:
    """The repository's ``systemd/`` and ``launchd/`` files, by path relative to the repository root."""
    return {
        f"systemd/{SERVICE_UNIT}": render_service_unit(PLACEHOLDER_SYSTEMD_EXEC_START).encode(),
        f"systemd/{SOCKET_UNIT}": render_socket_unit(DEFAULT_PORT).encode(),
        f"launchd/{PLIST_NAME}": render_launch_agent(
            [str(PLACEHOLDER_HOME / ".local" / "bin" / APP)],
            PLACEHOLDER_HOME,
            PLACEHOLDER_MACOS_RUNTIME_DIR,
            {},
            DEFAULT_PORT,
        ),
    }
