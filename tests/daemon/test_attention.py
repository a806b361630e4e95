"""The daemon's side of a tool refused as locked (``daemon/attention.py``), on a fake clock with recording stand-ins
for the desktop and for the unlock it starts; the real desktop and the real unlock process are in
tests/e2e/test_locked_tools.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from govuk_imds.core.attention import REMIND_EVERY
from govuk_imds.daemon.attention import Attention, UnlockOutcome
from tests.daemon.test_service import in_event_loop, settle
from tests.support.clock import FakeClock


class Desktop:
    def __init__(self, shown: bool = True) -> None:
        self.notices: list[tuple[str, str]] = []
        self.shown = shown

    async def __call__(self, summary: str, body: str) -> bool:
        self.notices.append((summary, body))
        return self.shown


class Unlocks:
    """Records each unlock started; each waits until the test lets it finish with ``outcome``."""

    def __init__(self) -> None:
        self.started: list[tuple[str, bool]] = []
        self.release = asyncio.Event()
        self.outcome = UnlockOutcome(True)

    async def __call__(self, environment: str, *, mfa_process: bool) -> UnlockOutcome:
        self.started.append((environment, mfa_process))
        await self.release.wait()
        return self.outcome


def attention(mode: str, clock: FakeClock, desktop: Desktop, unlocks: Unlocks | None = None,
              fresh: tuple[str, ...] = ()) -> Attention:
    return Attention(mode, lambda name: name in fresh, clock, desktop, unlocks or Unlocks())


@in_event_loop
async def test_a_flood_of_refusals_is_one_notification_per_environment_per_interval() -> None:
    clock, desktop = FakeClock(), Desktop()
    watcher = attention("notify", clock, desktop)
    for _ in range(1000):
        watcher.refused("production", "aws-cli/1.32.0 Python/3.11")
        watcher.refused("staging", None)
    await settle()
    assert sorted(summary for summary, _ in desktop.notices) == ["govuk-imds: production is locked",
                                                                  "govuk-imds: staging is locked"]
    clock.advance(REMIND_EVERY - timedelta(seconds=1))
    watcher.refused("production", None)
    await settle()
    assert len(desktop.notices) == 2
    clock.advance(timedelta(seconds=1))
    watcher.refused("production", None)
    await settle()
    assert len(desktop.notices) == 3


@in_event_loop
async def test_refused_returns_before_the_desktop_answers() -> None:
    """The request path only starts the work: a desktop that never answers holds up nothing."""
    stuck = asyncio.Event()

    async def never(summary: str, body: str) -> bool:
        await stuck.wait()
        return True

    watcher = Attention("notify", lambda name: False, FakeClock(), never, Unlocks())
    watcher.refused("production", None)  # synchronous: returns at once
    await settle()
    await watcher.close()  # and what hangs is stopped at shutdown


@in_event_loop
async def test_gui_mode_starts_one_unlock_at_a_time_and_tells_how_it_went() -> None:
    clock, desktop, unlocks = FakeClock(), Desktop(), Unlocks()
    watcher = attention("gui", clock, desktop, unlocks)
    watcher.refused("production", None)
    await settle()
    clock.advance(REMIND_EVERY * 2)  # the prompt is still open: no second one, however long it takes
    watcher.refused("production", None)
    await settle()
    assert unlocks.started == [("production", True)]
    unlocks.release.set()
    await settle()
    assert desktop.notices == [("govuk-imds: production unlocked",
                                "production was unlocked; the tool's next try gets credentials.")]


@in_event_loop
async def test_a_cancelled_prompt_is_told_and_not_asked_again_within_the_interval() -> None:
    clock, desktop, unlocks = FakeClock(), Desktop(), Unlocks()
    unlocks.outcome = UnlockOutcome(False, "the prompt for the MFA code was cancelled; production stays locked")
    unlocks.release.set()
    watcher = attention("gui", clock, desktop, unlocks)
    watcher.refused("production", None)
    await settle()
    watcher.refused("production", None)
    await settle()
    assert len(unlocks.started) == 1
    assert desktop.notices == [("govuk-imds: production stays locked",
                                "the prompt for the MFA code was cancelled; production stays locked")]


@in_event_loop
async def test_fresh_code_environments_are_unlocked_only_by_a_person_typing() -> None:
    clock, desktop, unlocks = FakeClock(), Desktop(), Unlocks()
    unlocks.release.set()
    watcher = attention("gui", clock, desktop, unlocks, fresh=("production",))
    watcher.refused("production", None)
    watcher.refused("staging", None)
    await settle()
    assert sorted(unlocks.started) == [("production", False), ("staging", True)]


@in_event_loop
async def test_off_does_nothing() -> None:
    clock, desktop, unlocks = FakeClock(), Desktop(), Unlocks()
    watcher = attention("off", clock, desktop, unlocks)
    watcher.refused("production", None)
    await settle()
    assert desktop.notices == [] and unlocks.started == []


@in_event_loop
async def test_a_failing_desktop_breaks_nothing() -> None:
    async def broken(summary: str, body: str) -> bool:
        raise RuntimeError("the desktop fell over")

    watcher = Attention("notify", lambda name: False, FakeClock(), broken, Unlocks())
    watcher.refused("production", None)
    await settle()
    watcher.refused("staging", None)  # still working
    await settle()
    await watcher.close()
