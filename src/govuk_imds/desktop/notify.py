"""Desktop notifications: ``org.freedesktop.Notifications`` over the D-Bus session bus on Linux, the notification
centre through ``osascript`` on macOS.

A notification is a courtesy, never a dependency: with no bus, no notification server, a bus that never answers,
or no ``osascript``, ``show`` returns ``False`` within a couple of seconds and raises nothing. Texts must hold no
secret (on macOS they are ``osascript``'s arguments, visible in ``ps`` while it runs); ours name an environment and
a command to type.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .dbus import CALL_TIMEOUT_SECONDS, call, session_bus_address

log = logging.getLogger(__name__)

APP_NAME = "govuk-imds"
ICON = "dialog-password"
URGENCY_NORMAL = 1
#: The texts are ``on run argv``'s arguments: AppleScript never parses them, so nothing in them needs quoting and
#: nothing in them can run. (Untested here: there is no Mac. The notification shows as from Script Editor, which
#: must be allowed to notify once, in System Settings > Notifications.)
OSASCRIPT_NOTIFY = ("on run argv", "display notification (item 2 of argv) with title (item 1 of argv)", "end run")


@dataclass(frozen=True)
class Notification:
    summary: str  # plain text, one line
    body: str = ""  # plain text; escaped on the way, because servers may render a subset of HTML in it


def notify_message(notification: Notification, replaces: int = 0) -> Any:
    """The ``Notify`` method call (``susssasa{sv}i``)."""
    from jeepney import DBusAddress, new_method_call  # type: ignore[import-untyped]

    service = DBusAddress(
        "/org/freedesktop/Notifications",
        bus_name="org.freedesktop.Notifications",
        interface="org.freedesktop.Notifications",
    )
    body = html.escape(notification.body, quote=False)
    hints = {"urgency": ("y", URGENCY_NORMAL)}
    return new_method_call(
        service, "Notify", "susssasa{sv}i", (APP_NAME, replaces, ICON, notification.summary, body, [], hints, -1)
    )


def osascript_argv(notification: Notification) -> list[str]:
    lines = [part for line in OSASCRIPT_NOTIFY for part in ("-e", line)]
    return ["osascript", *lines, notification.summary, notification.body]


async def show(notification: Notification, environ: Mapping[str, str], *, platform: str = sys.platform) -> bool:
    """Show ``notification`` to the person at the screen; ``False`` when it could not be shown, for any reason."""
    if platform == "darwin":
        return await _osascript(osascript_argv(notification))
    address = session_bus_address(environ)
    if address is None:
        return False
    return await call(address, notify_message(notification)) is not None


def show_blocking(notification: Notification, environ: Mapping[str, str]) -> bool:
    """``show`` for the CLI, which has no event loop."""
    return asyncio.run(show(notification, environ))


async def _osascript(argv: list[str]) -> bool:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        log.debug("no notification: %s", exc)
        return False
    try:
        async with asyncio.timeout(CALL_TIMEOUT_SECONDS * 2):
            return await process.wait() == 0
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return False
