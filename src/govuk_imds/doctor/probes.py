"""`doctor`'s look at the outside: the daemon's control socket, its TCP port, the endpoint, STS's clock.

Each probe is small and returns a plain result for a check to judge; none raises for what it finds.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import control
from ..config.files import read_private
from ..config.paths import RuntimePaths
from ..core.clock import Clock
from ..core.skew import server_time
from ..endpoint_client import EndpointAnswer, fetch
from ..errors import DaemonNotRunning, GovukImdsError

STS_TIMEOUT_SECONDS = 3.0
#: A daemon busy with a reload or a loaded machine can take a moment: 5 s, like the other commands allow.
DAEMON_TIMEOUT_SECONDS = 5.0
#: What the endpoint check keeps of an answer: never the credentials themselves.
KEPT = ("Expiration", "code", "message")


@dataclass(frozen=True)
class DaemonProbe:
    """What the control socket and the TCP port said. ``status`` is the daemon's status answer when it gave one."""

    status: Mapping[str, Any] | None
    error: str | None  # the control socket is there but did not answer properly
    port_open: bool
    pid_hint: int | None = None  # from state.json, for a daemon that does not answer

    @property
    def running(self) -> bool:
        return self.status is not None

    def rows(self) -> dict[str, Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = list((self.status or {}).get("environments") or [])
        return {str(row.get("environment")): row for row in rows}


def probe_daemon(runtime: RuntimePaths, port: int, *, timeout: float = DAEMON_TIMEOUT_SECONDS) -> DaemonProbe:
    status: Mapping[str, Any] | None = None
    error: str | None = None
    try:
        status = control.request(runtime.control_socket, {"op": "status"}, timeout=timeout)
    except DaemonNotRunning:
        pass
    except GovukImdsError as exc:
        error = str(exc)
    except (OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return DaemonProbe(status, error, port_open(port, timeout=timeout), _pid_from_state(runtime.state_file))


def port_open(port: int, *, timeout: float = DAEMON_TIMEOUT_SECONDS) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_from_state(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def fetch_credentials(
    port: int, name: str, token_file: Path, *, control_socket: Path, timeout: float = 5.0
) -> EndpointAnswer | str:
    """Ask our endpoint exactly as an SDK does, with the token file's token; what went wrong when there is no
    answer (also a port held by someone else: the token is then not sent). The check keeps only the status, the
    expiry and an error message, never the credentials."""
    try:
        token = read_private(token_file).decode("ascii")
    except (OSError, GovukImdsError, UnicodeDecodeError) as exc:
        return f"cannot read {token_file}: {exc}"
    try:
        answer = fetch(port, name, token, control_socket=str(control_socket), timeout=timeout)
    except GovukImdsError as exc:
        return str(exc)
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    kept: dict[str, Any] = {key: answer.document[key] for key in KEPT if key in answer.document}
    return EndpointAnswer(answer.status, kept)


@dataclass(frozen=True)
class ClockReading:
    """The local time halfway through one HTTP exchange with STS, and the ``Date`` STS answered with."""

    url: str
    local: datetime
    remote: datetime | None
    error: str | None = None


def read_sts_date(url: str, clock: Clock, *, timeout: float = STS_TIMEOUT_SECONDS) -> ClockReading:
    """One GET on the STS endpoint: any answer (even an error) carries the server's ``Date``."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    before = clock.now()
    try:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=timeout)
        try:
            connection.request("GET", parts.path or "/")
            response = connection.getresponse()
            response.read(65536)
            header = response.getheader("Date")
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return ClockReading(url, before, None, f"{type(exc).__name__}: {exc}")
    after = clock.now()
    local = before + (after - before) / 2
    if not header:
        return ClockReading(url, local, None, "the answer had no Date header")
    remote = server_time(header)
    if remote is None:
        return ClockReading(url, local, None, f"the Date header {header!r} is not a date")
    return ClockReading(url, local, remote)
