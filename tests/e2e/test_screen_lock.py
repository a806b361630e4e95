"""``lock_on_screen_lock`` through the real daemon: a stand-in logind (on a private bus given as the system bus)
and a stand-in screensaver (on the private session bus) send their signals; the environment that asks for it
locks within a second and says why in ``status`` and in the endpoint's 423; the others stay unlocked. Without any
bus the daemon serves on, logs once, and ``status`` says the watcher is off."""

from __future__ import annotations

import http.client
import json
import shutil
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.support.desktop import StandIn, stand_in
from tests.support.secret_service import private_bus
from tests.support.world import World, require, status_rows, wait_for


def fetch(world: World, name: str) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", world.port, timeout=5)
    try:
        connection.request("GET", f"/v1/credentials/{name}", headers={"Authorization": world.token(name)})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def locked_within(world: World, name: str, service: StandIn, command: str) -> tuple[float, str]:
    """Send the signal; how long until the endpoint answers 423, and its message."""
    assert fetch(world, name)[0] == 200
    sent = service.send(command)
    while time.monotonic() - sent < 5:
        status, body = fetch(world, name)
        if status == 423:
            return time.monotonic() - sent, body["message"]
        time.sleep(0.02)
    raise AssertionError(f"{name} did not lock after {command!r}")


@pytest.fixture
def desktop(world: World) -> Iterator[tuple[World, StandIn, StandIn]]:
    require(shutil.which("dbus-daemon") is not None, "dbus-daemon (apt-get install dbus-daemon)")
    world.config_file.write_text(world.config_file.read_text()
                                 + "\n[environments.production]\nlock_on_screen_lock = true\n")
    with private_bus() as system, stand_in("login1", system) as logind, \
            stand_in("screensaver", world.environment["DBUS_SESSION_BUS_ADDRESS"]) as screensaver:
        world.environment["DBUS_SYSTEM_BUS_ADDRESS"] = system
        world.add_key()
        world.start()
        wait_for(lambda: "screen lock: watching logind and screensaver" in world.cli("status").stdout, 5,
                 "the watcher to subscribe")
        yield world, logind, screensaver
        world.cli("stop", timeout=15)  # before the buses go, so that the daemon's log stays quiet


def test_a_screen_lock_locks_the_environment_that_asks_within_a_second(
        desktop: tuple[World, StandIn, StandIn]) -> None:
    world, logind, screensaver = desktop
    for service, command in ((logind, "lock _32"), (screensaver, "active 1"), (logind, "locked-hint _32 1")):
        assert world.unlock("production", "staging").returncode == 0
        before = datetime.now().strftime("%H:%M")
        took, message = locked_within(world, "production", service, command)
        assert took < 1.0, command
        at = before if f"at {before})" in message else datetime.now().strftime("%H:%M")  # the minute may turn
        assert f"is locked (locked because the screen locked at {at}); run `govuk-imds unlock production`" in message
        rows = status_rows(world)
        assert rows["production"]["problem"] == f"locked because the screen locked at {at}"
        assert rows["staging"]["state"] == "active"  # it did not ask
        assert fetch(world, "staging")[0] == 200
    status = world.cli("status").stdout
    assert "production: locked because the screen locked at" in status
    assert "screen lock: watching logind and screensaver; it locks production" in status


def test_an_idle_session_locks_it_too_and_other_users_sessions_do_not(desktop: tuple[World, StandIn, StandIn]) -> None:
    world, logind, _ = desktop
    assert world.unlock("production").returncode == 0
    logind.send("lock _99")  # another user's session
    time.sleep(0.5)
    assert fetch(world, "production")[0] == 200
    took, message = locked_within(world, "production", logind, "idle-hint _32 1")
    assert took < 1.0
    assert "(locked because the session went idle at " in message


def test_without_any_bus_the_daemon_serves_and_status_says_the_watcher_is_off(world: World) -> None:
    world.config_file.write_text(world.config_file.read_text()
                                 + "\n[environments.production]\nlock_on_screen_lock = true\n")
    world.environment["DBUS_SYSTEM_BUS_ADDRESS"] = f"unix:path={world.home}/no-system-bus"
    world.add_key()
    # The daemon starts with no session bus at all (an ssh login); the CLI keeps the keyring's, for `unlock`.
    keyring = {name: world.environment[name] for name in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")}
    del world.environment["DBUS_SESSION_BUS_ADDRESS"]
    world.environment["XDG_RUNTIME_DIR"] = str(world.home)  # no $XDG_RUNTIME_DIR/bus there either
    world.start()
    world.environment.update(keyring)
    assert world.unlock("production").returncode == 0
    assert fetch(world, "production")[0] == 200
    wait_for(lambda: "screen lock watcher off" in world.cli("status").stdout, 5, "the watcher to give up")
    status = world.cli("status").stdout
    assert (f"screen lock watcher off (logind: off: cannot connect to unix:path={world.home}/no-system-bus"
            in status)
    assert "screensaver: off: no session bus" in status
    assert "production will not lock with the screen" in status
    log = world.log()
    assert log.count("screen lock watcher, logind: off") == 1
    assert log.count("screen lock watcher, screensaver: off") == 1
