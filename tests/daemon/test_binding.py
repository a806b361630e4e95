"""The daemon's own listener: 127.0.0.1 only, no SO_REUSEPORT, a clear error when the port is taken."""

from __future__ import annotations

import socket

import pytest

from govuk_imds.daemon.app import bind_loopback
from govuk_imds.errors import PortInUse


def test_listener_is_on_loopback_without_reuseport() -> None:
    listener = bind_loopback(0)
    try:
        host, _ = listener.getsockname()
        assert host == "127.0.0.1"
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        listener.close()


def test_a_second_listener_on_the_same_port_is_a_port_in_use_error() -> None:
    first = bind_loopback(0)
    port = first.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
            bind_loopback(port)
    finally:
        first.close()


def test_a_port_held_by_a_reuseport_socket_is_still_refused() -> None:
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    try:
        with pytest.raises(PortInUse):
            bind_loopback(squatter.getsockname()[1])
    finally:
        squatter.close()
