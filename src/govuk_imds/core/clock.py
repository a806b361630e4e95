"""Wall-clock time, injected.

Logic never calls ``datetime.now()``: it receives a ``Clock``. Expiry is always judged on the wall clock (aware
UTC), because a laptop's monotonic clock stops while it sleeps and credentials do not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2026-11-25T16:04:05Z``: UTC, whole seconds, ``Z`` (every SDK accepts exactly this)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """An aware UTC datetime; ``ValueError`` for anything else, also a time that leaves datetime's range in UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text[:40]!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"timestamp out of range: {text[:40]!r}") from exc
