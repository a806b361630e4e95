"""A second OS user on the machine, created for one test and removed after it: the attacker of SECURITY.md's "another
local user". Needs root (CI runs as root); skipped locally otherwise, failed in CI (``require``).

Its programs run under the system Python (``/usr/bin/python3``): the test virtualenv may sit where another user
cannot enter. Every process started through ``OtherUser`` is killed by pid when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .world import require

SYSTEM_PYTHON = Path("/usr/bin/python3")


@dataclass
class OtherUser:
    name: str
    uid: int
    gid: int
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def python(self, code: str, *args: str) -> subprocess.Popen[str]:
        """Run ``code`` as this user; stdout is a pipe to read what it reports."""
        process = subprocess.Popen(
            [str(SYSTEM_PYTHON), "-c", code, *args], user=self.uid, group=self.gid, extra_groups=[],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        self.processes.append(process)
        return process

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), user=self.uid, group=self.gid, extra_groups=[], capture_output=True,
                              text=True, timeout=30, check=False, cwd="/")


@contextlib.contextmanager
def another_user() -> Iterator[OtherUser]:
    require(os.geteuid() == 0, "root, to create a second OS user")
    require(shutil.which("useradd") is not None and shutil.which("userdel") is not None, "useradd (Debian passwd)")
    require(SYSTEM_PYTHON.exists(), "/usr/bin/python3 for the other user's programs")
    name = f"imds-other-{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    user = OtherUser(name, entry.pw_uid, entry.pw_gid)
    try:
        yield user
    finally:
        for process in user.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        subprocess.run(["userdel", name], check=False, capture_output=True)


#: Listens on (host, port) as a squatter would: prints LISTENING, then for every connection what it received
#: (as a repr, one line), and answers with credentials of its own.
SQUATTER = r"""
import socket, sys, threading
host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
listener = socket.socket(family, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, port))
listener.listen(64)
print("LISTENING", flush=True)
body = (b'{"AccessKeyId": "ASIASQUATTERSQUATTER", "SecretAccessKey": "squatter", "Token": "squatter", '
        b'"Expiration": "2099-01-01T00:00:00Z"}')
def serve(connection):
    connection.settimeout(5)
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        if received:
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                               + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    except OSError:
        pass
    print(repr(received), flush=True)
    connection.close()
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
"""


def squat(user: OtherUser, host: str, port: int) -> subprocess.Popen[str]:
    """``user`` listens on ``host:port`` (the daemon must not be holding it); returns once it listens."""
    process = user.python(SQUATTER, host, str(port))
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line == "LISTENING", (line, process.stderr.read() if process.poll() is not None and process.stderr else "")
    return process


def what_it_received(process: subprocess.Popen[str]) -> str:
    """Everything the squatter printed after LISTENING (it is stopped first)."""
    process.kill()
    output, _ = process.communicate(timeout=10)
    return output
