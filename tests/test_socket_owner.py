"""Who owns a loopback TCP socket, asked of the real kernel both ways (netlink sock_diag and /proc/net/tcp), which
must agree: a connected client, an accepted connection still in its listener's queue, a dual-stack listener, a
closed socket and one in TIME_WAIT. Another user's socket is covered in tests/e2e/test_other_users.py."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from govuk_imds.socket_owner import Owner, SockDiag, owner_from_proc, socket_owner, socket_uid

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's socket tables")


def both_ways(source: tuple[str, int], destination: tuple[str, int]) -> Owner | None:
    with SockDiag() as diag:
        by_netlink = diag.owner(source, destination)
    assert by_netlink == owner_from_proc(source, destination)
    return by_netlink


def test_a_connected_client_socket_is_ours_with_its_inode() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as client:
        accepted, _ = server.accept()
        with accepted:
            found = both_ways(client.getsockname(), client.getpeername())
            assert found is not None
            assert found.uid == os.getuid()
            assert f"socket:[{found.inode}]" == os.readlink(f"/proc/self/fd/{client.fileno()}")
            assert socket_uid(client.getsockname(), client.getpeername()) == os.getuid()


def test_a_connection_not_yet_accepted_carries_its_listeners_owner_and_no_inode() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as client:
        # the server's end, as the CLI asks for it before sending a token: the listener has not called accept()
        found = both_ways(client.getpeername(), client.getsockname())
        assert found == Owner(os.getuid(), 0)


def test_a_dual_stack_listener_is_found_through_the_mapped_address() -> None:
    with socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                found = both_ways(client.getpeername(), client.getsockname())
                assert found is not None and found.uid == os.getuid() and found.inode > 0


def test_a_closed_socket_and_one_in_time_wait_have_no_owner() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        ends = client.getsockname(), client.getpeername()
        client.close()  # the client closes first, so its end lingers in TIME_WAIT once the server closes too
        accepted.close()
        deadline = time.monotonic() + 5
        while "06" not in _states(ends[0][1]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "06" in _states(ends[0][1]), "the client's socket never reached TIME_WAIT"
        assert both_ways(*ends) is None
    assert socket_owner(("127.0.0.1", 1), ("127.0.0.1", 2)) is None


def test_proc_tables_that_cannot_be_read_give_no_owner(tmp_path: Path) -> None:
    assert owner_from_proc(("127.0.0.1", 1), ("127.0.0.1", 2), proc_net=str(tmp_path)) is None


def _states(port: int) -> set[str]:
    """The TCP states (hex) of this machine's IPv4 sockets whose local port is ``port``."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return {row.split()[3] for row in rows if row.split()[1].endswith(f":{port:04X}")}
