"""Locking environments when the screen locks, on macOS: the distributed notification ``com.apple.screenIsLocked``
through CoreFoundation with ctypes (no pyobjc).

UNTESTED: no Mac was available; written from Apple's CFNotificationCenter reference. Check on a Mac: with
``lock_on_screen_lock = true``, lock the screen (ctrl-cmd-Q) and ``govuk-imds status`` must say "locked because
the screen locked at ...". The observer needs the daemon to run in the user's GUI (Aqua) session, which a
LaunchAgent does and a daemon started over ssh does not; there, no notification ever arrives and ``status`` cannot
tell (it says "watching").

A CoreFoundation run loop runs in its own thread; its callback hands each event to the event loop with
``call_soon_threadsafe``. The ctypes callback object is kept referenced for as long as the observer exists.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ..core.guards import SCREEN_LOCKED

log = logging.getLogger(__name__)

_UTF8 = 0x08000100
_DELIVER_IMMEDIATELY = 4
_NOTIFICATIONS = ("com.apple.screenIsLocked", "com.apple.screensaver.didstart")
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_void_p)


class MacScreenLockWatcher:
    def __init__(self, on_lock: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._on_lock = on_lock
        self._state = {"notifications": "starting"}
        self._run_loop: int | None = None
        self._callback: Any = None

    def status(self) -> dict[str, str]:
        return dict(self._state)

    @property
    def watching(self) -> bool:
        return self._state["notifications"] == "watching"

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            cf = _core_foundation()
        except OSError as exc:
            self._state["notifications"] = f"off: CoreFoundation cannot be loaded ({exc})"
            log.warning("screen lock watcher: %s", self._state["notifications"])
            return

        def on_notification(center: Any, observer: Any, name: Any, sender: Any, info: Any) -> None:
            loop.call_soon_threadsafe(lambda: loop.create_task(self._on_lock(SCREEN_LOCKED)))

        self._callback = _CALLBACK(on_notification)
        started = threading.Event()

        def observe() -> None:
            center = cf.CFNotificationCenterGetDistributedCenter()
            for name in _NOTIFICATIONS:
                text = cf.CFStringCreateWithCString(None, name.encode(), _UTF8)
                cf.CFNotificationCenterAddObserver(center, None, self._callback, text, None, _DELIVER_IMMEDIATELY)
            self._run_loop = cf.CFRunLoopGetCurrent()
            started.set()
            cf.CFRunLoopRun()

        threading.Thread(target=observe, name="govuk-imds-screen-lock", daemon=True).start()
        await asyncio.to_thread(started.wait, 5)
        self._state["notifications"] = "watching" if started.is_set() else "off: the observer did not start"
        log.info("screen lock watcher: %s", self._state["notifications"])
        try:
            await asyncio.Event().wait()
        finally:
            if self._run_loop is not None:
                cf.CFRunLoopStop(self._run_loop)


def _core_foundation() -> Any:
    cf = ctypes.CDLL(ctypes.util.find_library("CoreFoundation") or "CoreFoundation")
    void = ctypes.c_void_p
    cf.CFStringCreateWithCString.restype = void
    cf.CFStringCreateWithCString.argtypes = [void, ctypes.c_char_p, ctypes.c_uint32]
    cf.CFNotificationCenterGetDistributedCenter.restype = void
    cf.CFNotificationCenterAddObserver.argtypes = [void, void, _CALLBACK, void, void, ctypes.c_long]
    cf.CFRunLoopGetCurrent.restype = void
    cf.CFRunLoopStop.argtypes = [void]
    cf.CFRunLoopRun.restype = None
    return cf
