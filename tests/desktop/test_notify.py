"""Desktop notifications over a real D-Bus bus (a private one, with the stand-in notification server of
tests/support/notifications.py), and what happens with no bus, no server, or a server that never answers."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from govuk_imds.desktop.dbus import session_bus_address
from govuk_imds.desktop.notify import Notification, osascript_argv, show, show_blocking
from tests.support.notifications import notification_server
from tests.support.secret_service import private_secret_service
from tests.support.world import require


@pytest.fixture
def bus(tmp_path: Path, keyring_parts: None) -> Iterator[dict[str, str]]:
    """A private session bus (with no service activation: nothing real can start on it)."""
    with private_secret_service(tmp_path / "bus") as environment:
        yield environment


def test_a_notification_reaches_the_server_with_its_body_escaped(bus: dict[str, str], tmp_path: Path) -> None:
    with notification_server(bus["DBUS_SESSION_BUS_ADDRESS"], tmp_path / "record") as server:
        shown = show_blocking(Notification("govuk-imds: production is locked", "<b>run</b> & see"), bus)
        [received] = server.received()
    assert shown
    assert received["app"] == "govuk-imds"
    assert received["summary"] == "govuk-imds: production is locked"
    assert received["body"] == "&lt;b&gt;run&lt;/b&gt; &amp; see"  # servers may render markup in the body
    assert received["hints"] == {"urgency": 1}


def test_the_stand_in_answers_a_real_client_as_a_server_does(bus: dict[str, str], tmp_path: Path) -> None:
    require(shutil.which("notify-send") is not None, "notify-send (apt-get install libnotify-bin)")
    with notification_server(bus["DBUS_SESSION_BUS_ADDRESS"], tmp_path / "record") as server:
        sent = subprocess.run(["notify-send", "--print-id", "hello", "world"], env=bus, capture_output=True,
                              text=True, timeout=10, check=False)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == "1"
        assert [(item["summary"], item["body"]) for item in server.received()] == [("hello", "world")]


def test_no_server_on_the_bus_is_not_shown_and_raises_nothing(bus: dict[str, str]) -> None:
    assert not show_blocking(Notification("nobody is listening"), bus)


def test_no_bus_at_all_is_not_shown(tmp_path: Path) -> None:
    assert session_bus_address({"XDG_RUNTIME_DIR": str(tmp_path)}) is None
    assert not show_blocking(Notification("x"), {"XDG_RUNTIME_DIR": str(tmp_path)})
    gone = {"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-such-socket"}
    assert not show_blocking(Notification("x"), gone)
    assert not show_blocking(Notification("x"), {"DBUS_SESSION_BUS_ADDRESS": "tcp:host=localhost,port=1"})


def test_the_dbus_user_session_socket_is_found_without_the_variable(tmp_path: Path) -> None:
    (tmp_path / "bus").touch()
    assert session_bus_address({"XDG_RUNTIME_DIR": str(tmp_path)}) == f"unix:path={tmp_path}/bus"


def test_a_bus_that_never_answers_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "silent"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen()
        outcome = asyncio.run(show(Notification("x"), {"DBUS_SESSION_BUS_ADDRESS": f"unix:path={path}"}))
    assert outcome is False


def test_a_server_that_takes_the_call_and_never_answers_gives_up(bus: dict[str, str], tmp_path: Path) -> None:
    with notification_server(bus["DBUS_SESSION_BUS_ADDRESS"], tmp_path / "record", silent=True) as server:
        assert not show_blocking(Notification("x"), bus)
        assert len(server.received()) == 1


def test_on_macos_the_texts_are_arguments_not_script() -> None:
    argv = osascript_argv(Notification('say "hi" & do shell script "rm -rf ~"', "body"))
    assert argv[:2] == ["osascript", "-e"]
    assert argv[-2:] == ['say "hi" & do shell script "rm -rf ~"', "body"]  # never spliced into the script
    assert not any("rm -rf" in part for part in argv[:-2])
    assert not asyncio.run(show(Notification("x"), {}, platform="darwin")) or shutil.which("osascript")
