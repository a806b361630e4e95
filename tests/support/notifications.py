"""A stand-in desktop notification server for tests: it owns ``org.freedesktop.Notifications`` on a private D-Bus
bus and writes every ``Notify`` it is sent as one JSON line, answering as a real server does (a notification id).

    with notification_server(bus_address, tmp_path / "notifications") as server:
        ...
        server.received()  # [{"app": "govuk-imds", "summary": ..., "body": ..., ...}, ...]

It is a process of its own (``python tests/support/notifications.py ADDRESS RECORD``), so the daemon under test
talks to it over a real bus exactly as it would to dunst or GNOME Shell. Checked against the real client too
(``notify-send``) in tests/desktop. ``silent=True`` makes it take the calls and never answer (a hung server).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAME = "org.freedesktop.Notifications"


class NotificationServer:
    def __init__(self, process: subprocess.Popen[str], record: Path) -> None:
        self.process = process
        self.record = record

    def received(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def notification_server(address: str, record: Path, *, silent: bool = False) -> Iterator[NotificationServer]:
    process = subprocess.Popen(
        [sys.executable, __file__, address, str(record), "silent" if silent else "answer"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().strip()
        assert ready == "READY", f"the notification stand-in did not start (said {ready!r})"
        yield NotificationServer(process, record)
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def serve(address: str, record: str, mode: str) -> None:
    from jeepney import MessageType, new_error, new_method_return  # type: ignore[import-untyped]
    from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
    from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
    from jeepney.low_level import HeaderFields  # type: ignore[import-untyped]

    ids = itertools.count(1)
    with open_dbus_connection(address) as connection, open(record, "a", buffering=1) as out:
        reply = connection.send_and_get_reply(message_bus.RequestName(NAME, 4))  # 4: do not queue
        if reply.body[0] != 1:  # 1: primary owner
            sys.exit(f"could not own {NAME}: {reply.body}")
        print("READY", flush=True)
        while True:
            message = connection.receive()
            if message.header.message_type is not MessageType.method_call:
                continue
            member = message.header.fields.get(HeaderFields.member)
            if member == "Notify":
                number = next(ids)
                app, replaces, icon, summary, body, actions, hints, expire = message.body
                out.write(json.dumps({"id": number, "app": app, "replaces": replaces, "icon": icon,
                                      "summary": summary, "body": body, "actions": list(actions),
                                      "hints": {key: value[1] for key, value in hints.items()},
                                      "expire": expire}) + "\n")
                if mode == "answer":
                    connection.send(new_method_return(message, "u", (number,)))
            elif member == "GetServerInformation":
                connection.send(new_method_return(message, "ssss", ("stand-in", "govuk-imds tests", "0", "1.2")))
            elif member == "GetCapabilities":
                connection.send(new_method_return(message, "as", (["body"],)))
            else:
                connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (str(member),)))


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], sys.argv[3])
