"""Stand-ins for the desktop services the screen-lock watcher listens to, each on a bus of the test's own.

    python desktop_service.py login1 BUS_ADDRESS        # org.freedesktop.login1 (logind)
    python desktop_service.py screensaver BUS_ADDRESS   # org.gnome.ScreenSaver and org.freedesktop.ScreenSaver
    python desktop_service.py spoofer BUS_ADDRESS       # a client that owns no name and sends logind's signals

It prints ``READY`` once its names are owned, then reads commands on stdin and prints ``SENT`` after each:

    lock SESSION | unlock SESSION | locked-hint SESSION 1|0 | idle-hint SESSION 1|0   (login1, spoofer)
    active 1|0                                                                         (screensaver)

SESSION is the last part of a session's object path: ``_32`` belongs to the uid running this program, ``_99`` to
uid 4242 (another user). logind answers ``Properties.Get(Session, "User")`` as the real one does: ``(uo)``.
Started by tests/support/desktop.py; it imports nothing but jeepney.
"""

from __future__ import annotations

import os
import sys
import threading

from jeepney import DBusAddress, MessageType, new_error, new_method_return, new_signal  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
from jeepney.low_level import HeaderFields  # type: ignore[import-untyped]

SESSIONS = "/org/freedesktop/login1/session/"
SESSION_INTERFACE = "org.freedesktop.login1.Session"
OWNERS = {"_32": os.getuid(), "_99": 4242}
NAMES = {"login1": ["org.freedesktop.login1"], "screensaver": ["org.gnome.ScreenSaver", "org.freedesktop.ScreenSaver"],
         "spoofer": []}


def main(role: str, address: str) -> None:
    connection = open_dbus_connection(address)
    sending = threading.Lock()

    def send(message: object) -> None:
        with sending:
            connection.send(message)

    for name in NAMES[role]:
        reply = connection.send_and_get_reply(message_bus.RequestName(name, 4))  # 4: do not queue
        assert reply.body[0] == 1, f"could not own {name}"

    def serve() -> None:
        while True:
            message = connection.receive()
            if message.header.message_type is not MessageType.method_call:
                continue
            path, member = message.header.fields.get(HeaderFields.path, ""), message.header.fields.get(
                HeaderFields.member)
            session = path.removeprefix(SESSIONS)
            if role == "login1" and member == "Get" and session in OWNERS and message.body[1] == "User":
                send(new_method_return(message, "v", (("(uo)", (OWNERS[session], f"/org/freedesktop/login1/user/"
                                                                                 f"_{OWNERS[session]}")),)))
            else:
                send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no {member} here",)))

    threading.Thread(target=serve, daemon=True).start()
    print("READY", flush=True)
    for line in sys.stdin:
        command, *arguments = line.split()
        for message in signals(command, arguments):
            send(message)
        print("SENT", flush=True)


def signals(command: str, arguments: list[str]) -> list[object]:
    if command == "active":
        on = arguments[0] == "1"
        return [new_signal(DBusAddress(path, interface=interface), "ActiveChanged", "b", (on,))
                for path, interface in (("/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"),
                                        ("/ScreenSaver", "org.freedesktop.ScreenSaver"))]
    path = SESSIONS + arguments[0]
    if command in ("lock", "unlock"):
        return [new_signal(DBusAddress(path, interface=SESSION_INTERFACE), command.capitalize())]
    hint = {"locked-hint": "LockedHint", "idle-hint": "IdleHint"}[command]
    changed = {hint: ("b", arguments[1] == "1")}
    return [new_signal(DBusAddress(path, interface="org.freedesktop.DBus.Properties"), "PropertiesChanged",
                       "sa{sv}as", (SESSION_INTERFACE, changed, []))]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
