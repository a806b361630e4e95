"""Another local user against the daemon's port and runtime dir (SECURITY.md, "Another local user"), with a real
second OS user created for each test and real processes on both sides.

- While no daemon listens, the other user can listen on the port and collect the token of every client that asks:
  our own commands refuse to send it there, and a token the daemon cannot vouch for is replaced at start.
- Without ``XDG_RUNTIME_DIR`` the runtime dir is under ``/tmp``, where the other user can make it first: every
  command that reads it refuses, before it trusts anything in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.activation import activated
from tests.support.other_user import OtherUser, another_user, squat, what_it_received
from tests.support.world import BIN, World, aws_whoami, require, wait_for


@pytest.fixture
def other() -> Iterator[OtherUser]:
    with another_user() as user:
        yield user


def request(port: int, token: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"GET /v1/credentials/production HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           f"Authorization: {token}\r\nConnection: close\r\n\r\n".encode())
        return connection.recv(100).split(b"\r\n", 1)[0]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def crash(world: World) -> None:
    """The daemon dies without cleaning up (its state file and control socket stay), and the port is free."""
    pid = world.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), 10,
             "the daemon to die")
    assert (world.runtime / "state.json").exists()


# -- the port -----------------------------------------------------------------------------------------------------

def test_our_commands_send_no_token_to_a_port_another_user_holds(world: World, other: OtherUser) -> None:
    world.start()
    token = world.token("production")
    crash(world)
    squatter = squat(other, "127.0.0.1", world.port)
    lean = world.cli("credential-process", "production")  # the path tools run: state file, token file, one GET
    full = world.cli("--config", str(world.config_file), "credential-process", "production")  # the full CLI
    received = what_it_received(squatter)
    for result in (lean, full):
        line = one_line(result)
        assert f"127.0.0.1:{world.port} is held by a process of another user (uid {other.uid})" in line
        assert "the token was not sent" in line
        assert result.returncode == 7
        assert "ASIASQUATTER" not in result.stdout
    assert token not in received
    assert "Authorization" not in received


def test_a_daemon_that_binds_the_port_itself_starts_with_new_tokens(world: World) -> None:
    world.start()
    before = {name: world.token(name) for name in ("production", "staging")}
    assert world.cli("stop").returncode == 0
    world.start()
    after = {name: world.token(name) for name in ("production", "staging")}
    assert all(after[name] != before[name] for name in before)
    assert request(world.port, before["production"]) == b"HTTP/1.1 403 Forbidden"
    assert request(world.port, after["production"]) == b"HTTP/1.1 423 Locked"
    assert "new tokens for every environment" in world.log()


def held_socket(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    return listener


@contextlib.contextmanager
def served_from(world: World, listener: socket.socket, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`govuk-imds serve` given ``listener`` the way systemd passes it (descriptor 3, LISTEN_FDS, LISTEN_PID)."""
    with activated(listener.fileno(), [str(BIN / "govuk-imds"), "serve"], world.environment, log) as process:
        wait_for(lambda: world.cli("status").returncode == 0 or process.poll() is not None, 20, "the daemon")
        assert process.poll() is None, log.read_text()
        yield process


def test_tokens_are_kept_only_on_the_very_socket_the_previous_daemon_served_on(world: World, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    first_socket = held_socket(world.port)
    try:
        with served_from(world, first_socket, log):
            token = world.token("production")
        # systemd held the port the whole time: nobody else can have been sent the token, so shells keep it.
        with served_from(world, first_socket, log):
            assert world.token("production") == token
            assert request(world.port, token) == b"HTTP/1.1 423 Locked"
    finally:
        first_socket.close()
    # The socket unit was stopped and started again: the port was free in between.
    second_socket = held_socket(world.port)
    try:
        with served_from(world, second_socket, log):
            assert world.token("production") != token
            assert request(world.port, token) == b"HTTP/1.1 403 Forbidden"
    finally:
        second_socket.close()
    assert "tokens kept: the service manager held the port" in log.read_text()


def test_another_user_on_the_ipv6_loopback_port_gets_nothing_from_configured_clients(
        world: World, other: OtherUser) -> None:
    """The daemon does not bind [::1]:<port>, so another user can (SECURITY.md says why that is harmless): every
    URL govuk-imds hands out, and every request its own commands make, names 127.0.0.1."""
    require(socket.has_ipv6, "IPv6 (for the [::1] loopback)")
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    squatter = squat(other, "::1", world.port)
    answer = aws_whoami(world, "production")
    credential_process = world.cli("credential-process", "production")
    received = what_it_received(squatter)
    assert answer.returncode == 0, answer.stderr
    assert "410987654321" in answer.stdout
    assert credential_process.returncode == 0, credential_process.stderr
    assert received == ""


# -- the runtime dir ----------------------------------------------------------------------------------------------

#: A control server the other user runs in the squatted runtime dir: it answers every request "ok" (as a real
#: attacker's would, to be sent an MFA session) and prints each request it gets.
FAKE_CONTROL = r"""
import json, os, socket, sys
path, port = sys.argv[1], int(sys.argv[2])
server = socket.socket(socket.AF_UNIX)
server.bind(path)
os.chmod(path, 0o777)
server.listen(16)
print("LISTENING", flush=True)
while True:
    connection, _ = server.accept()
    line = connection.makefile("rb").readline()
    print(repr(line), flush=True)
    connection.sendall(json.dumps({"ok": True, "pid": 1, "port": port, "environments": [], "locked": [],
                                   "results": []}).encode() + b"\n")
    connection.close()
"""


@contextlib.contextmanager
def fallback_runtime_dir() -> Iterator[Path]:
    """/tmp/govuk-imds-<uid>, the runtime dir without XDG_RUNTIME_DIR: one test at a time, only if nobody uses it."""
    path = Path(f"/tmp/govuk-imds-{os.getuid()}")
    with open("/tmp/govuk-imds-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        require(not path.exists() and not path.is_symlink(), f"{path} free (something on this machine uses it)")
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def test_a_runtime_dir_another_user_made_first_is_refused_by_every_command(world: World, other: OtherUser) -> None:
    world.add_key()
    sessions_before = world.sts.count("GetSessionToken")
    environment = {key: value for key, value in world.environment.items()
                   if key not in ("GOVUK_IMDS_RUNTIME_DIR", "XDG_RUNTIME_DIR")}
    with fallback_runtime_dir() as squatted:
        # The other user makes the directory first, with a state file, a token and a control socket of theirs.
        made = other.run("/bin/sh", "-c", f"mkdir -m 0755 {squatted} {squatted}/tokens && "
                                          f"printf '{{\"pid\": 1, \"port\": {world.port}, \"profile_prefix\": "
                                          f"\"govuk-\"}}' > {squatted}/state.json && "
                                          f"printf '%043d' 0 > {squatted}/tokens/production")
        assert made.returncode == 0, made.stderr
        fake = other.python(FAKE_CONTROL, str(squatted / "control.sock"), str(world.port))
        assert fake.stdout is not None and fake.stdout.readline().strip() == "LISTENING"
        squatter = squat(other, "127.0.0.1", world.port)
        commands = [["status"], ["env", "production"], ["exec", "production", "--", "true"],
                    ["credential-process", "production"], ["unlock", "production", "--code", world.code()],
                    ["lock", "--all"], ["start"], ["doctor", "production"]]
        results = {" ".join(argv): world.cli(*argv, env=environment) for argv in commands}
        sent_to_control = what_it_received(fake)
        sent_to_port = what_it_received(squatter)
    for command, result in results.items():
        if command.startswith("doctor"):  # doctor reports every finding; the runtime dir is one of them
            assert result.returncode != 0 and f"{squatted}" in result.stdout, (command, result.stdout)
            continue
        line = one_line(result)
        assert f"{squatted}" in line, (command, line)
        assert "export" not in result.stdout and "ASIASQUATTER" not in result.stdout, command
    assert sent_to_control == ""  # no request at all: not a ping, not an MFA session
    assert "Authorization" not in sent_to_port
    assert world.sts.count("GetSessionToken") == sessions_before  # unlock refused before the code was spent


#: Binds a control socket as root inside the user's own runtime dir, then serves it as another uid: what a process
#: that got a socket into the directory would look like. Only the client's check of the peer's uid can tell.
FOREIGN_CONTROL = r"""
import os, socket, sys
path, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
server = socket.socket(socket.AF_UNIX)
server.bind(path)
os.chmod(path, 0o600)
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
server.listen(16)  # the kernel records the listener's credentials now, for SO_PEERCRED
print("LISTENING", flush=True)
while True:
    connection, _ = server.accept()
    print(repr(connection.makefile("rb").readline()), flush=True)
    connection.sendall(b'{"ok": true, "pid": 1, "port": 1, "environments": []}\n')
    connection.close()
"""


def test_a_control_socket_served_by_another_uid_is_refused_by_the_client(world: World, other: OtherUser) -> None:
    world.runtime.chmod(0o700)
    server = subprocess.Popen(["/usr/bin/python3", "-c", FOREIGN_CONTROL, str(world.runtime / "control.sock"),
                               str(other.uid), str(other.gid)], stdout=subprocess.PIPE, text=True)
    other.processes.append(server)
    assert server.stdout is not None and server.stdout.readline().strip() == "LISTENING"
    line = one_line(world.cli("status"))
    assert f"answered by a process of uid {other.uid}, not by your daemon" in line
    assert '"op"' not in what_it_received(server)  # hung up on before a request was sent


def test_both_ways_of_asking_the_kernel_name_the_listeners_owner(world: World, other: OtherUser) -> None:
    """sock_diag, and /proc/net/tcp where netlink is closed: each names the other user's listener, and ours."""
    from govuk_imds.socket_owner import SockDiag, owner_from_proc

    def uids(connection: socket.socket) -> tuple[int | None, ...]:
        ends = connection.getpeername(), connection.getsockname()  # the listener's side
        with SockDiag() as diag:
            found = diag.owner(*ends), owner_from_proc(*ends)
        return tuple(None if owner is None else owner.uid for owner in found)

    squatter = squat(other, "127.0.0.1", world.port)
    try:
        with socket.create_connection(("127.0.0.1", world.port), timeout=10) as connection:
            assert uids(connection) == (other.uid, other.uid)
    finally:
        what_it_received(squatter)
    with held_socket(world.port) as ours, socket.create_connection(("127.0.0.1", world.port), timeout=10) as mine:
        assert uids(mine) == (os.getuid(), os.getuid())
        assert ours.fileno() > 0
