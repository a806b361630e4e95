"""``govuk-imds service install | uninstall | status``: the daemon under systemd or launchd (``autostart/``)."""

from __future__ import annotations

import argparse
import sys

from ..autostart.host import Host
from ..autostart.platform import manager_for
from ..config.settings import Settings
from ..errors import DaemonNotRunning
from ._common import AddCommand


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
