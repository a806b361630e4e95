"""The control channel's wire format and its client: one JSON line in, one JSON line out, over a Unix socket.

The client is plain blocking ``socket`` code so the light CLI commands stay fast (no asyncio, no aiohttp). The
socket lives in the 0700 runtime dir with mode 0600, and the server checks the peer's uid as well.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from .errors import ControlError, DaemonNotRunning

MAX_MESSAGE = 256 * 1024
TIMEOUT_SECONDS = 30.0  # an unlock waits for the first AssumeRole
#: How long a command that starts the daemon (`start`, a launchd start) waits for it to answer.
START_TIMEOUT_SECONDS = 20.0


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    document = json.loads(line)
    if not isinstance(document, dict):
        raise ValueError("a control message must be a JSON object")
    return document


def request(socket_path: Path, message: dict[str, Any], *, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """Send one request to the daemon and return its answer; raise ``DaemonNotRunning`` if nobody listens."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        try:
            connection.connect(str(socket_path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonNotRunning() from exc
        except PermissionError as exc:
            raise ControlError(f"permission denied on {socket_path}; is it yours?") from exc
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
