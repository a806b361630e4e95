"""Readiness reports from the daemon: to `govuk-imds start` through an inherited pipe, and to systemd's
``NOTIFY_SOCKET`` (the sd_notify datagram protocol, spoken directly so there is no libsystemd dependency)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, MutableMapping

READY_FD_VARIABLE = "GOVUK_IMDS_READY_FD"


def notifier(environ: MutableMapping[str, str]) -> Callable[[str], None]:
    """A function that reports ``READY=1``, ``STOPPING=1`` or ``ERROR=<message>`` to whoever is waiting."""
    ready_fd = environ.pop(READY_FD_VARIABLE, None)
    notify_socket = environ.pop("NOTIFY_SOCKET", None)
    pipe = [int(ready_fd)] if ready_fd and ready_fd.isdigit() else []

    def notify(state: str) -> None:
        if pipe and (state == "READY=1" or state.startswith("ERROR=")):
            descriptor = pipe.pop()
            with contextlib.suppress(OSError):
                os.write(descriptor, state.encode(errors="replace") + b"\n")
            with contextlib.suppress(OSError):
                os.close(descriptor)
        if notify_socket and not state.startswith("ERROR="):
            address = "\0" + notify_socket[1:] if notify_socket.startswith("@") else notify_socket
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as datagram, contextlib.suppress(OSError):
                datagram.sendto(state.encode(), address)

    return notify
