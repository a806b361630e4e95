"""The life of one environment's session, as a pure state machine and a rotation policy.

No I/O, no asyncio, no clock of its own: every function takes ``now`` (the local clock) and ``offset`` (AWS's
clock minus the local one, ``core.skew``): expiries STS wrote are judged on AWS's clock, spans on the local one.
The service feeds events in and acts on what the policy says. An illegal event raises ``InvalidTransition`` and,
because sessions are immutable, leaves the state exactly as it was.

    locked ──Unlocked──▶ unlocking ──RoleAssumed──▶ active ──RenewalStarted──▶ rotating
                             │                        ▲                          │
                             └──RenewalFailed──▶ degraded ◀──RenewalFailed───────┘
                                                     └──RenewalStarted──▶ rotating (then active or degraded)
    any state ──Locked──▶ locked          any unlocked state ──Unlocked──▶ unlocking
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .credentials import MfaSession, RoleCredentials
from .skew import NO_OFFSET, as_local

#: Served credentials always have at least this long left: below it botocore refreshes on every call, and below
#: ten minutes it refuses freshly fetched credentials as "still expired".
MIN_SERVED_LIFETIME = timedelta(minutes=15)
#: ``status`` warns when an MFA session has less than this left, so the user can unlock when it suits them.
SESSION_ENDING_WARNING = timedelta(minutes=15)
#: Never renew again sooner than this after a success, even if STS handed out credentials that are already inside
#: the rotation margin: otherwise such an answer would make the daemon call AssumeRole in a tight loop.
MIN_RENEWAL_INTERVAL = timedelta(seconds=5)
RETRY_BASE = timedelta(seconds=2)
RETRY_CAP = timedelta(minutes=2)


class State(enum.Enum):
    LOCKED = "locked"
    UNLOCKING = "unlocking"
    ACTIVE = "active"
    ROTATING = "rotating"
    DEGRADED = "degraded"


class InvalidTransition(Exception):
    """An event that makes no sense in the current state (a bug, or a stale result to discard)."""


@dataclass(frozen=True)
class Unlocked:
    mfa_session: MfaSession
    ends_at: datetime


@dataclass(frozen=True)
class RenewalStarted:
    pass


@dataclass(frozen=True)
class RoleAssumed:
    credentials: RoleCredentials
    at: datetime | None = None


@dataclass(frozen=True)
class RenewalFailed:
    reason: str
    retry_at: datetime


@dataclass(frozen=True)
class Locked:
    reason: str


Event = Unlocked | RenewalStarted | RoleAssumed | RenewalFailed | Locked

_UNLOCKED_STATES = (State.UNLOCKING, State.ACTIVE, State.ROTATING, State.DEGRADED)

TRANSITIONS: dict[tuple[State, type[Event]], State] = {
    (State.LOCKED, Unlocked): State.UNLOCKING,
    **{(state, Unlocked): State.UNLOCKING for state in _UNLOCKED_STATES},
    (State.UNLOCKING, RoleAssumed): State.ACTIVE,
    (State.UNLOCKING, RenewalFailed): State.DEGRADED,
    (State.ACTIVE, RenewalStarted): State.ROTATING,
    (State.DEGRADED, RenewalStarted): State.ROTATING,
    (State.ROTATING, RoleAssumed): State.ACTIVE,
    (State.ROTATING, RenewalFailed): State.DEGRADED,
    **{(state, Locked): State.LOCKED for state in (State.LOCKED, *_UNLOCKED_STATES)},
}


@dataclass(frozen=True)
class Session:
    state: State = State.LOCKED
    mfa_session: MfaSession | None = None
    #: The unlock's own end on the local clock (``session_duration`` after it); the session ends then or when the
    #: MFA session expires, whichever is sooner (``session_end``).
    ends_at: datetime | None = None
    credentials: RoleCredentials | None = None
    #: Why the session is degraded, or why it was last locked.
    problem: str | None = None
    failures: int = 0
    retry_at: datetime | None = None
    renewed_at: datetime | None = None

    def apply(self, event: Event) -> Session:
        """Return the session after ``event``; raise ``InvalidTransition`` if it is not allowed now."""
        target = TRANSITIONS.get((self.state, type(event)))
        if target is None:
            raise InvalidTransition(f"{type(event).__name__} while {self.state.value}")
        if isinstance(event, Unlocked):
            # Keep still-valid credentials: clients go on being served while the new session is proven.
            return replace(
                self,
                state=target,
                mfa_session=event.mfa_session,
                ends_at=event.ends_at,
                problem=None,
                failures=0,
                retry_at=None,
            )
        if isinstance(event, RoleAssumed):
            return replace(
                self,
                state=target,
                credentials=event.credentials,
                problem=None,
                failures=0,
                retry_at=None,
                renewed_at=event.at,
            )
        if isinstance(event, RenewalFailed):
            return replace(
                self, state=target, problem=event.reason, failures=self.failures + 1, retry_at=event.retry_at
            )
        if isinstance(event, Locked):
            return Session(problem=event.reason)
        return replace(self, state=target)


def session_end(session: Session, offset: timedelta = NO_OFFSET) -> datetime | None:
    """When the environment locks by itself, on the local clock: its unlock's own end (``session_duration`` after
    the unlock), or the MFA session's expiry if that comes first."""
    if session.ends_at is None or session.mfa_session is None:
        return session.ends_at
    return min(session.ends_at, as_local(session.mfa_session.expiration, offset))


def end_reason(session: Session, offset: timedelta = NO_OFFSET) -> str:
    """Why a session that has ended ended, in words."""
    mfa = session.mfa_session
    if mfa is not None and (session.ends_at is None or as_local(mfa.expiration, offset) <= session.ends_at):
        return "the MFA session ended"
    return "the session ended (its session_duration ran out)"


def servable_until(credentials: RoleCredentials, session: Session, offset: timedelta = NO_OFFSET) -> datetime | None:
    """The last moment ``credentials`` may be handed out: ``MIN_SERVED_LIFETIME`` before they expire, and never
    past the session's end."""
    end = session_end(session, offset)
    if end is None:
        return None
    return min(as_local(credentials.expiration, offset) - MIN_SERVED_LIFETIME, end)


def still_servable(
    credentials: RoleCredentials, session: Session, now: datetime, offset: timedelta = NO_OFFSET
) -> bool:
    """May ``credentials`` be handed to a client now? Judged on the wall clock at every request, because the cache's
    own TTL stops while a laptop sleeps: the session must not have ended, and the credentials must have at least
    ``MIN_SERVED_LIFETIME`` left on AWS's clock."""
    if session.state is State.LOCKED:
        return False
    end = session_end(session, offset)
    if end is None or now >= end:
        return False
    return as_local(credentials.expiration, offset) - now >= MIN_SERVED_LIFETIME


def has_ended(session: Session, now: datetime, offset: timedelta = NO_OFFSET) -> bool:
    end = session_end(session, offset)
    return session.state is not State.LOCKED and end is not None and now >= end


def renewal_moment(
    session: Session, now: datetime, margin: timedelta, offset: timedelta = NO_OFFSET
) -> datetime | None:
    """When the role should next be re-assumed, or None if there is nothing to renew.

    The rule: renew ``margin`` before the held credentials expire whenever they would stop being servable (15
    minutes before they expire) before the session ends, so that every minute of the session is served. Expiries
    are AWS's, judged with ``offset``. ``renewal_due`` and ``next_wakeup`` both derive from this one function, so a
    wake-up is never wasted and a due renewal is never slept through.
    """
    end = session_end(session, offset)
    if session.state not in (State.ACTIVE, State.DEGRADED) or end is None:
        return None  # locked, or a renewal is already running
    credentials = session.credentials
    if credentials is None:
        moment = now
    else:
        expires = as_local(credentials.expiration, offset)
        if expires - MIN_SERVED_LIFETIME >= end:
            return None  # these are servable to the session's last moment: new ones would add nothing
        moment = expires - margin
        if session.renewed_at is not None:
            moment = max(moment, session.renewed_at + MIN_RENEWAL_INTERVAL)
    if session.state is State.DEGRADED and session.retry_at is not None:
        moment = max(moment, session.retry_at)  # never against a pending backoff
    return moment


def renewal_due(session: Session, now: datetime, margin: timedelta, offset: timedelta = NO_OFFSET) -> bool:
    """Should the role be re-assumed now?"""
    moment = renewal_moment(session, now, margin, offset)
    return moment is not None and now >= moment


def next_wakeup(
    session: Session, now: datetime, margin: timedelta, offset: timedelta = NO_OFFSET
) -> datetime | None:
    """The next moment at which ``has_ended`` or ``renewal_due`` may turn true: the loop sleeps until then."""
    end = session_end(session, offset)
    if session.state is State.LOCKED or end is None:
        return None
    renewal = renewal_moment(session, now, margin, offset)
    return end if renewal is None else min(end, renewal)


def retry_delay(failures: int, jitter: float) -> timedelta:
    """Capped exponential backoff with jitter; ``jitter`` is a number in [0, 1) supplied by the caller."""
    doublings: int = min(max(failures, 0), 16)
    ceiling: timedelta = min(RETRY_CAP, RETRY_BASE * (1 << doublings))
    return ceiling * (0.5 + jitter / 2)


def ending_soon(session: Session, now: datetime, offset: timedelta = NO_OFFSET) -> bool:
    end = session_end(session, offset)
    return session.state is not State.LOCKED and end is not None and end - now < SESSION_ENDING_WARNING
