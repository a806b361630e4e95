"""Locking an environment after ``idle_lock`` without a request (``core/guards.py`` has the rule).

The idle time counts from the later of the environment's unlock and the last request it answered. A task of its
own, like the service's maintenance loop: it sleeps until the next environment is due, but never longer than the
service's longest sleep, because asyncio's timers stop while a laptop sleeps and the wall clock does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from ..core.clock import Clock
from ..core.guards import Guards, idle_lock_at, idle_lock_reason
from .service import Service, sleep_before


class IdleLock:
    def __init__(self, service: Service, clock: Clock, guards_for: Callable[[str], Guards]) -> None:
        self._service = service
        self._clock = clock
        self._guards_for = guards_for

    async def check(self) -> datetime | None:
        """Lock every environment that has been idle too long; return when the next one may be due."""
        now = self._clock.now()
        upcoming: list[datetime] = []
        for name in self._service.names():
            limit = self._guards_for(name).idle_lock
            if limit is None:
                continue
            due = idle_lock_at(limit, *self._service.activity(name))
            if due is None:
                continue
            if now >= due:
                await self._service.lock(name, idle_lock_reason(limit))
            else:
                upcoming.append(due)
        return min(upcoming, default=None)

    async def run(self) -> None:
        while True:
            due = await self.check()
            await asyncio.sleep(sleep_before(due, self._clock.now()))
