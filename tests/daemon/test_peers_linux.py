"""Finding the process behind a loopback connection on Linux, with real processes and real sockets: the kernel's
socket table over netlink (and /proc/net/tcp, which must agree), the pid that holds the socket, its parents."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from govuk_imds.core.callers import ClientSocket
from govuk_imds.daemon.peers_linux import LinuxPeers, chain, find_pid, read_process
from govuk_imds.socket_owner import SockDiag, owner_from_proc

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc and netlink")

# A client that connects, says so, and holds the connection until its stdin closes.
CLIENT = textwrap.dedent("""
    import socket, sys
    connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    print(connection.getsockname()[1], flush=True)
    sys.stdin.read()
""")


@contextmanager
def connected(argv_prefix: list[str] | None = None) -> Iterator[tuple[subprocess.Popen[str], ClientSocket]]:
    """A client process connected to a listener of ours: the process, and the connection as the server sees it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        command = [*(argv_prefix or []), sys.executable, "-c", CLIENT, str(port)]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as client:
            try:
                accepted, peer = listener.accept()
                assert client.stdout is not None
                assert int(client.stdout.readline()) == peer[1]
                with accepted:
                    yield client, ClientSocket(peer, accepted.getsockname())
            finally:
                assert client.stdin is not None
                client.stdin.close()
                client.wait(10)


def test_netlink_and_proc_net_tcp_name_the_same_socket_and_owner() -> None:
    diag = SockDiag()
    try:
        with connected() as (_, client):
            by_netlink = diag.owner(client.peer, client.local)
            assert by_netlink is not None
            assert by_netlink == owner_from_proc(client.peer, client.local)
            assert by_netlink.uid == os.getuid()
        # once the client has gone, its socket has no owner
        assert diag.owner(client.peer, client.local) is None
    finally:
        diag.close()


def test_the_process_holding_the_socket_is_found_with_its_parents() -> None:
    peers = LinuxPeers()
    try:
        with connected() as (process, client):
            located = peers.locate(client.peer, client.local)
            assert isinstance(located, ClientSocket)
            caller = peers.identify(located, recent=())
    finally:
        peers.close()
    assert caller.problem is None
    assert caller.pid == process.pid
    first, parent, *_ = caller.chain
    assert first.exe == os.path.realpath(sys.executable)
    assert first.argv[:2] == (sys.executable, "-c")
    assert first.cwd == os.getcwd()
    assert parent.pid == os.getpid()


def test_a_process_run_by_a_shell_shows_the_shell_and_a_renamed_argv0(tmp_path: Path) -> None:
    # bash runs the client as a child, under the name "npm install" (as npm renames itself); fd 3 hands it the
    # test's pipe as stdin, which bash would otherwise replace with /dev/null for a background job
    client_file = tmp_path / "client.py"
    client_file.write_text(CLIENT)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        script = f"exec 3<&0; (exec -a 'npm install' {sys.executable} {client_file} {port} <&3) & wait"
        with subprocess.Popen(["bash", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) as shell:
            try:
                accepted, peer = listener.accept()
                with accepted:
                    found = owner_from_proc(peer, accepted.getsockname())
                    assert found is not None
                    pid = find_pid(found.inode, found.uid)
                    assert pid is not None
                    processes = chain(pid)
            finally:
                assert shell.stdin is not None
                shell.stdin.close()
                shell.wait(10)
    client, bash, *_ = processes
    assert client.argv[0] == "npm install"
    assert "npm" in client.names()
    assert (bash.pid, bash.name) == (shell.pid, "bash")


def test_a_previous_caller_is_tried_first_and_a_gone_socket_is_not_found() -> None:
    with connected() as (process, client):
        found = owner_from_proc(client.peer, client.local)
        assert found is not None
        inode, uid = found.inode, found.uid
        assert find_pid(inode, uid, recent=[process.pid]) == process.pid
    assert find_pid(inode, uid, recent=[process.pid]) is None  # closed: nobody holds it


def test_a_process_that_is_gone_reads_as_none() -> None:
    with subprocess.Popen(["true"]) as short:
        short.wait()
        assert read_process(short.pid) is None


def test_a_connection_closed_before_the_lookup_says_so() -> None:
    peers = LinuxPeers()
    try:
        with connected() as (_, client):
            pass
        assert peers.locate(client.peer, client.local) == (
            "the client had closed its connection before it could be looked up")
    finally:
        peers.close()
