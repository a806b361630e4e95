"""Readiness reports: the `start` pipe and systemd's NOTIFY_SOCKET datagrams, with real descriptors and sockets."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from govuk_imds.daemon.readiness import READY_FD_VARIABLE, notifier


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    pipe_inode = os.fstat(read_end).st_ino
    try:
        yield read_end, write_end
    finally:
        # The code under test closes the write end; close it here only if that number is still our pipe.
        with contextlib.suppress(OSError):
            if os.fstat(write_end).st_ino == pipe_inode:
                os.close(write_end)
        os.close(read_end)


def _drain(read_end: int) -> tuple[bytes, bool]:
    """Everything written so far, and whether the writer has closed its end (EOF)."""
    data = b""
    while True:
        try:
            chunk = os.read(read_end, 4096)
        except BlockingIOError:
            return data, False
        if not chunk:
            return data, True
        data += chunk


def _is_open(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return False
    return True


def test_ready_pipe_gets_ready_once_and_is_closed(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    environ = {READY_FD_VARIABLE: str(write_end), "OTHER": "kept"}
    notify = notifier(environ)
    assert READY_FD_VARIABLE not in environ  # children of the daemon must not inherit it
    assert environ == {"OTHER": "kept"}
    assert _drain(read_end) == (b"", False)
    notify("READY=1")
    assert not _is_open(write_end)
    assert _drain(read_end) == (b"READY=1\n", True)
    notify("READY=1")  # a second report must not write to whatever now has that number
    notify("STOPPING=1")
    assert _drain(read_end) == (b"", True)


def test_stopping_does_not_use_the_pipe(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    notify = notifier({READY_FD_VARIABLE: str(write_end)})
    notify("STOPPING=1")
    assert _is_open(write_end)
    assert _drain(read_end) == (b"", False)


def test_error_goes_to_the_pipe_once(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    notify = notifier({READY_FD_VARIABLE: str(write_end)})
    notify("ERROR=port 9911 on 127.0.0.1 is already in use")
    notify("READY=1")
    assert _drain(read_end) == (b"ERROR=port 9911 on 127.0.0.1 is already in use\n", True)
    assert not _is_open(write_end)


@pytest.mark.parametrize("value", ["", "abc", "-1", " 5"])
def test_malformed_ready_fd_is_ignored(value: str) -> None:
    environ = {READY_FD_VARIABLE: value}
    notifier(environ)("READY=1")
    assert environ == {}


def test_ready_fd_that_is_not_open_does_not_crash() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    notify = notifier({READY_FD_VARIABLE: str(write_end)})
    notify("READY=1")


def _receive(receiver: socket.socket) -> bytes:
    return receiver.recv(4096)


@pytest.fixture
def datagram_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    if len(str(path)) > 100:
        pytest.fail(f"tmp_path too long for a Unix socket: {path}")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)  # a bound on a lost datagram, not a sleep
    try:
        yield receiver, str(path)
    finally:
        receiver.close()


def test_notify_socket_receives_ready_and_stopping(datagram_socket: tuple[socket.socket, str]) -> None:
    receiver, address = datagram_socket
    environ = {"NOTIFY_SOCKET": address}
    notify = notifier(environ)
    assert "NOTIFY_SOCKET" not in environ
    notify("READY=1")
    notify("STOPPING=1")
    assert _receive(receiver) == b"READY=1"
    assert _receive(receiver) == b"STOPPING=1"


def test_errors_are_not_sent_to_systemd(datagram_socket: tuple[socket.socket, str]) -> None:
    receiver, address = datagram_socket
    notify = notifier({"NOTIFY_SOCKET": address})
    notify("ERROR=boom")
    notify("READY=1")
    assert _receive(receiver) == b"READY=1"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract Unix sockets exist only on Linux")
def test_abstract_notify_socket() -> None:
    name = f"govuk-imds-test-{secrets.token_hex(8)}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.settimeout(5)
    with receiver:
        receiver.bind("\0" + name)
        notify = notifier({"NOTIFY_SOCKET": "@" + name})
        notify("READY=1")
        notify("STOPPING=1")
        assert _receive(receiver) == b"READY=1"
        assert _receive(receiver) == b"STOPPING=1"


def test_both_channels_at_once(pipe: tuple[int, int], datagram_socket: tuple[socket.socket, str]) -> None:
    read_end, write_end = pipe
    receiver, address = datagram_socket
    notify = notifier({READY_FD_VARIABLE: str(write_end), "NOTIFY_SOCKET": address})
    notify("READY=1")
    assert _drain(read_end) == (b"READY=1\n", True)
    assert _receive(receiver) == b"READY=1"


def test_nobody_listening_is_not_an_error(tmp_path: Path) -> None:
    notify = notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    notify("READY=1")
    notify("STOPPING=1")


def test_nothing_to_notify() -> None:
    notifier({})("READY=1")
