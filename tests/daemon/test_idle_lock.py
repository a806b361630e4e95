"""``idle_lock``: an environment locks after that long without a request, counted from its unlock or its last
answered request, on the fake clock; the lock says why, in ``status`` and in the endpoint's refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from govuk_imds.core.guards import NO_GUARDS, Guards
from govuk_imds.daemon.idle import IdleLock
from govuk_imds.errors import EnvironmentLocked
from tests.daemon.test_service import in_event_loop, world

MINUTE = timedelta(minutes=1)
FOUR_HOURS = timedelta(hours=4)


def guards(name: str) -> Guards:
    return Guards(idle_lock=FOUR_HOURS) if name == "production" else NO_GUARDS


@in_event_loop
async def test_an_environment_locks_after_its_idle_time_without_a_request() -> None:
    w = world("production", "staging")
    idle = IdleLock(w.service, w.clock, guards)
    await w.unlock("production")
    await w.unlock("staging")
    unlocked = w.clock.now()

    assert await idle.check() == unlocked + FOUR_HOURS  # when to look again
    w.clock.advance(FOUR_HOURS - MINUTE)
    await w.service.serve("production")  # a request restarts the count
    w.clock.advance(FOUR_HOURS - MINUTE)
    assert await idle.check() == w.clock.now() + MINUTE
    assert w.status_of("production")["state"] == "active"

    w.clock.advance(MINUTE)
    assert await idle.check() is None
    row = w.status_of("production")
    assert (row["state"], row["problem"]) == ("locked", "locked after 4 h without a request")
    with pytest.raises(EnvironmentLocked, match=r"is locked \(locked after 4 h without a request\); run `govuk-imds "
                                                r"unlock production`"):
        await w.service.serve("production")
    assert w.status_of("staging")["state"] == "active"  # no idle_lock there
    await w.service.close()


@in_event_loop
async def test_a_locked_environment_is_left_alone_and_a_new_unlock_counts_afresh() -> None:
    w = world("production")
    idle = IdleLock(w.service, w.clock, guards)
    assert await idle.check() is None  # locked: nothing to count
    await w.unlock("production")
    w.clock.advance(FOUR_HOURS + MINUTE)
    await idle.check()
    assert w.status_of("production")["state"] == "locked"
    await w.unlock("production")
    assert await idle.check() == w.clock.now() + FOUR_HOURS
    assert w.status_of("production")["state"] == "active"
    await w.service.close()
