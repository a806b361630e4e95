"""The D-Bus session bus, just enough of it for one method call: where the bus is, and a call that gives up.

jeepney (already installed with SecretStorage on Linux) speaks the protocol; this module only finds the bus and
bounds every call with a timeout, so a bus that is gone, refuses us or never answers costs at most that long and
raises nothing. Reusable by anything that makes a one-off call (notifications; a watcher that keeps a connection
open needs more than this).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

#: The longest a call may take, connecting and authenticating included.
CALL_TIMEOUT_SECONDS = 2.0


def session_bus_address(environ: Mapping[str, str]) -> str | None:
    """``DBUS_SESSION_BUS_ADDRESS``, else the dbus-user-session socket ``$XDG_RUNTIME_DIR/bus`` when it exists (a
    ``systemd --user`` service may start before the variable is imported); ``None`` when there is no session bus
    (an ssh session, a container, macOS)."""
    if environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return environ["DBUS_SESSION_BUS_ADDRESS"]
    path = os.path.join(environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}", "bus")
    return f"unix:path={path}" if os.path.exists(path) else None


def _failures() -> tuple[type[BaseException], ...]:
    """What a missing, refusing or silent bus raises: the socket's errors, jeepney's authentication error (a
    ``ValueError``), an address jeepney cannot use (``RuntimeError``, ``KeyError``) and timeouts."""
    return (OSError, EOFError, TimeoutError, ValueError, RuntimeError, KeyError)


def _body(reply: Any, what: str) -> tuple[Any, ...] | None:
    from jeepney import MessageType  # type: ignore[import-untyped]

    if reply.header.message_type is MessageType.error:  # e.g. ServiceUnknown: nobody owns the name
        log.debug("D-Bus %s: error reply %s", what, reply.body)
        return None
    return tuple(reply.body)


async def call(address: str, message: Any, *, timeout: float = CALL_TIMEOUT_SECONDS) -> tuple[Any, ...] | None:
    """Send one method call on a new connection and return the reply's body; ``None`` on an error reply or when
    the bus cannot be reached, refuses us or does not answer within ``timeout``."""
    from jeepney.io.asyncio import DBusRouter  # type: ignore[import-untyped]

    try:
        async with asyncio.timeout(timeout):
            connection = await _connect(address)
            try:
                async with DBusRouter(connection) as router:
                    reply = await router.send_and_get_reply(message)
            finally:
                await connection.close()
    except _failures() as exc:
        log.debug("D-Bus call on %s failed: %r", address, exc)
        return None
    return _body(reply, "call")


async def _connect(address: str) -> Any:
    """jeepney's ``open_dbus_connection``, except that a bus which is given up on (it never finishes the
    handshake) has its socket closed here rather than left for the garbage collector."""
    from jeepney.auth import BEGIN, Authenticator  # type: ignore[import-untyped]
    from jeepney.bus import get_bus  # type: ignore[import-untyped]
    from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
    from jeepney.io.asyncio import DBusConnection, DBusRouter, Proxy

    reader, writer = await asyncio.open_unix_connection(get_bus(address))
    try:
        handshake = Authenticator()
        for request in handshake:
            writer.write(request)
            await writer.drain()
            answer = await reader.read(1024)
            if not answer:
                raise EOFError("the bus closed the connection during authentication")
            handshake.feed(answer)
        writer.write(BEGIN)
        await writer.drain()
        connection = DBusConnection(reader, writer)
        async with DBusRouter(connection) as router:
            connection.unique_name = (await Proxy(message_bus, router).Hello())[0]
    except BaseException:
        writer.close()
        raise
    return connection


def call_blocking(address: str, message: Any, *, timeout: float = CALL_TIMEOUT_SECONDS) -> tuple[Any, ...] | None:
    """``call`` for code without an event loop (the CLI). The asyncio form, because its timeout covers every step:
    jeepney's blocking connection bounds authentication but not the ``Hello`` that follows it."""
    return asyncio.run(call(address, message, timeout=timeout))
