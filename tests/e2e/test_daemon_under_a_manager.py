"""The real `govuk-imds serve` as a service manager runs it: readiness on NOTIFY_SOCKET, and socket activation."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.activation import serving
from tests.support.world import BIN, World, aws_whoami, require

READY_TIMEOUT = 20.0


@contextlib.contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET (a short path: sun_path holds ~100 bytes)."""
    directory = tempfile.mkdtemp(prefix="imds-notify-")
    path = os.path.join(directory, "notify")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        receiver.bind(path)
        yield receiver, path
    finally:
        receiver.close()
        shutil.rmtree(directory, ignore_errors=True)


def receive(receiver: socket.socket, timeout: float) -> bytes:
    receiver.settimeout(timeout)  # a bound on a lost datagram, not a sleep
    return receiver.recv(4096)


def nothing_more(receiver: socket.socket) -> bool:
    receiver.setblocking(False)
    try:
        receiver.recv(4096)
    except BlockingIOError:
        return True
    return False


def get_status(port: int) -> int:
    """One raw request for an environment without a token: proves the endpoint serves on ``port``."""
    with socket.create_connection(("127.0.0.1", port), timeout=READY_TIMEOUT) as client:
        client.sendall(f"GET /v1/credentials/production HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        status_line = client.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_serve_reports_ready_once_it_serves_and_stopping_on_sigterm(world: World, tmp_path: Path) -> None:
    with notify_socket() as (receiver, address):
        environment = {**world.environment, "NOTIFY_SOCKET": address}
        log = tmp_path / "serve.log"
        with serving([str(BIN / "govuk-imds"), "serve"], environment, log) as process:
            assert receive(receiver, READY_TIMEOUT) == b"READY=1", log.read_text()
            # At READY the endpoint and the control socket already answer.
            assert get_status(world.port) == 401
            status = world.cli("status", "--json")
            assert status.returncode == 0, status.stderr
            process.send_signal(signal.SIGTERM)
            assert receive(receiver, READY_TIMEOUT) == b"STOPPING=1"
            assert process.wait(15) == 0, log.read_text()
        assert nothing_more(receiver)
    assert not (world.runtime / "control.sock").exists()


def test_serve_that_cannot_start_never_reports_ready(world: World, tmp_path: Path) -> None:
    """systemd must see the start fail (exit status 7), not a READY for a daemon that is not serving."""
    with notify_socket() as (receiver, address), socket.socket() as squatter:
        squatter.bind(("127.0.0.1", world.port))
        squatter.listen(1)
        environment = {**world.environment, "NOTIFY_SOCKET": address}
        log = tmp_path / "serve.log"
        with serving([str(BIN / "govuk-imds"), "serve"], environment, log) as process:
            assert process.wait(READY_TIMEOUT) == 7
        assert f"port {world.port} on 127.0.0.1 is already in use" in log.read_text()
        assert nothing_more(receiver)


# -- socket activation of the daemon itself ----------------------------------------------------------------------

def socket_activated(
    world: World, address: str, notify: str, log: Path
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    tool = shutil.which("systemd-socket-activate")
    require(tool is not None, "systemd-socket-activate (Debian package systemd)")
    assert tool is not None
    # The tool passes only the variables it is told to (--setenv), like a service manager.
    variables = [f"--setenv={key}={value}" for key, value in {**world.environment, "NOTIFY_SOCKET": notify}.items()]
    command = [tool, f"--listen={address}:{world.port}", *variables, str(BIN / "govuk-imds"), "serve"]
    return serving(command, dict(os.environ), log)


def connect_when_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> socket.socket:
    """systemd-socket-activate binds first and execs the daemon on the first connection."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=READY_TIMEOUT)
        except ConnectionRefusedError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nothing listens on {port}: {log.read_text()}")
            time.sleep(0.02)


def test_a_socket_activated_daemon_serves_credentials_on_the_inherited_socket(world: World, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with notify_socket() as (receiver, address), socket_activated(world, "127.0.0.1", address, log) as process:
        with connect_when_listening(world.port, process, log) as first:
            first.sendall(f"GET /v1/credentials/production HTTP/1.1\r\nHost: 127.0.0.1:{world.port}\r\n\r\n".encode())
            # The connection that started the daemon is answered by it, from the inherited socket.
            assert first.recv(4096).startswith(b"HTTP/1.1 401 "), log.read_text()
        assert receive(receiver, READY_TIMEOUT) == b"READY=1", log.read_text()
        world.add_key()
        unlocked = world.unlock("production")
        assert unlocked.returncode == 0, unlocked.stderr + log.read_text()
        answer = aws_whoami(world, "production")
        assert answer.returncode == 0, answer.stderr + log.read_text()
        assert process.poll() is None


def test_a_socket_activated_daemon_refuses_a_socket_on_every_address(world: World, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with notify_socket() as (receiver, address), socket_activated(world, "0.0.0.0", address, log) as process:
        with contextlib.suppress(ConnectionResetError), connect_when_listening(world.port, process, log) as client:
            client.settimeout(READY_TIMEOUT)
            assert client.recv(100) == b""  # closed (or reset) without an answer
        assert process.wait(READY_TIMEOUT) == 7, log.read_text()
        assert f"bound to 0.0.0.0:{world.port}, which is not loopback-only" in log.read_text()
        assert nothing_more(receiver)
