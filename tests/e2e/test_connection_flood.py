"""Idle and slow connections cannot keep a real client out (SECURITY.md, "A flood of connections").

The daemon runs under the descriptor limit a systemd user service gets by default (``prlimit --nofile=1024``) while
another local process opens 2,000 connections that send nothing or a header byte now and then. A client that asks
properly is answered within a second, the log gets a summary line rather than a traceback per failed accept, and
idle connections are closed after the keep-alive time.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

from tests.support.world import BIN, World, require, wait_for

FLOOD = 2000
#: What a client that asks properly must see, and the daemon's keep-alive time (daemon/admission.py).
ANSWER_WITHIN_SECONDS = 1.0
IDLE_SECONDS = 10.0


def valid_request(world: World) -> bytes:
    token = world.token("production")
    return (f"GET /v1/credentials/production HTTP/1.1\r\nHost: 127.0.0.1:{world.port}\r\n"
            f"Authorization: {token}\r\nConnection: close\r\n\r\n").encode()


def ask(world: World) -> tuple[float, bytes]:
    """One properly made request on a new connection: how long until the status line, and the status line."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", world.port), timeout=10) as connection:
        connection.sendall(valid_request(world))
        status = connection.recv(64).split(b"\r\n", 1)[0]
    return time.monotonic() - started, status


@contextlib.contextmanager
def flood(world: World, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections: half send nothing, half the start of a request head and no more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    require(hard >= count + 200, f"a descriptor limit of at least {count + 200} for the test process")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count + 200), hard))
    connections: list[socket.socket] = []
    try:
        for index in range(count):
            connection = socket.socket()
            connection.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                connection.connect(("127.0.0.1", world.port))
            connections.append(connection)
            if index % 2:
                with contextlib.suppress(OSError):
                    connection.send(b"GET /v1/credentials/production HTTP/1.1\r\nHo")
        yield connections
    finally:
        for connection in connections:
            connection.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def trickle(connections: list[socket.socket]) -> None:
    """A header byte on every slow connection still open."""
    for connection in connections[1::2]:
        with contextlib.suppress(OSError):
            connection.send(b"x")


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_flood_of_idle_and_slow_connections_under_1024_descriptors_leaves_clients_answered(
        world: World) -> None:
    require(shutil.which("prlimit") is not None, "prlimit (Debian util-linux)")
    started = subprocess.run(["prlimit", "--nofile=1024:1024", str(BIN / "govuk-imds"), "start"],
                             env=world.environment, capture_output=True, text=True, timeout=60, check=False)
    assert started.returncode == 0, started.stderr + world.log()
    pid = world.daemon_pid()
    assert pid is not None
    latencies: list[float] = []
    with flood(world, FLOOD) as connections:
        time.sleep(1)  # let the daemon take in the flood
        for _ in range(5):
            trickle(connections)
            latency, status = ask(world)
            latencies.append(latency)
            assert status == b"HTTP/1.1 423 Locked"  # answered: the token was checked, production is locked
            time.sleep(0.2)
        held = open_descriptors(pid)
    print(f"\nvalid client under a flood of {FLOOD}: "
          f"{', '.join(f'{latency * 1000:.1f}' for latency in latencies)} ms; daemon held {held} descriptors")
    assert max(latencies) < ANSWER_WITHIN_SECONDS, latencies
    assert held < 1024
    log = world.log()
    assert "Traceback" not in log
    assert len(log.splitlines()) < 20
    assert world.cli("stop").returncode == 0
    summary = world.log()
    assert "IdleConnectionClosed" in summary  # the flood is counted in the one summary line
    assert "AcceptFailed" not in summary  # the cap kept descriptors in hand: accept() never ran out


def test_accept_failures_are_counted_and_clients_still_answered_when_descriptors_run_out(world: World) -> None:
    """The limit lowered under a running daemon (its connection cap was made for more): accept() fails with
    EMFILE, which the daemon folds into the summary, makes room, and keeps answering."""
    require(shutil.which("prlimit") is not None, "prlimit (Debian util-linux)")
    world.start()
    pid = world.daemon_pid()
    assert pid is not None
    with flood(world, FLOOD) as connections:
        wait_for(lambda: open_descriptors(pid) > 1100, 20, "the daemon to take in the flood")
        lowered = subprocess.run(["prlimit", f"--pid={pid}", "--nofile=1024:1024"], capture_output=True,
                                 text=True, check=False)
        assert lowered.returncode == 0, lowered.stderr
        with flood(world, 300):  # new connections now find no descriptor at first
            latencies = [ask(world) for _ in range(5)]
        trickle(connections)
    assert all(status == b"HTTP/1.1 423 Locked" for _, status in latencies)
    print(f"\nvalid client after the limit fell: {', '.join(f'{t * 1000:.1f}' for t, _ in latencies)} ms")
    assert max(latency for latency, _ in latencies) < ANSWER_WITHIN_SECONDS
    assert world.cli("stop").returncode == 0
    log = world.log()
    assert "Traceback" not in log
    assert "AcceptFailed" in log
    assert len(log.splitlines()) < 20


def test_a_connection_that_sends_no_complete_request_is_closed_after_the_keep_alive_time(world: World) -> None:
    world.start()
    idle = socket.create_connection(("127.0.0.1", world.port), timeout=5)
    slow = socket.create_connection(("127.0.0.1", world.port), timeout=5)
    opened = time.monotonic()
    slow.sendall(b"GET /v1/credentials/production HTTP/1.1\r\n")
    closed: dict[socket.socket, float] = {}
    with idle, slow:
        while len(closed) < 2 and time.monotonic() - opened < IDLE_SECONDS + 10:
            if slow not in closed:  # a header byte a second: without a deadline for the head, open for ever
                with contextlib.suppress(OSError):
                    slow.sendall(b"X")
            readable, _, _ = select.select([each for each in (idle, slow) if each not in closed], [], [], 1.0)
            for each in readable:
                try:
                    data = each.recv(100)
                except ConnectionResetError:
                    data = b""
                if not data:
                    closed[each] = time.monotonic() - opened
    assert set(closed) == {idle, slow}
    assert all(IDLE_SECONDS - 1 < after < IDLE_SECONDS + 3 for after in closed.values()), closed
