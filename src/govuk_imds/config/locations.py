"""Where govuk-imds's runtime dir and its own command are, with nothing but ``os`` and ``sys``: shared by ``paths``,
the service templates and the lean ``credential-process`` path, which must start in a few milliseconds. Also the
two things the daemon and its service files must agree on."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

APP = "govuk-imds"
#: The name of the socket the LaunchAgent's ``Sockets`` key makes launchd hold (the daemon asks for it by name).
LAUNCHD_SOCKET_NAME = "Listener"
#: The descriptor limit the daemon asks for at start, and the systemd unit and the LaunchAgent set: its connection
#: cap (daemon/admission.py) stays far above what a laptop's tools open, with room to spare below the limit.
DESCRIPTOR_LIMIT = 8192


def runtime_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_RUNTIME_DIR/govuk-imds`` on Linux; a per-user temporary directory elsewhere."""
    explicit = environ.get("GOVUK_IMDS_RUNTIME_DIR")
    if explicit:
        return explicit
    xdg = environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, APP)
    if sys.platform == "darwin" and environ.get("TMPDIR"):
        # macOS gives each user a private 0700 $TMPDIR under /var/folders.
        return os.path.join(environ["TMPDIR"], APP)
    # Last resort: checked to be ours and 0700 before use, so a squatter's directory is refused.
    return f"/tmp/{APP}-{os.getuid()}"  # noqa: S108


def installed_command(argv0: str, python: str, search_path: str) -> list[str] | None:
    """The absolute path of the installed ``govuk-imds`` command, for files that outlive this shell (service units,
    ``credential_process`` profiles); ``None`` when there is none.

    In order: the script this process was started as (what the user typed, e.g. pipx's ``~/.local/bin`` link, kept
    as a link so upgrades keep working); the script next to this interpreter (a virtualenv run as ``python -m``);
    ``govuk-imds`` on ``search_path``.
    """
    import shutil

    candidates: list[str] = []
    if argv0 and os.path.basename(argv0) == APP:
        candidates.append(os.path.abspath(argv0))
    if python:
        candidates.append(os.path.join(os.path.dirname(python), APP))
    found = shutil.which(APP, path=search_path)
    if found:
        candidates.append(os.path.abspath(found))
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return [candidate]
    return None
