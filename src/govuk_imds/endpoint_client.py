"""The endpoint's own client: one GET exactly as an AWS SDK sends it, with nothing but the standard library.

Used by the lean ``credential-process`` path (run by tools on every credential fetch), by the full
``credential-process`` command and by ``doctor``'s endpoint check, so all three ask the daemon the same way and read
its answer the same way. It never logs or keeps the token, and it never sends it to a listener that is not the
user's own: while the daemon is down, another local user can listen on the port.

- Linux: after connecting, the kernel's socket tables (sock_diag, or ``/proc/net/tcp`` and ``tcp6``) say which uid
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
import struct
import sys
from typing import Any

from .errors import ForeignListener

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


#: sock_diag(7): the kernel's socket tables, asked for one socket by its addresses and ports.
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_ANY_STATE = 0xFFFFFFFF
_NO_COOKIE = 0xFFFFFFFF
#: Where the uid sits in the answer: after the netlink header (16 bytes), family, state, timer, retransmits (4),
#: the socket id (48) and expires, rqueue, wqueue (12).
_UID_OFFSET = 16 + 4 + 48 + 12
#: The server's side of a connection to 127.0.0.1, as an IPv4 socket, or as an IPv6 one (a listener on [::] takes
#: IPv4 connections too, as ::ffff:127.0.0.1).
_LOOPBACK = (
    (socket.AF_INET, socket.inet_pton(socket.AF_INET, "127.0.0.1") + bytes(12), "/proc/net/tcp"),
    (socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1"), "/proc/net/tcp6"),
)


def listener_owner(connection: socket.socket) -> int | None:
    """Linux: the uid owning the socket that accepted ``connection`` (ours, to 127.0.0.1), from the kernel's
    tables; ``None`` if it is in none of them. One exact lookup through sock_diag (~0.07 ms); where netlink is
    closed to us, a read of ``/proc/net/tcp`` and ``tcp6`` (which lists every socket: ~17 ms with 750 of them)."""
    client_port = connection.getsockname()[1]
    server_port = connection.getpeername()[1]
    try:
        return _owner_by_sock_diag(server_port, client_port)
    except OSError:
        return _owner_by_proc(server_port, client_port)


def _owner_by_sock_diag(server_port: int, client_port: int) -> int | None:
    for family, address, _ in _LOOPBACK:
        socket_id = struct.pack("!HH16s16s", server_port, client_port, address, address)
        socket_id += struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)
        request = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, 0, _ANY_STATE) + socket_id
        message = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + request
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as diag:
            diag.sendto(message, (0, 0))
            answer = diag.recv(65536)
        if struct.unpack_from("=H", answer, 4)[0] == _NLMSG_ERROR:
            continue  # no such socket in this family
        return int(struct.unpack_from("=I", answer, _UID_OFFSET)[0])
    return None


def _owner_by_proc(server_port: int, client_port: int) -> int | None:
    for _, address, table in _LOOPBACK:
        # Each 32-bit word of the address in host byte order, in hex; the server's side: local = 127.0.0.1:<port>.
        words = "".join(f"{word:08X}" for word in struct.unpack(f"={len(address) // 4}I", address))
        written = words[:8] if table.endswith("tcp") else words
        needle = f" {written}:{server_port:04X} {written}:{client_port:04X} "
        try:
            with open(table, encoding="ascii") as handle:
                text = handle.read()
        except OSError:
            continue
        at = text.find(needle)
        if at >= 0:
            # local, remote, state, tx:rx queues, timer, retransmits, uid
            return int(text[at : text.index("\n", at)].split()[6])
    return None


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
