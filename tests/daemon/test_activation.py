"""Socket activation: `inherited_listener` in a real process that received real sockets on descriptor 3.

A small launcher does what systemd does: moves the sockets to descriptors 3, 4, ..., sets ``LISTEN_FDS`` and
``LISTEN_PID`` (its own pid, kept across the ``exec``) and execs the probe. ``systemd-socket-activate`` does the same
for real in the last tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from tests.support.activation import LAUNCHER
from tests.support.world import free_port, require

# Calls inherited_listener and reports as one JSON line; when it gets a socket, it serves one connection from it.
PROBE = """
import json, os, socket, subprocess, sys
from govuk_imds.daemon.activation import inherited_listener
from govuk_imds.errors import GovukImdsError

expected = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] else None
try:
    listener = inherited_listener(os.environ, os.getpid(), expected_port=expected)
except GovukImdsError as exc:
    print(json.dumps({"refused": str(exc), "type": type(exc).__mro__[1].__name__, "exit_code": exc.exit_code}))
    sys.exit(0)
# What a child of the daemon would inherit: the variables must be gone from the real environment, not just a copy.
children = subprocess.run(
    [sys.executable, "-c", "import os; print(sorted(k for k in os.environ if k.startswith('LISTEN_')))"],
    capture_output=True, text=True, check=True,
).stdout.strip()
report = {"listener": None, "children_see": children}
if listener is not None:
    report.update(
        address=list(listener.getsockname()),
        fd=listener.fileno(),
        blocking=listener.getblocking(),
        inheritable=listener.get_inheritable(),
    )
print(json.dumps(report), flush=True)
if listener is not None:
    listener.settimeout(10)
    connection, _ = listener.accept()
    connection.sendall(b"served from the inherited socket")
    connection.close()
"""


def run_probe(
    sockets: Sequence[int], *, listen_pid: str = "self", expected_port: int | None = None, serve_port: int | None = None
) -> dict[str, Any]:
    """Run the probe with ``sockets`` passed as a service manager passes them; connect when it serves one."""
    command = [sys.executable, "-c", LAUNCHER, ",".join(str(fd) for fd in sockets), listen_pid]
    command += [sys.executable, "-c", PROBE, "" if expected_port is None else str(expected_port)]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LISTEN_")}
    with subprocess.Popen(
        command, pass_fds=tuple(sockets), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        served = None
        if serve_port is not None and line and "address" in json.loads(line):
            with socket.create_connection(("127.0.0.1", serve_port), timeout=10) as client:
                served = client.recv(100)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    result: dict[str, Any] = json.loads(line)
    result["served"] = served
    return result


@contextlib.contextmanager
def tcp_listener(
    host: str = "127.0.0.1", *, family: int = socket.AF_INET, listen: bool = True
) -> Iterator[socket.socket]:
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.bind((host, 0))
        if listen:
            listener.listen(16)
        yield listener
    finally:
        listener.close()


def test_a_loopback_listener_is_taken_over_non_blocking_and_not_passed_on() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        result = run_probe([listener.fileno()], serve_port=port)
    assert result["address"] == ["127.0.0.1", port]
    assert result["fd"] == 3
    assert result["blocking"] is False
    assert result["inheritable"] is False  # close-on-exec: nothing the daemon starts holds the port
    assert result["children_see"] == "[]"  # LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES unset for real
    assert result["served"] == b"served from the inherited socket"


def test_the_expected_port_is_accepted() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        result = run_probe([listener.fileno()], expected_port=port, serve_port=port)
    assert result["address"] == ["127.0.0.1", port]
    assert result["served"] == b"served from the inherited socket"


def test_a_listener_on_every_address_is_refused() -> None:
    with tcp_listener("0.0.0.0") as listener:
        port = listener.getsockname()[1]
        result = run_probe([listener.fileno()])
    assert result["type"] == "DaemonError"
    assert result["exit_code"] == 7
    assert result["refused"].startswith(f"the inherited socket is bound to 0.0.0.0:{port}, which is not loopback-only")
    assert "ListenStream=127.0.0.1:<port>" in result["refused"]
    assert "\n" not in result["refused"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux answers on all of 127/8")
def test_another_loopback_address_is_refused() -> None:
    with tcp_listener("127.0.0.2") as listener:
        port = listener.getsockname()[1]
        result = run_probe([listener.fileno()])
    assert f"bound to 127.0.0.2:{port}, which is not loopback-only" in result["refused"]


def test_ipv6_loopback_is_refused() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as listener:
        try:
            listener.bind(("::1", 0))
        except OSError:
            pytest.skip("this machine has no IPv6 loopback")
        listener.listen(1)
        port = listener.getsockname()[1]
        result = run_probe([listener.fileno()])
    assert result["refused"].startswith(
        f"the inherited socket is bound to [::1]:{port}; govuk-imds serves on 127.0.0.1"
    )


def test_a_datagram_socket_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        datagram.bind(("127.0.0.1", 0))
        result = run_probe([datagram.fileno()])
    assert result["refused"].startswith("the inherited socket is not a TCP stream socket")


def test_a_socket_that_is_not_listening_is_refused() -> None:
    with tcp_listener(listen=False) as bound:
        port = bound.getsockname()[1]
        result = run_probe([bound.fileno()])
    assert result["refused"].startswith(f"the inherited socket on 127.0.0.1:{port} is not listening")


def test_a_unix_socket_is_refused() -> None:
    left, right = socket.socketpair()
    with left, right:
        result = run_probe([left.fileno()])
    assert result["refused"].startswith("the inherited socket is not an IPv4 TCP socket")


def test_a_descriptor_that_is_not_a_socket_is_refused() -> None:
    read_end, write_end = os.pipe()
    try:
        result = run_probe([read_end])
    finally:
        os.close(read_end)
        os.close(write_end)
    assert result["refused"].startswith("descriptor 3 passed by the service manager is not a socket")


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")
def test_a_shared_port_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as shared:
        shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        shared.bind(("127.0.0.1", 0))
        shared.listen(1)
        result = run_probe([shared.fileno()])
    assert "has SO_REUSEPORT set" in result["refused"]


def test_more_than_one_socket_is_refused() -> None:
    with tcp_listener() as first, tcp_listener() as second:
        result = run_probe([first.fileno(), second.fileno()])
    assert result["refused"].startswith("the service manager passed 2 sockets; govuk-imds takes exactly one")


def test_a_socket_on_another_port_than_configured_is_refused() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        result = run_probe([listener.fileno()], expected_port=port + 1 if port < 65535 else port - 1)
    assert f"listens on port {port}, but the configuration says port" in result["refused"]
    assert "govuk-imds service install" in result["refused"]


def test_sockets_meant_for_another_process_are_left_alone() -> None:
    """LISTEN_PID names the launcher's parent: the variables were inherited, the descriptors are not ours."""
    with tcp_listener() as listener:
        result = run_probe([listener.fileno()], listen_pid="parent")
    assert result["listener"] is None
    assert result["children_see"] == "[]"


def test_no_activation_variables_means_no_listener() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=30,
        env={key: value for key, value in os.environ.items() if not key.startswith("LISTEN_")},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"listener": None, "children_see": "[]"}


def test_in_process_variables_are_cleared_without_touching_descriptors() -> None:
    """A malformed or foreign LISTEN_PID: nothing is opened, and the variables go whatever happens."""
    from govuk_imds.daemon.activation import inherited_listener

    for environ in (
        {"LISTEN_PID": "not-a-pid", "LISTEN_FDS": "1", "OTHER": "kept"},
        {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x", "OTHER": "kept"},
        {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0", "OTHER": "kept"},
        {"LISTEN_FDS": "1", "OTHER": "kept"},
    ):
        assert inherited_listener(environ, os.getpid()) is None
        assert environ == {"OTHER": "kept"}


def test_a_malformed_count_is_refused_in_process() -> None:
    from govuk_imds.daemon.activation import inherited_listener
    from govuk_imds.errors import InheritedSocketRefused

    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "one"}
    with pytest.raises(InheritedSocketRefused, match=r"^LISTEN_FDS='one' is not a number"):
        inherited_listener(environ, os.getpid())
    assert environ == {}


# -- systemd's own tool ------------------------------------------------------------------------------------------


def socket_activate(address: str, port: int, *command: str) -> subprocess.Popen[str]:
    tool = shutil.which("systemd-socket-activate")
    require(tool is not None, "systemd-socket-activate (Debian package systemd)")
    assert tool is not None
    return subprocess.Popen(
        [tool, "--listen", f"{address}:{port}", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def connect_when_listening(port: int, timeout: float = 10) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_systemd_socket_activate_passes_a_socket_that_is_accepted() -> None:
    port = free_port()
    with socket_activate("127.0.0.1", port, sys.executable, "-c", PROBE, str(port)) as process:
        # The tool execs the probe on the first connection; the probe then serves that very connection.
        with connect_when_listening(port) as client:
            served = client.recv(100)
        out, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    report = json.loads(out)
    assert report["address"] == ["127.0.0.1", port]
    assert report["children_see"] == "[]"
    assert served == b"served from the inherited socket"


def test_systemd_socket_activate_on_every_address_is_refused() -> None:
    port = free_port()
    with socket_activate("0.0.0.0", port, sys.executable, "-c", PROBE) as process:
        with connect_when_listening(port) as client, contextlib.suppress(ConnectionResetError):
            assert client.recv(100) == b""  # closed (or reset) without an answer
        out, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert json.loads(out)["refused"].startswith(f"the inherited socket is bound to 0.0.0.0:{port}")
