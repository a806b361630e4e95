"""Socket activation: take over the listening socket the service manager bound for us, and say which socket it is.

systemd (``govuk-imds.socket``): the protocol is sd_listen_fds(3), spoken directly so there is no libsystemd
dependency: the service manager passes listening sockets from file descriptor 3 on, says how many in ``LISTEN_FDS``
and for which process in ``LISTEN_PID``. The variables are removed from the environment whatever happens, so nothing
the daemon starts inherits them.

launchd (the plist's ``Sockets`` key, named ``Listener``): ``launch_activate_socket(3)`` from libSystem, via ctypes.

A manager holds the port while the daemon is down, so nobody else can listen there in the meantime; ``identity``
names the socket (boot, device, inode), so the next daemon can tell whether it inherits the very socket its
predecessor served on, i.e. whether the port was held without a gap (the token files trust that, see ``tokens``).

An inherited socket is used only if it is exactly what the daemon would have bound itself: one TCP socket, listening,
on 127.0.0.1, without ``SO_REUSEPORT``. Anything else (0.0.0.0, another address, IPv6, UDP, a second socket, the
wrong port) is refused with one line saying how to fix the socket unit: a credential endpoint must never be reachable
from another machine (security.md §2). This module must never bind, open or accept anything itself.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import MutableMapping
from typing import Any

from ..config.locations import LAUNCHD_SOCKET_NAME
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
    return _checked(listener, expected_port)


def launchd_listener(*, expected_port: int | None = None, library: Any = None) -> socket.socket | None:
    """The socket launchd holds for the LaunchAgent (its ``Sockets`` key), or ``None`` when not run by launchd with
    one. Checked like a systemd socket. ``library`` is libSystem (a stand-in in tests)."""
    if library is None:
        if sys.platform != "darwin":
            return None
        import ctypes

        library = ctypes.CDLL(None, use_errno=True)
    descriptors = _launch_activate_socket(library, LAUNCHD_SOCKET_NAME)
    if descriptors is None:
        return None
    if len(descriptors) != 1:
        for descriptor in descriptors:
            os.close(descriptor)
        raise InheritedSocketRefused(
            f"launchd passed {len(descriptors)} sockets named {LAUNCHD_SOCKET_NAME}; govuk-imds takes exactly one: "
            "run `govuk-imds service install` again"
        )
    return _checked(socket.socket(fileno=descriptors[0]), expected_port)


def _checked(listener: socket.socket, expected_port: int | None) -> socket.socket:
    """The inherited listener, once it is exactly what the daemon would have bound; closed and refused otherwise."""
    try:
        _check(listener, expected_port)
    except BaseException:
        listener.close()
        raise
    listener.set_inheritable(False)
    listener.setblocking(False)
    return listener


def _launch_activate_socket(library: Any, name: str) -> list[int] | None:
    import ctypes

    descriptors = ctypes.POINTER(ctypes.c_int)()
    count = ctypes.c_size_t(0)
    status = library.launch_activate_socket(name.encode(), ctypes.byref(descriptors), ctypes.byref(count))
    if status in (errno.ESRCH, errno.ENOENT):  # not run by launchd, or the plist has no such socket
        return None
    if status != 0:
        raise InheritedSocketRefused(
            f"launchd could not pass the {name} socket ({os.strerror(status)}); run `govuk-imds service install` again"
        )
    try:
        return [int(descriptors[index]) for index in range(count.value)]
    finally:
        library.free(descriptors)


def identity(listener: socket.socket) -> str | None:
    """Which socket this is, unique for as long as the machine runs: the boot, the socket's device and inode.
    ``None`` where the boot cannot be named (a socket number could then repeat after a reboot)."""
    boot = boot_id()
    if boot is None:
        return None
    info = os.fstat(listener.fileno())
    return f"{boot}/{info.st_dev}/{info.st_ino}"


def boot_id() -> str | None:
    """This boot of the machine: Linux's random boot id, macOS's boot session UUID."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
                return handle.read().strip() or None
        except OSError:
            return None
    if sys.platform == "darwin":
        import ctypes

        library = ctypes.CDLL(None, use_errno=True)
        size = ctypes.c_size_t(64)
        buffer = ctypes.create_string_buffer(size.value)
        if library.sysctlbyname(b"kern.bootsessionuuid", buffer, ctypes.byref(size), None, 0) != 0:
            return None
        return buffer.value.decode("ascii", "replace") or None
    return None


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
