"""The conformance suite's network guard, loaded into every Python client it starts (``PYTHONPATH`` names this dir).

It refuses, and reports on stderr, any connection or name lookup that would leave the loopback interface: the tests
talk only to 127.0.0.1, and a test can still see *where* a client would have gone (``169.254.170.2`` when
``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` is set). Nothing else about the client changes.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            where = f"{address[0]}:{address[1]}"
            sys.stderr.write(f"BLOCKED connection to {where}\n")
            raise ConnectionRefusedError(f"connection to {where} blocked by the test")
    elif event == "socket.getaddrinfo" and not _is_loopback(args[0]):
        sys.stderr.write(f"BLOCKED name lookup of {args[0]}:{args[1]}\n")
        raise socket.gaierror(socket.EAI_NONAME, f"lookup of {args[0]} blocked by the test")


sys.addaudithook(_guard)
