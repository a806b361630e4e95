"""Locking environments when the person walks away from the screen (``lock_on_screen_lock = true``): on Linux the
D-Bus signals of logind and of the desktop's screensaver, read with jeepney; on macOS ``screen_lock_macos``.

Two sources, each watched on its own, each optional:

- **logind**, on the system bus. A session's ``Lock`` signal asks its locker to lock (``loginctl lock-session``,
  suspend hooks); its ``LockedHint`` property turns true once the screen is locked (GNOME, KDE and most lockers
  set it) and ``IdleHint`` when the session goes idle (the screen blanks). Every session of ours is watched, by
  path prefix and then by the session's ``User``, not just the one the daemon started in: a ``systemd --user``
  service belongs to no session and outlives logins.
- **the screensaver**, on the session bus: ``org.gnome.ScreenSaver`` and ``org.freedesktop.ScreenSaver`` (KDE and
  others) send ``ActiveChanged(true)`` when the shield comes up.

Trust: the system bus delivers a signal matched on ``sender=org.freedesktop.login1`` only when logind sent it, so
no other program can fake one. Anything on the session bus may send ``ActiveChanged``: that can only lock early,
the safe direction. A source that is missing (no logind in a container, no session bus over ssh) or goes away
(log out, bus restart) is logged once, shown by ``status``, and tried again with a growing pause; the daemon serves
on regardless.

Only jeepney's plain connection is used (``open_dbus_connection``, ``send``, ``receive``): its ``receive`` raises
``EOFError`` when the bus goes, which a router's filter queue would never report.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from jeepney import DBusAddress, MatchRule, MessageType, Properties  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.asyncio import open_dbus_connection  # type: ignore[import-untyped]
from jeepney.low_level import HeaderFields  # type: ignore[import-untyped]

from ..core.guards import SCREEN_LOCKED, SESSION_IDLE
from ..desktop.dbus import session_bus_address

log = logging.getLogger(__name__)

LOGIN1 = "org.freedesktop.login1"
SESSION_INTERFACE = "org.freedesktop.login1.Session"
SESSIONS = "/org/freedesktop/login1/session"
SCREENSAVERS = ("org.gnome.ScreenSaver", "org.freedesktop.ScreenSaver")
SYSTEM_BUS_DEFAULT = "unix:path=/var/run/dbus/system_bus_socket"
_CONNECT_TIMEOUT = 5.0
_CALL_TIMEOUT = 5.0
_FIRST_RETRY = 5.0
_LAST_RETRY = 300.0

OnLock = Callable[[str], Awaitable[None]]


class _Bus:
    """A plain jeepney connection with just enough to make a call while signals keep arriving."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._pending: collections.deque[Any] = collections.deque()

    @classmethod
    async def open(cls, address: str) -> _Bus:

        return cls(await asyncio.wait_for(open_dbus_connection(address), _CONNECT_TIMEOUT))

    async def close(self) -> None:
        await self._connection.close()

    async def call(self, message: Any) -> tuple[Any, ...]:
        """Send a method call and return its reply's body; an error reply raises ``LookupError``. Messages that
        arrive meanwhile are kept for ``next``."""

        serial = next(self._connection.outgoing_serial)
        await self._connection.send(message, serial=serial)
        async with asyncio.timeout(_CALL_TIMEOUT):
            while True:
                reply = await self._connection.receive()
                if reply.header.fields.get(HeaderFields.reply_serial) != serial:
                    self._pending.append(reply)
                    continue
                if reply.header.message_type is MessageType.error:
                    raise LookupError(f"{reply.header.fields.get(HeaderFields.error_name)}: {reply.body}")
                return tuple(reply.body)

    async def next(self) -> Any:
        """The next message; ``EOFError`` when the bus has gone."""
        if self._pending:
            return self._pending.popleft()
        return await self._connection.receive()


class ScreenLockWatcher:
    """Calls ``on_lock(what happened)`` for every lock or idle event of ours, from whichever source has one."""

    def __init__(self, on_lock: OnLock, environ: Mapping[str, str]) -> None:
        self._on_lock = on_lock
        self._system_bus = environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS_DEFAULT
        self._session_bus = session_bus_address(environ)
        self._state: dict[str, str] = {"logind": "starting", "screensaver": "starting"}
        #: session path -> its user's uid (a session never changes hands).
        self._session_owners: dict[str, int] = {}

    def status(self) -> dict[str, str]:
        """Each source's state for ``status``: "watching", or "off: <why>"."""
        return dict(self._state)

    @property
    def watching(self) -> bool:
        return "watching" in self._state.values()

    async def run(self) -> None:
        """Watch both sources until cancelled."""
        await asyncio.gather(
            self._keep_watching("logind", self._system_bus, self._watch_logind),
            self._keep_watching("screensaver", self._session_bus, self._watch_screensaver),
        )

    async def _keep_watching(self, source: str, address: str | None,
                             watch: Callable[[_Bus], Awaitable[None]]) -> None:
        pause = _FIRST_RETRY
        while True:
            if address is None:
                self._set(source, "off: no session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no "
                                  "$XDG_RUNTIME_DIR/bus)")
                return
            try:
                bus = await _Bus.open(address)
            except (OSError, EOFError, TimeoutError, ValueError, RuntimeError) as exc:
                self._set(source, f"off: cannot connect to {address} ({_describe(exc)})")
            else:
                try:
                    await watch(bus)
                except (OSError, EOFError, TimeoutError, LookupError, ValueError) as exc:
                    if self._state[source] == "watching":
                        pause = _FIRST_RETRY  # it worked until now: a bus restart, try again soon
                    self._set(source, f"off: {_describe(exc)}")
                finally:
                    await _close_quietly(bus)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LAST_RETRY)

    def _set(self, source: str, state: str) -> None:
        if self._state.get(source) != state:
            (log.info if state == "watching" else log.warning)("screen lock watcher, %s: %s", source, state)
        self._state[source] = state

    async def _watch_logind(self, bus: _Bus) -> None:

        await bus.call(message_bus.GetNameOwner(LOGIN1))  # LookupError "NameHasNoOwner" without logind
        # sender=<well-known name>: the bus delivers only what logind itself sends.
        lock = MatchRule(type="signal", sender=LOGIN1, interface=SESSION_INTERFACE, member="Lock",
                         path_namespace=SESSIONS)
        changed = MatchRule(type="signal", sender=LOGIN1, interface="org.freedesktop.DBus.Properties",
                            member="PropertiesChanged", path_namespace=SESSIONS)
        changed.add_arg_condition(0, SESSION_INTERFACE)
        for rule in (lock, changed):
            await bus.call(message_bus.AddMatch(rule))
        self._set("logind", "watching")
        while True:
            message = await bus.next()
            fields = message.header.fields
            path = fields.get(HeaderFields.path, "")
            if message.header.message_type is not MessageType.signal or not path.startswith(SESSIONS + "/"):
                continue
            if fields.get(HeaderFields.member) == "Lock":
                event = SCREEN_LOCKED
            elif fields.get(HeaderFields.member) == "PropertiesChanged":
                properties = message.body[1]
                if properties.get("LockedHint", ("b", False))[1] is True:
                    event = SCREEN_LOCKED
                elif properties.get("IdleHint", ("b", False))[1] is True:
                    event = SESSION_IDLE
                else:
                    continue
            else:
                continue
            if path not in self._session_owners:
                session = DBusAddress(path, bus_name=LOGIN1, interface=SESSION_INTERFACE)
                try:
                    (_signature, (uid, _user_path)), = await bus.call(Properties(session).get("User"))
                except LookupError:
                    continue  # the session has gone already
                self._session_owners[path] = int(uid)
            if self._session_owners[path] == os.getuid():
                await self._on_lock(event)

    async def _watch_screensaver(self, bus: _Bus) -> None:

        for interface in SCREENSAVERS:
            await bus.call(message_bus.AddMatch(MatchRule(type="signal", interface=interface, member="ActiveChanged")))
        self._set("screensaver", "watching")
        while True:
            message = await bus.next()
            fields = message.header.fields
            if (message.header.message_type is MessageType.signal
                    and fields.get(HeaderFields.interface) in SCREENSAVERS
                    and fields.get(HeaderFields.member) == "ActiveChanged"
                    and message.body and message.body[0] is True):
                await self._on_lock(SCREEN_LOCKED)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the bus closed the connection"
    if isinstance(exc, TimeoutError):
        return "the bus did not answer"
    if isinstance(exc, LookupError) and "NameHasNoOwner" in str(exc):
        return "logind is not running on the system bus"
    return str(exc) or type(exc).__name__


async def _close_quietly(bus: _Bus) -> None:
    with contextlib.suppress(OSError, EOFError):
        await bus.close()
