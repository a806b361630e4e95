"""Socket activation: take over the listening socket systemd (``govuk-imds.socket``) bound for us.

The protocol is sd_listen_fds(3), spoken directly so there is no libsystemd dependency: the service manager passes
listening sockets from file descriptor 3 on, says how many in ``LISTEN_FDS`` and for which process in
``LISTEN_PID``. The variables are removed from the environment whatever happens, so nothing the daemon starts
inherits them.

An inherited socket is used only if it is exactly what the daemon would have bound itself: one TCP socket, listening,
on 127.0.0.1, without ``SO_REUSEPORT``. Anything else (0.0.0.0, another address, IPv6, UDP, a second socket, the
wrong port) is refused with one line saying how to fix the socket unit: a credential endpoint must never be reachable
from another machine (security.md §2). This module must never bind, open or accept anything itself.
"""

from __future__ import annotations

import socket
from collections.abc import MutableMapping

from ..errors import InheritedSocketRefused

#: The first passed descriptor (SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3
LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
LOOPBACK = "127.0.0.1"
_FIX = "set ListenStream=127.0.0.1:<port> in govuk-imds.socket (`govuk-imds service install` writes it)"


def inherited_listener(
    environ: MutableMapping[str, str], pid: int, *, expected_port: int | None = None
) -> socket.socket | None:
    """The listening socket passed by the service manager, or ``None`` when none was passed to process ``pid``.

    ``pid`` is the caller's ``os.getpid()``: a ``LISTEN_PID`` naming another process means the variables were
    inherited from a parent and the descriptors are not ours. With ``expected_port``, a socket on another port is
    refused too (the configured port and the socket unit disagree, so clients would be sent elsewhere).
    The socket returned is non-blocking and close-on-exec.
    """
    listen_pid = environ.get("LISTEN_PID")
    listen_fds = environ.get("LISTEN_FDS")
    for name in LISTEN_VARIABLES:
        environ.pop(name, None)
    if listen_pid is None or listen_fds is None:
        return None
    if not listen_pid.isdigit() or int(listen_pid) != pid:
        return None
    if not listen_fds.isdigit():
        raise InheritedSocketRefused(f"LISTEN_FDS={listen_fds!r} is not a number; {_FIX}")
    count = int(listen_fds)
    if count == 0:
        return None
    if count != 1:
        raise InheritedSocketRefused(
            f"the service manager passed {count} sockets; govuk-imds takes exactly one: {_FIX} and no other Listen line"
        )
    try:
        listener = socket.socket(fileno=LISTEN_FDS_START)
    except OSError as exc:
        raise InheritedSocketRefused(
            f"descriptor {LISTEN_FDS_START} passed by the service manager is not a socket ({exc.strerror}); {_FIX}"
        ) from exc
    try:
        _check(listener, expected_port)
    except BaseException:
        listener.close()
        raise
    listener.set_inheritable(False)
    listener.setblocking(False)
    return listener


def _check(listener: socket.socket, expected_port: int | None) -> None:
    if listener.type != socket.SOCK_STREAM:
        raise InheritedSocketRefused(f"the inherited socket is not a TCP stream socket (a datagram socket?); {_FIX}")
    if listener.family == socket.AF_INET6:
        host, port = listener.getsockname()[:2]
        raise InheritedSocketRefused(
            f"the inherited socket is bound to [{host}]:{port}; govuk-imds serves on 127.0.0.1 only: {_FIX}"
        )
    if listener.family != socket.AF_INET:
        raise InheritedSocketRefused(
            f"the inherited socket is not an IPv4 TCP socket (family {listener.family!r}); {_FIX}"
        )
    host, port = listener.getsockname()
    if host != LOOPBACK:
        raise InheritedSocketRefused(
            f"the inherited socket is bound to {host}:{port}, which is not loopback-only; refusing to serve "
            f"credentials there: {_FIX}"
        )
    accepting = getattr(socket, "SO_ACCEPTCONN", None)
    if accepting is not None and not listener.getsockopt(socket.SOL_SOCKET, accepting):
        raise InheritedSocketRefused(f"the inherited socket on {host}:{port} is not listening; {_FIX}")
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port is not None and listener.getsockopt(socket.SOL_SOCKET, reuse_port):
        raise InheritedSocketRefused(
            f"the inherited socket on {host}:{port} has SO_REUSEPORT set, so another process could share the port; "
            "remove ReusePort= from govuk-imds.socket"
        )
    if expected_port is not None and port != expected_port:
        raise InheritedSocketRefused(
            f"the inherited socket listens on port {port}, but the configuration says port {expected_port}; "
            "run `govuk-imds service install` again to update the socket unit"
        )
