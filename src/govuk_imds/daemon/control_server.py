"""The daemon's side of the control channel: a Unix socket that only the same user may talk to.

The socket is created under a 0177 umask (so it is 0600 from the first moment) inside the 0700 runtime dir, and
every connection's peer uid is checked with the kernel's peer credentials; a connection from another uid is closed
unanswered even if someone widened the socket's mode. One request per connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .. import control
from ..errors import GovukImdsError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def start_control_server(path: Path, handler: Handler) -> asyncio.AbstractServer:
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw_socket = writer.get_extra_info("socket")
            if raw_socket is None or control.peer_uid(raw_socket) != os.getuid():
                log.warning("refused a control connection from another user")
                return
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=10)
                if not line:
                    return  # connected and hung up: the CLI asking whether anything listens (control.listening)
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

    control.check_socket_path(path)
    path.unlink(missing_ok=True)
    previous = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_connection, path=str(path), limit=control.MAX_MESSAGE)
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    return server
