"""The screen-lock watcher against stand-in logind and screensaver services on private D-Bus buses: every lock or
idle event of ours arrives within a second; other users' sessions, unlocks and a program faking logind's signals
do not; a missing or vanishing bus turns the watcher off with a reason, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Iterator

import pytest

from govuk_imds.core.guards import SCREEN_LOCKED, SESSION_IDLE
from govuk_imds.daemon.screen_lock import ScreenLockWatcher
from tests.daemon.test_service import in_event_loop
from tests.support.desktop import StandIn, stand_in
from tests.support.secret_service import private_bus
from tests.support.world import require


@pytest.fixture
def buses() -> Iterator[tuple[str, str]]:
    require(shutil.which("dbus-daemon") is not None, "dbus-daemon (apt-get install dbus-daemon)")
    with private_bus() as system, private_bus() as session:
        yield system, session


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []
        self.arrived = asyncio.Event()

    async def on_lock(self, event: str) -> None:
        self.seen.append((time.monotonic(), event))
        self.arrived.set()

    async def after(self, service: StandIn, command: str, wait: float = 1.0) -> list[tuple[float, str]]:
        """Send ``command`` from ``service``; the events that arrive within ``wait`` seconds, with their delay."""
        self.arrived.clear()
        before = len(self.seen)
        sent = await asyncio.to_thread(service.send, command)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.arrived.wait(), wait)
        await asyncio.sleep(0.05)  # a second event from the same signal would arrive now
        return [(at - sent, event) for at, event in self.seen[before:]]


async def watching(watcher: ScreenLockWatcher, *sources: str) -> None:
    for _ in range(200):
        if all(watcher.status()[source] == "watching" for source in sources):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not watching: {watcher.status()}")


@in_event_loop
async def test_every_lock_and_idle_event_of_ours_arrives_within_a_second(buses: tuple[str, str]) -> None:
    system, session = buses
    events = Events()
    watcher = ScreenLockWatcher(events.on_lock, {"DBUS_SYSTEM_BUS_ADDRESS": system,
                                                 "DBUS_SESSION_BUS_ADDRESS": session})
    with stand_in("login1", system) as logind, stand_in("screensaver", session) as screensaver:
        task = asyncio.get_running_loop().create_task(watcher.run())
        try:
            await watching(watcher, "logind", "screensaver")
            expected = [
                (logind, "lock _32", [SCREEN_LOCKED]),
                (logind, "locked-hint _32 1", [SCREEN_LOCKED]),
                (logind, "idle-hint _32 1", [SESSION_IDLE]),
                (screensaver, "active 1", [SCREEN_LOCKED, SCREEN_LOCKED]),  # GNOME's and freedesktop's
                (logind, "unlock _32", []),
                (logind, "locked-hint _32 0", []),
                (screensaver, "active 0", []),
                (logind, "lock _99", []),  # another user's session
            ]
            for service, command, wanted in expected:
                arrived = await events.after(service, command, wait=1.0 if wanted else 0.3)
                assert [event for _, event in arrived] == wanted, command
                assert all(delay < 1.0 for delay, _ in arrived), (command, arrived)
        finally:
            task.cancel()


@in_event_loop
async def test_a_program_sending_loginds_signals_is_not_believed(buses: tuple[str, str]) -> None:
    system, _ = buses
    events = Events()
    watcher = ScreenLockWatcher(events.on_lock, {"DBUS_SYSTEM_BUS_ADDRESS": system})
    with stand_in("login1", system) as logind, stand_in("spoofer", system) as spoofer:
        task = asyncio.get_running_loop().create_task(watcher.run())
        try:
            await watching(watcher, "logind")
            assert await events.after(spoofer, "lock _32", wait=0.5) == []
            assert await events.after(spoofer, "locked-hint _32 1", wait=0.3) == []
            assert [event for _, event in await events.after(logind, "lock _32")] == [SCREEN_LOCKED]
        finally:
            task.cancel()


@in_event_loop
async def test_without_buses_the_watcher_is_off_and_says_why(tmp_path_factory: pytest.TempPathFactory) -> None:
    empty = tmp_path_factory.mktemp("no-bus")
    events = Events()
    watcher = ScreenLockWatcher(events.on_lock, {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={empty}/none",
                                                 "XDG_RUNTIME_DIR": str(empty)})
    task = asyncio.get_running_loop().create_task(watcher.run())
    try:
        for _ in range(200):
            if "starting" not in watcher.status().values():
                break
            await asyncio.sleep(0.01)
        status = watcher.status()
    finally:
        task.cancel()
    assert status["logind"].startswith(f"off: cannot connect to unix:path={empty}/none")
    assert status["screensaver"] == ("off: no session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no "
                                     "$XDG_RUNTIME_DIR/bus)")
    assert not watcher.watching


async def state_of(watcher: ScreenLockWatcher, source: str, leaving: str) -> str:
    for _ in range(300):
        if watcher.status()[source] != leaving:
            break
        await asyncio.sleep(0.01)
    return watcher.status()[source]


@in_event_loop
async def test_a_bus_without_logind_turns_the_source_off(buses: tuple[str, str]) -> None:
    system, _ = buses
    watcher = ScreenLockWatcher(Events().on_lock, {"DBUS_SYSTEM_BUS_ADDRESS": system})
    task = asyncio.get_running_loop().create_task(watcher.run())
    try:
        assert await state_of(watcher, "logind", "starting") == "off: logind is not running on the system bus"
    finally:
        task.cancel()


@in_event_loop
async def test_a_bus_that_goes_away_turns_the_source_off() -> None:
    require(shutil.which("dbus-daemon") is not None, "dbus-daemon (apt-get install dbus-daemon)")
    with private_bus() as session, stand_in("screensaver", session):
        watcher = ScreenLockWatcher(Events().on_lock, {"DBUS_SESSION_BUS_ADDRESS": session})
        task = asyncio.get_running_loop().create_task(watcher.run())
        await watching(watcher, "screensaver")
    try:  # the bus is gone now (a log out, a restart of the bus)
        assert await state_of(watcher, "screensaver", "watching") == "off: the bus closed the connection"
    finally:
        task.cancel()
