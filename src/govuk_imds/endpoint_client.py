"""The endpoint's own client: one GET exactly as an AWS SDK sends it, with nothing but the standard library.

Used by the lean ``credential-process`` path (run by tools on every credential fetch), by the full
``credential-process`` command and by ``doctor``'s endpoint check, so all three ask the daemon the same way and read
its answer the same way. It never logs or keeps the token, and it never sends it to a listener that is not the
user's own: while the daemon is down, another local user can listen on the port.

- Linux: after connecting, the kernel's socket tables (``socket_owner``) say which uid
  owns the socket at the other end of this very connection (an accepted socket carries its listener's owner, even
  before the listener calls ``accept``). Anyone else's is refused before a byte is sent: no race, ~0.07 ms.
- macOS has no such table for an unprivileged process. The best available: the daemon must answer on the control
  socket (the user's own, in the checked runtime dir) that it serves this port; while it listens there, macOS lets
  no other user bind the same address and port. A daemon dying in the microseconds between that answer and the
  connection is the gap left (SECURITY.md).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

from .errors import ForeignListener
from .socket_owner import socket_uid

TIMEOUT_SECONDS = 5.0


class EndpointAnswer:
    """The daemon's status and its JSON document (``{}`` when the body was not a JSON object)."""

    __slots__ = ("document", "status")

    def __init__(self, status: int, document: dict[str, Any]) -> None:
        self.status = status
        self.document = document

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EndpointAnswer):
            return NotImplemented
        return (self.status, self.document) == (other.status, other.document)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:  # the document may hold credentials: never shown
        return f"EndpointAnswer({self.status}, keys={sorted(self.document)})"

    @property
    def message(self) -> str:
        return str(self.document.get("message") or f"the daemon answered {self.status}")


def fetch(
    port: int, environment: str, token: str, *, control_socket: str, timeout: float = TIMEOUT_SECONDS
) -> EndpointAnswer:
    """GET /v1/credentials/<environment> on 127.0.0.1:<port>; ``OSError`` when nobody answers, ``ValueError`` when
    the answer is not HTTP, ``ForeignListener`` (before the token is sent) when the port is not the daemon's."""
    request = (
        f"GET /v1/credentials/{environment} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    if not sys.platform.startswith("linux"):
        _daemon_claims(port, control_socket)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        if sys.platform.startswith("linux"):
            owner = listener_owner(connection)
            if owner != os.getuid():
                raise ForeignListener(port, owner)
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise ValueError("the answer is not HTTP") from exc
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    return EndpointAnswer(status, document if isinstance(document, dict) else {})


def listener_owner(connection: socket.socket) -> int | None:
    """Linux: the uid owning the socket that accepted ``connection`` (its local end is our remote one)."""
    return socket_uid(connection.getpeername()[:2], connection.getsockname()[:2])


def _daemon_claims(port: int, control_socket: str) -> None:
    """Where the kernel's tables are closed to us: the user's own daemon must say it serves ``port``
    (``DaemonNotRunning`` if it does not answer, ``ForeignListener`` if it serves another port)."""
    from pathlib import Path

    from . import control

    if control.request(Path(control_socket), {"op": "ping"}, timeout=2).get("port") != port:
        raise ForeignListener(port, None)


def credential_process_json(document: dict[str, Any]) -> str:
    """The ``credential_process`` form (Version 1) of a 200 answer's credentials."""
    return json.dumps(
        {
            "Version": 1,
            "AccessKeyId": document["AccessKeyId"],
            "SecretAccessKey": document["SecretAccessKey"],
            "SessionToken": document["Token"],
            "Expiration": document["Expiration"],
        }
    )
