"""Which service manager runs govuk-imds here, and what the CLI asks of it."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from ..config.settings import Settings
from ..errors import ServiceManagerError
from .base import Report, ServiceManager
from .host import Host, SubprocessRunner
from .launchd import Launchd
from .systemd import Systemd


def manager_for(host: Host) -> ServiceManager:
    if host.platform.startswith("linux"):
        return Systemd(host)
    if host.platform == "darwin":
        return Launchd(host)
    raise ServiceManagerError(
        f"`govuk-imds service` supports systemd (Linux) and launchd (macOS), not {host.platform}; "
        "run `govuk-imds start` at login instead"
    )



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
