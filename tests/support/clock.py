"""The one fake clock: wall-clock time that moves only when a test says so (``core.clock.Clock``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: A Monday morning, on a whole minute, so that grid-style tests land exactly on policy boundaries.
DEFAULT_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the fake clock keeps aware UTC datetimes, like the real one")
    return moment.astimezone(UTC)


class FakeClock:
    """Wall-clock time that moves only when a test says so."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, step: timedelta) -> datetime:
        """Move forward by ``step`` (time never runs backwards by accident); return the new time."""
        if step < timedelta(0):
            raise ValueError(f"advance() only moves forward; use jump_to() to go back (got {step})")
        self._now += step
        return self._now

    def jump_to(self, moment: datetime) -> datetime:
        """Set the time outright: a laptop waking up, or NTP stepping the clock."""
        self._now = _aware(moment)
        return self._now
