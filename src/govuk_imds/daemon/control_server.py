"""The daemon's side of the control channel: a Unix socket that only the same user may talk to.

The socket is created under a 0177 umask (so it is 0600 from the first moment) inside the 0700 runtime dir, and
every connection's peer uid is checked with the kernel's peer credentials; a connection from another uid is closed
unanswered even if someone widened the socket's mode. One request per connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .. import control
from ..errors import GovukImdsError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


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


async def start_control_server(path: Path, handler: Handler) -> asyncio.AbstractServer:
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw_socket = writer.get_extra_info("socket")
            if raw_socket is None or peer_uid(raw_socket) != os.getuid():
                log.warning("refused a control connection from another user")
                return
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=10)
                answer = await handler(control.decode(line))
            except GovukImdsError as exc:
                answer = {
                    "ok": False,
                    "error": {"code": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code},
                }
            except (TimeoutError, ValueError, asyncio.LimitOverrunError):
                answer = {"ok": False, "error": {"code": "BadRequest", "message": "malformed control request"}}
            writer.write(control.encode(answer))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("unexpected error on the control socket")
        finally:
            writer.close()

    path.unlink(missing_ok=True)
    previous = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_connection, path=str(path), limit=control.MAX_MESSAGE)
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    return server
