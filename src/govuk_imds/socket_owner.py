"""Who owns a loopback TCP socket (Linux): the kernel's answer, asked by the socket's two ends.

One rule for the three places that need it: the CLI checking that the listener on the daemon's port is the user's
own before it sends a token (``endpoint_client``), the console's one-shot page refusing another user's browser
(``console/handoff``), and the daemon finding which process called (``daemon/peers_linux``).

- **sock_diag** over netlink: one request for the exact address pair; the kernel answers from its hash table, inside
  ``send()``, in under 10 µs however many sockets exist.
- **/proc/net/tcp** and ``tcp6``: every socket of the network namespace as text (6-50 ms with hundreds of them). The
  fallback where netlink is refused (a sandbox, a seccomp filter).

An IPv4 pair is looked for as IPv4 and then as IPv4-mapped IPv6, where a dual-stack (``[::]``) socket holds it. An
accepted socket carries its listener's owner from the moment the handshake completes, before ``accept()``; until
then it has no file, so its inode reads 0. A closed socket, or one in TIME_WAIT, has no owner: ``None`` (the kernel
would report uid 0).
"""

from __future__ import annotations

import os
import socket
import struct
from typing import NamedTuple

Address = tuple[str, int]

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NO_COOKIE = 0xFFFFFFFF
_ALL_STATES = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_REQUEST = struct.Struct("=BBBxI")  # inet_diag_req_v2: family, protocol, extensions, pad, states
_PORTS = struct.Struct(">HH")  # inet_diag_sockid: source and destination port, network order
_ADDRESSES = struct.Struct("=16s16sIII")  # source, destination, interface, cookie
# inet_diag_msg: family, state, timer, retransmits (4 bytes), the 48-byte sockid, then these
_MESSAGE_TAIL = struct.Struct("=IIIII")  # expires, receive queue, send queue, uid, inode
_MESSAGE_TAIL_AT = _HEADER.size + 4 + 48
_STATE_AT = _HEADER.size + 1
#: A closed socket lingering for the network's sake: it belongs to nobody (the kernel reports uid 0 and no inode).
_TCP_TIME_WAIT = 6


class Owner(NamedTuple):
    uid: int
    #: 0 while no process holds the socket yet (an accepted connection still in its listener's queue).
    inode: int


class SockDiag:
    """The kernel's socket table over netlink: one socket, used from one thread. ``OSError`` if netlink is refused."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_SOCK_DIAG)
        self._socket.setblocking(False)
        self._sequence = 0

    def __enter__(self) -> SockDiag:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close()

    def owner(self, source: Address, destination: Address) -> Owner | None:
        """The owner of the TCP socket whose local end is ``source`` and remote end ``destination``."""
        for family, ends in _families(source, destination):
            found = self._ask(family, ends, source[1], destination[1])
            if found is not None:
                return found
        return None

    def _ask(self, family: int, ends: tuple[bytes, bytes], source_port: int, destination_port: int) -> Owner | None:
        body = (
            _REQUEST.pack(family, socket.IPPROTO_TCP, 0, _ALL_STATES)
            + _PORTS.pack(source_port, destination_port)
            + _ADDRESSES.pack(ends[0].ljust(16, b"\0"), ends[1].ljust(16, b"\0"), 0, _NO_COOKIE, _NO_COOKIE)
        )
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        self._socket.send(
            _HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, self._sequence, 0) + body
        )
        # The kernel answers a single-socket request inside send(): the reply is already queued.
        while True:
            try:
                data = self._socket.recv(8192)
            except BlockingIOError:
                return None
            _length, kind, _flags, sequence, _port = _HEADER.unpack_from(data)
            if sequence != self._sequence:
                continue  # a late answer to an earlier request
            if kind != _SOCK_DIAG_BY_FAMILY:
                return None  # NLMSG_ERROR: ENOENT, no such socket in this family
            if data[_STATE_AT] == _TCP_TIME_WAIT:
                return None
            *_, uid, inode = _MESSAGE_TAIL.unpack_from(data, _MESSAGE_TAIL_AT)
            return Owner(uid, inode)


def owner_from_proc(source: Address, destination: Address, proc_net: str = "/proc/net") -> Owner | None:
    """``SockDiag.owner``'s answer from ``/proc/net/tcp`` and ``tcp6``: slow, for where netlink is refused. (No
    pathlib here: this module is on the lean ``credential-process`` path, where pathlib's imports cost 3 ms.)"""
    for family, ends in _families(source, destination):
        table = os.path.join(proc_net, "tcp6" if family == socket.AF_INET6 else "tcp")
        key = f" {_proc_hex(ends[0])}:{source[1]:04X} {_proc_hex(ends[1])}:{destination[1]:04X} "
        try:
            with open(table, "rb") as handle:
                text = handle.read().decode("ascii", "replace")
        except OSError:
            continue
        at = text.find(key)
        if at >= 0:
            # local, remote, state (hex), queues, timer, retransmits, uid, timeout, inode
            fields = text[at : text.find("\n", at)].split()
            if int(fields[2], 16) == _TCP_TIME_WAIT:
                return None
            return Owner(int(fields[6]), int(fields[8]))
    return None


def socket_owner(source: Address, destination: Address) -> Owner | None:
    """One question asked once: sock_diag, else ``/proc/net``."""
    try:
        with SockDiag() as diag:
            return diag.owner(source, destination)
    except OSError:
        return owner_from_proc(source, destination)


def socket_uid(source: Address, destination: Address) -> int | None:
    """The uid owning the socket whose local end is ``source`` and remote end ``destination``; None if none."""
    found = socket_owner(source, destination)
    return None if found is None else found.uid


def _families(source: Address, destination: Address) -> list[tuple[int, tuple[bytes, bytes]]]:
    """Where the pair may live: IPv6 as given; IPv4 as itself, then mapped into IPv6 (a dual-stack socket)."""
    if ":" in source[0]:
        return [(socket.AF_INET6, (_v6(source[0]), _v6(destination[0])))]
    return [
        (socket.AF_INET, (socket.inet_aton(source[0]), socket.inet_aton(destination[0]))),
        (socket.AF_INET6, (_v6(f"::ffff:{source[0]}"), _v6(f"::ffff:{destination[0]}"))),
    ]


def _v6(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, address)


def _proc_hex(raw: bytes) -> str:
    """/proc/net/tcp prints each 32-bit word of an address in host byte order, in hex."""
    return "".join(f"{word:08X}" for word in struct.unpack(f"={len(raw) // 4}I", raw))
