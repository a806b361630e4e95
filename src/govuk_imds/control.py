"""The control channel's wire format and its client: one JSON line in, one JSON line out, over a Unix socket.

The client is plain blocking ``socket`` code so the light CLI commands stay fast (no asyncio, no aiohttp). The
socket lives in the 0700 runtime dir with mode 0600, and the server checks the peer's uid as well. The client
trusts the socket only as far as its directory: it checks the runtime dir first (without ``XDG_RUNTIME_DIR`` it is
under ``/tmp``, where another user could have made it first and listen there for the MFA session an ``unlock``
sends), and then that the process answering runs as the same user.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from pathlib import Path
from typing import Any

from .config.files import runtime_dir_ready
from .errors import ConfigError, ControlError, DaemonNotRunning, UnsafeRuntimeDir

MAX_MESSAGE = 256 * 1024
TIMEOUT_SECONDS = 30.0  # an unlock waits for the first AssumeRole
#: How long a command that starts the daemon (`start`, a launchd start) waits for it to answer.
START_TIMEOUT_SECONDS = 20.0
#: The longest Unix socket path the platform takes (``sun_path`` less its terminating NUL).
SOCKET_PATH_LIMIT = 103 if sys.platform == "darwin" else 107


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    document = json.loads(line)
    if not isinstance(document, dict):
        raise ValueError("a control message must be a JSON object")
    return document


def check_socket_path(socket_path: Path) -> None:
    """A control socket path the platform can bind and connect to, or one line saying how to get one."""
    length = len(os.fsencode(socket_path))
    if length > SOCKET_PATH_LIMIT:
        raise ConfigError(
            f"the runtime dir {socket_path.parent} is too long for a Unix socket ({length} bytes with "
            f"{socket_path.name}; the limit here is {SOCKET_PATH_LIMIT}): set GOVUK_IMDS_RUNTIME_DIR to a shorter path"
        )


def peer_uid(connection: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket, from the kernel; None if it cannot be known."""
    if sys.platform.startswith("linux"):
        pid_uid_gid = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", pid_uid_gid)[1])
    if sys.platform == "darwin":
        sol_local, local_peercred = 0, 1
        xucred = connection.getsockopt(sol_local, local_peercred, struct.calcsize("Ii") + 2 + 16 * 4)
        return int(struct.unpack_from("Ii", xucred)[1])
    return None


def listening(socket_path: Path) -> bool:
    """Whether a daemon listens on ``socket_path``: one ``connect``, no request (about 30 µs). A daemon killed with
    SIGKILL leaves its socket file (and its state files) behind, so the file's existence says nothing."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(socket_path))
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    except OSError:
        return True  # something else is wrong with it: the command that uses it will say what
    finally:
        probe.close()
    return True


def request(socket_path: Path, message: dict[str, Any], *, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """Send one request to the daemon and return its answer; raise ``DaemonNotRunning`` if nobody listens."""
    check_socket_path(socket_path)
    if not runtime_dir_ready(socket_path.parent):
        raise DaemonNotRunning()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        try:
            connection.connect(str(socket_path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonNotRunning() from exc
        except OSError as exc:
            raise ControlError(f"cannot connect to {socket_path} ({exc.strerror}); is it yours?") from exc
        owner = peer_uid(connection)
        if owner is not None and owner != os.getuid():
            raise UnsafeRuntimeDir(
                f"{socket_path} is answered by a process of uid {owner}, not by your daemon; remove "
                f"{socket_path.parent} and run `govuk-imds start`"
            )
        connection.sendall(encode(message))
        answer = _read_line(connection)
    except TimeoutError as exc:
        raise ControlError(f"the daemon did not answer within {timeout:.0f} s; see `govuk-imds status`") from exc
    finally:
        connection.close()
    if not answer:
        raise ControlError("the daemon closed the connection without answering; see its log")
    document = decode(answer)
    if not document.get("ok"):
        error = document.get("error") or {}
        exit_code = error.get("exit_code")
        raise ControlError(
            str(error.get("message") or "the daemon refused the request"),
            code=str(error.get("code") or ""),
            exit_code=exit_code if type(exit_code) is int and 0 < exit_code < 126 else None,
        )
    return document


def _read_line(connection: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or size > MAX_MESSAGE:
            break
    return b"".join(chunks)
