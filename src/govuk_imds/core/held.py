"""MFA sessions as the daemon holds them: one per source profile and MFA device, shared by every environment and role
of that source profile, and the rule that says when an unlock may use the held one instead of a new code.

One MFA code a day is the aim: the CLI asks GetSessionToken for the longest ``session_duration`` of all the source
profile's environments, so that every later unlock of any of them can reuse the session. Pure: no I/O, no clock of
its own (``now`` is the local clock, ``offset`` is AWS's clock minus it, see ``core.skew``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .clock import rfc3339
from .credentials import MfaSession
from .environment import EnvironmentSpec
from .skew import as_local
from .timefmt import local_time, span

#: Without ``--duration``, a held MFA session with less than this left (or less than the session asked for, if that
#: is shorter) is not reused: a new code now gives a full session, where reuse would cut this one off within the hour.
HELD_SESSION_MIN_LIFE = timedelta(hours=1)


@dataclass(frozen=True, order=True)
class Device:
    """Whose MFA session it is: a source profile (the IAM user's key) and the MFA device that proved it."""

    source_profile: str
    mfa_serial: str

    @classmethod
    def of(cls, spec: EnvironmentSpec) -> Device:
        return cls(spec.source_profile, spec.mfa_serial)

    def __str__(self) -> str:
        return self.source_profile


@dataclass(frozen=True)
class KeptUnlock:
    """One environment unlocked with a held session, as kept across a restart. Times are on the local clock."""

    environment: str
    unlocked_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class HeldSession:
    """An MFA session the daemon holds for a device; ``granted`` is the lifetime GetSessionToken was asked for."""

    device: Device
    credentials: MfaSession
    granted: timedelta
    #: Only in what is kept across a restart: the environments unlocked with it.
    unlocks: tuple[KeptUnlock, ...] = field(default=())

    def ends_at(self, offset: timedelta) -> datetime:
        """When it expires, on the local clock."""
        return as_local(self.credentials.expiration, offset)

    def supersedes(self, other: HeldSession, offset: timedelta) -> bool:
        """A newer session becomes the held one unless it would end sooner (one from an earlier, longer
        ``--duration``): every environment's end stays within the held session's life."""
        return self.ends_at(offset) >= other.ends_at(offset)


def why_a_code_is_needed(
    device: Device,
    held: HeldSession | None,
    wanted: Mapping[str, timedelta],
    now: datetime,
    offset: timedelta,
    *,
    explicit: timedelta | None = None,
    fresh: Sequence[str] = (),
) -> str | None:
    """Why this unlock must spend a new MFA code, in words for a person; None when the held session serves.

    ``wanted`` is each environment's configured ``session_duration``; ``explicit`` is ``--duration``; ``fresh`` names
    the environments configured with ``fresh_code = true``.
    """
    if fresh:
        return f"{', '.join(fresh)} asks for a new code at every unlock (fresh_code in config.toml)"
    if held is None:
        return f"no MFA session is held for {device}"
    ends = held.ends_at(offset)
    left = ends - now
    if left <= timedelta(0):
        return f"the MFA session for {device} ended at {local_time(rfc3339(ends))}"
    if explicit is not None:
        if left < explicit:
            return (
                f"the MFA session held for {device} ends at {local_time(rfc3339(ends))}, sooner than the "
                f"{span(explicit)} asked with --duration"
            )
        return None
    longest = max(wanted.values())
    if held.granted < longest:
        name = max(wanted, key=lambda environment: wanted[environment])
        return (
            f"the MFA session held for {device} was made for {span(held.granted)}, shorter than the "
            f"{span(longest)} session_duration of {name}"
        )
    if left < min(HELD_SESSION_MIN_LIFE, *wanted.values()):
        return (
            f"the MFA session held for {device} ends at {local_time(rfc3339(ends))}, too soon to be worth reusing"
        )
    return None
