"""The environment session: the transition table and the rotation policy, tested without asyncio or a clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from govuk_imds.core.credentials import MfaSession, RoleCredentials
from govuk_imds.core.session import (
    MIN_RENEWAL_INTERVAL,
    MIN_SERVED_LIFETIME,
    RETRY_BASE,
    RETRY_CAP,
    SESSION_ENDING_WARNING,
    TRANSITIONS,
    Event,
    InvalidTransition,
    Locked,
    RenewalFailed,
    RenewalStarted,
    RoleAssumed,
    Session,
    State,
    Unlocked,
    end_reason,
    ending_soon,
    has_ended,
    next_wakeup,
    renewal_due,
    retry_delay,
    servable_until,
    session_end,
    still_servable,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MARGIN = timedelta(minutes=30)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def mfa_session(ends_at: datetime = T0 + 8 * HOUR) -> MfaSession:
    return MfaSession("ASIAMFASESSION000001", "s" * 40, "mfa-token", ends_at)


def role_credentials(expiration: datetime, serial: int = 1) -> RoleCredentials:
    return RoleCredentials(f"ASIAROLE{serial:012d}", "r" * 40, f"role-token-{serial}", expiration)


def unlocking(ends_at: datetime = T0 + 8 * HOUR) -> Session:
    return Session().apply(Unlocked(mfa_session(ends_at), ends_at))


def active(expires_at: datetime = T0 + HOUR, ends_at: datetime = T0 + 8 * HOUR) -> Session:
    return unlocking(ends_at).apply(RoleAssumed(role_credentials(expires_at)))


def rotating(expires_at: datetime = T0 + HOUR, ends_at: datetime = T0 + 8 * HOUR) -> Session:
    return active(expires_at, ends_at).apply(RenewalStarted())


def degraded(
    expires_at: datetime = T0 + HOUR, ends_at: datetime = T0 + 8 * HOUR, retry_at: datetime = T0 + 10 * SECOND
) -> Session:
    return rotating(expires_at, ends_at).apply(RenewalFailed("STS is throttling", retry_at))


SESSION_IN: dict[State, Callable[[], Session]] = {
    State.LOCKED: Session,
    State.UNLOCKING: unlocking,
    State.ACTIVE: active,
    State.ROTATING: rotating,
    State.DEGRADED: degraded,
}

EVENTS: dict[type[Event], Callable[[], Event]] = {
    Unlocked: lambda: Unlocked(mfa_session(T0 + 4 * HOUR), T0 + 4 * HOUR),
    RenewalStarted: RenewalStarted,
    RoleAssumed: lambda: RoleAssumed(role_credentials(T0 + 2 * HOUR, serial=2)),
    RenewalFailed: lambda: RenewalFailed("timed out", T0 + MINUTE),
    Locked: lambda: Locked("locked by you"),
}

# The lifecycle written out by hand (not derived from TRANSITIONS), so a change to the table must be deliberate.
LIFECYCLE: dict[tuple[State, type[Event]], State] = {
    (State.LOCKED, Unlocked): State.UNLOCKING,
    (State.UNLOCKING, Unlocked): State.UNLOCKING,
    (State.ACTIVE, Unlocked): State.UNLOCKING,
    (State.ROTATING, Unlocked): State.UNLOCKING,
    (State.DEGRADED, Unlocked): State.UNLOCKING,
    (State.UNLOCKING, RoleAssumed): State.ACTIVE,
    (State.UNLOCKING, RenewalFailed): State.DEGRADED,
    (State.ACTIVE, RenewalStarted): State.ROTATING,
    (State.DEGRADED, RenewalStarted): State.ROTATING,
    (State.ROTATING, RoleAssumed): State.ACTIVE,
    (State.ROTATING, RenewalFailed): State.DEGRADED,
    (State.LOCKED, Locked): State.LOCKED,
    (State.UNLOCKING, Locked): State.LOCKED,
    (State.ACTIVE, Locked): State.LOCKED,
    (State.ROTATING, Locked): State.LOCKED,
    (State.DEGRADED, Locked): State.LOCKED,
}

ILLEGAL = sorted(
    (pair for pair in itertools.product(State, EVENTS) if pair not in LIFECYCLE),
    key=lambda pair: (pair[0].value, pair[1].__name__),
)


def _case_id(pair: tuple[State, type[Event]]) -> str:
    return f"{pair[0].value}-{pair[1].__name__}"


ALLOWED = sorted(LIFECYCLE, key=_case_id)


# -- the transition table -------------------------------------------------------------------------------------------


def test_transition_table_is_exactly_the_documented_lifecycle() -> None:
    assert TRANSITIONS == LIFECYCLE


def test_every_state_helper_builds_a_session_in_that_state() -> None:
    assert {state: make().state for state, make in SESSION_IN.items()} == {state: state for state in State}


@pytest.mark.parametrize(("state", "event_type"), ALLOWED, ids=[_case_id(pair) for pair in ALLOWED])
def test_every_allowed_transition_reaches_its_target_state(state: State, event_type: type[Event]) -> None:
    after = SESSION_IN[state]().apply(EVENTS[event_type]())

    assert after.state is LIFECYCLE[(state, event_type)]


@pytest.mark.parametrize(("state", "event_type"), ILLEGAL, ids=[_case_id(pair) for pair in ILLEGAL])
def test_an_illegal_event_raises_and_leaves_the_session_unchanged(state: State, event_type: type[Event]) -> None:
    session = SESSION_IN[state]()
    snapshot = Session(**{name: getattr(session, name) for name in Session.__dataclass_fields__})

    with pytest.raises(InvalidTransition, match=rf"{event_type.__name__} while {state.value}"):
        session.apply(EVENTS[event_type]())

    assert session == snapshot
    assert session.state is state


def test_illegal_events_include_the_ones_that_would_resurrect_or_double_up_a_session() -> None:
    # A stale result arriving after a lock, or a second renewal starting over a running one, must be refused.
    for pair in [
        (State.LOCKED, RoleAssumed),
        (State.LOCKED, RenewalFailed),
        (State.LOCKED, RenewalStarted),
        (State.ROTATING, RenewalStarted),
        (State.ACTIVE, RoleAssumed),
    ]:
        assert pair in ILLEGAL


def test_unlocking_keeps_still_valid_credentials_and_clears_the_old_trouble() -> None:
    before = degraded()
    new_mfa = mfa_session(T0 + 4 * HOUR)

    after = before.apply(Unlocked(new_mfa, T0 + 4 * HOUR))

    assert after.state is State.UNLOCKING
    assert after.credentials == before.credentials
    assert after.mfa_session == new_mfa
    assert after.ends_at == T0 + 4 * HOUR
    assert (after.problem, after.failures, after.retry_at) == (None, 0, None)


def test_a_failed_renewal_keeps_the_credentials_and_records_why_and_when_to_retry() -> None:
    before = rotating()

    after = before.apply(RenewalFailed("STS is throttling", T0 + 5 * SECOND))
    again = after.apply(RenewalStarted()).apply(RenewalFailed("timed out", T0 + 9 * SECOND))

    assert after.credentials == before.credentials
    assert (after.problem, after.failures, after.retry_at) == ("STS is throttling", 1, T0 + 5 * SECOND)
    assert (again.problem, again.failures, again.retry_at) == ("timed out", 2, T0 + 9 * SECOND)


def test_a_successful_renewal_replaces_the_credentials_and_forgets_the_failures() -> None:
    fresh = role_credentials(T0 + 2 * HOUR, serial=7)

    after = degraded().apply(RenewalStarted()).apply(RoleAssumed(fresh))

    assert after.state is State.ACTIVE
    assert after.credentials == fresh
    assert (after.problem, after.failures, after.retry_at) == (None, 0, None)


@pytest.mark.parametrize("state", list(State), ids=lambda state: state.value)
def test_locking_forgets_the_mfa_session_and_the_credentials_and_says_why(state: State) -> None:
    after = SESSION_IN[state]().apply(Locked("the MFA session ended"))

    assert after == Session(problem="the MFA session ended")
    assert (after.mfa_session, after.credentials, after.ends_at) == (None, None, None)


# -- still_servable: what a client may be given --------------------------------------------------------------------


def served(session: Session, now: datetime) -> bool:
    assert session.credentials is not None
    return still_servable(session.credentials, session, now)


@pytest.mark.parametrize("state", [State.ACTIVE, State.ROTATING, State.DEGRADED], ids=lambda state: state.value)
def test_serves_valid_credentials_while_active_rotating_or_degraded(state: State) -> None:
    assert served(SESSION_IN[state](), T0)


def test_serves_credentials_with_exactly_the_fifteen_minute_floor_left_but_not_a_second_less() -> None:
    session = active(expires_at=T0 + HOUR)

    assert served(session, T0 + HOUR - MIN_SERVED_LIFETIME)
    assert not served(session, T0 + HOUR - MIN_SERVED_LIFETIME + SECOND)
    assert not served(session, T0 + 2 * HOUR)


def test_never_serves_once_the_mfa_session_has_ended_even_if_the_credentials_are_still_valid() -> None:
    session = active(expires_at=T0 + HOUR, ends_at=T0 + 20 * MINUTE)

    assert served(session, T0 + 20 * MINUTE - SECOND)
    assert not served(session, T0 + 20 * MINUTE)
    assert not served(session, T0 + 21 * MINUTE)


def test_serves_nothing_once_locked_even_credentials_that_are_still_valid() -> None:
    credentials = active(expires_at=T0 + HOUR).credentials
    assert credentials is not None
    assert not still_servable(credentials, Session(), T0)
    assert not still_servable(credentials, active(expires_at=T0 + HOUR).apply(Locked("by you")), T0)


# -- has_ended and ending_soon --------------------------------------------------------------------------------------


def test_the_session_ends_at_its_end_time_and_a_locked_session_never_ends_again() -> None:
    session = active(ends_at=T0 + 8 * HOUR)

    assert not has_ended(session, T0 + 8 * HOUR - SECOND)
    assert has_ended(session, T0 + 8 * HOUR)
    assert not has_ended(session.apply(Locked("the MFA session ended")), T0 + 9 * HOUR)


def test_warns_when_the_session_has_less_than_fifteen_minutes_left() -> None:
    session = active(expires_at=T0 + HOUR, ends_at=T0 + 2 * HOUR)

    assert not ending_soon(session, T0 + 2 * HOUR - SESSION_ENDING_WARNING)
    assert ending_soon(session, T0 + 2 * HOUR - SESSION_ENDING_WARNING + SECOND)
    assert ending_soon(session, T0 + 2 * HOUR - MINUTE)
    assert not ending_soon(Session(), T0)
    assert not ending_soon(session.apply(Locked("locked by you")), T0 + 2 * HOUR - MINUTE)


# -- renewal_due: when to re-assume the role -------------------------------------------------------------------------


def test_not_due_while_more_than_the_rotation_margin_is_left() -> None:
    session = active(expires_at=T0 + HOUR)

    assert not renewal_due(session, T0, MARGIN)
    assert not renewal_due(session, T0 + HOUR - MARGIN - SECOND, MARGIN)


def test_due_once_less_than_the_rotation_margin_is_left() -> None:
    session = active(expires_at=T0 + HOUR)

    assert renewal_due(session, T0 + HOUR - MARGIN + SECOND, MARGIN)
    assert renewal_due(session, T0 + HOUR - MIN_SERVED_LIFETIME, MARGIN)


def test_due_after_the_credentials_expired_while_the_laptop_slept() -> None:
    assert renewal_due(active(expires_at=T0 + HOUR), T0 + 3 * HOUR, MARGIN)


def test_the_margin_is_a_parameter_not_a_constant() -> None:
    session = active(expires_at=T0 + HOUR)
    now = T0 + 40 * MINUTE  # 20 minutes left

    assert not renewal_due(session, now, timedelta(minutes=15))
    assert renewal_due(session, now, timedelta(minutes=25))


@pytest.mark.parametrize("state", [State.LOCKED, State.UNLOCKING, State.ROTATING], ids=lambda state: state.value)
def test_never_due_while_locked_or_while_an_assume_role_is_already_running(state: State) -> None:
    assert not renewal_due(SESSION_IN[state](), T0 + 3 * HOUR, MARGIN)


def test_degraded_session_waits_for_its_backoff_before_retrying() -> None:
    session = degraded(expires_at=T0 + 25 * MINUTE, retry_at=T0 + 10 * SECOND)

    assert not renewal_due(session, T0, MARGIN)
    assert not renewal_due(session, T0 + 10 * SECOND - timedelta(microseconds=1), MARGIN)
    assert renewal_due(session, T0 + 10 * SECOND, MARGIN)
    assert renewal_due(session, T0 + 5 * MINUTE, MARGIN)


def test_degraded_session_with_no_credentials_retries_once_the_backoff_is_over() -> None:
    session = unlocking().apply(RenewalFailed("STS unreachable", T0 + 2 * SECOND))

    assert session.credentials is None
    assert not renewal_due(session, T0 + SECOND, MARGIN)
    assert renewal_due(session, T0 + 2 * SECOND, MARGIN)


def test_not_due_again_within_five_seconds_of_a_successful_renewal() -> None:
    # STS may hand out credentials already inside the margin; re-assuming at once would loop.
    session = replace(active(expires_at=T0 + 20 * MINUTE), renewed_at=T0)

    assert MIN_RENEWAL_INTERVAL == 5 * SECOND
    assert not renewal_due(session, T0, MARGIN)
    assert not renewal_due(session, T0 + 5 * SECOND - timedelta(microseconds=1), MARGIN)
    assert renewal_due(session, T0 + 5 * SECOND, MARGIN)
    assert next_wakeup(session, T0, MARGIN) == T0 + 5 * SECOND


def test_the_minimum_renewal_interval_does_not_delay_a_renewal_that_is_due_later_anyway() -> None:
    session = replace(active(expires_at=T0 + HOUR), renewed_at=T0)

    assert next_wakeup(session, T0, MARGIN) == T0 + HOUR - MARGIN
    assert renewal_due(session, T0 + HOUR - MARGIN + SECOND, MARGIN)


def test_a_successful_renewal_records_when_it_happened() -> None:
    after = rotating().apply(RoleAssumed(role_credentials(T0 + 2 * HOUR, serial=2), T0 + MINUTE))

    assert after.renewed_at == T0 + MINUTE


def test_renews_whenever_the_credentials_would_stop_being_servable_before_the_session_ends() -> None:
    # Credentials expiring at 60 min are servable until 45 min. A session ending at 60 min used to be left unrenewed
    # (it "ends before the credentials expire"), and its last 15 minutes were answered 503.
    now = T0 + 31 * MINUTE

    assert not renewal_due(active(expires_at=T0 + HOUR, ends_at=T0 + 45 * MINUTE), now, MARGIN)
    assert renewal_due(active(expires_at=T0 + HOUR, ends_at=T0 + 45 * MINUTE + SECOND), now, MARGIN)
    assert renewal_due(active(expires_at=T0 + HOUR, ends_at=T0 + 50 * MINUTE), now, MARGIN)
    assert renewal_due(active(expires_at=T0 + HOUR, ends_at=T0 + HOUR), now, MARGIN)


def test_servable_until_is_fifteen_minutes_before_expiry_or_the_session_end_if_sooner() -> None:
    long_session = active(expires_at=T0 + HOUR, ends_at=T0 + 8 * HOUR)
    short_session = active(expires_at=T0 + HOUR, ends_at=T0 + 40 * MINUTE)
    assert long_session.credentials is not None and short_session.credentials is not None

    assert servable_until(long_session.credentials, long_session) == T0 + 45 * MINUTE
    assert servable_until(short_session.credentials, short_session) == T0 + 40 * MINUTE


# -- the session's end: its own, or the MFA session's ------------------------------------------------------------------


def test_the_session_ends_at_its_own_end_or_at_the_mfa_sessions_expiry_whichever_is_sooner() -> None:
    own_first = Session().apply(Unlocked(mfa_session(T0 + 8 * HOUR), T0 + 4 * HOUR))
    mfa_first = Session().apply(Unlocked(mfa_session(T0 + 3 * HOUR), T0 + 4 * HOUR))

    assert session_end(own_first) == T0 + 4 * HOUR
    assert session_end(mfa_first) == T0 + 3 * HOUR
    assert has_ended(mfa_first, T0 + 3 * HOUR) and not has_ended(own_first, T0 + 3 * HOUR)
    assert end_reason(mfa_first) == "the MFA session ended"
    assert end_reason(own_first) == "the session ended (its session_duration ran out)"


def test_the_mfa_sessions_expiry_is_judged_on_awss_clock() -> None:
    # AWS wrote 17:00; a local clock 35 minutes ahead reads 17:35 at that moment.
    session = Session().apply(Unlocked(mfa_session(T0 + 8 * HOUR), T0 + 9 * HOUR))
    ahead = -35 * MINUTE

    assert session_end(session, ahead) == T0 + 8 * HOUR + 35 * MINUTE
    assert not has_ended(session, T0 + 8 * HOUR + 34 * MINUTE, ahead)
    assert has_ended(session, T0 + 8 * HOUR + 35 * MINUTE, ahead)


# -- the whole session, minute by minute ------------------------------------------------------------------------------

ROLE_LIFETIME = HOUR
#: AssumeRole calls over a whole session with a healthy STS: the unlock's, then one every 30 minutes while the held
#: credentials would stop being servable before the end.
ASSUME_ROLES_PER_SESSION = {HOUR: 2, 4 * HOUR: 8, 8 * HOUR: 16}
#: AWS's clock minus the local clock: a laptop 2 h behind, 10 min behind, 10 min ahead, 35 min ahead, 2 h ahead.
OFFSETS = [2 * HOUR, 10 * MINUTE, -10 * MINUTE, -35 * MINUTE, -2 * HOUR]


def live_a_session(length: timedelta, offset: timedelta) -> tuple[list[datetime], int]:
    """Unlock at T0 on the local clock and walk the session minute by minute, renewing whenever the policy says,
    with an STS whose clock is ``offset`` off the local one. Returns the minutes nothing was servable, and the
    number of AssumeRole calls."""

    def assume(now: datetime, serial: int) -> RoleCredentials:
        return role_credentials(now + offset + ROLE_LIFETIME, serial)  # STS writes expiries on AWS's clock

    session = Session().apply(Unlocked(mfa_session(T0 + offset + length), T0 + length))
    session = session.apply(RoleAssumed(assume(T0, 1), T0))
    calls, unserved = 1, []
    now = T0
    while now < T0 + length:
        if renewal_due(session, now, MARGIN, offset):
            calls += 1
            session = session.apply(RenewalStarted()).apply(RoleAssumed(assume(now, calls), now))
        assert session.credentials is not None
        if not still_servable(session.credentials, session, now, offset):
            unserved.append(now)
        now += MINUTE
    assert has_ended(session, now, offset)
    return unserved, calls


@pytest.mark.parametrize("length", [HOUR, 4 * HOUR, 8 * HOUR], ids=["1h", "4h", "8h"])
def test_every_minute_of_a_session_is_served_to_its_last_with_one_assume_role_per_rotation(length: timedelta) -> None:
    unserved, calls = live_a_session(length, timedelta(0))

    assert unserved == []
    assert calls == ASSUME_ROLES_PER_SESSION[length]


@pytest.mark.parametrize("offset", OFFSETS, ids=["aws-2h-ahead", "aws-10m-ahead", "local-10m-ahead",
                                                 "local-35m-ahead", "local-2h-ahead"])
@pytest.mark.parametrize("length", [HOUR, 8 * HOUR], ids=["1h", "8h"])
def test_a_clock_off_from_awss_changes_nothing_served_nor_the_number_of_assume_roles(
    length: timedelta, offset: timedelta
) -> None:
    unserved, calls = live_a_session(length, offset)

    assert unserved == []
    assert calls == ASSUME_ROLES_PER_SESSION[length]


# -- next_wakeup: when the maintenance loop looks again --------------------------------------------------------------


def test_a_locked_session_needs_no_wakeup() -> None:
    assert next_wakeup(Session(), T0, MARGIN) is None
    assert next_wakeup(active().apply(Locked("locked by you")), T0, MARGIN) is None


def test_an_active_session_wakes_when_its_credentials_enter_the_margin() -> None:
    assert next_wakeup(active(expires_at=T0 + HOUR), T0, MARGIN) == T0 + HOUR - MARGIN


def test_an_active_session_whose_credentials_are_servable_to_its_end_wakes_only_to_end() -> None:
    assert next_wakeup(active(expires_at=T0 + HOUR, ends_at=T0 + 45 * MINUTE), T0, MARGIN) == T0 + 45 * MINUTE


def test_a_degraded_session_wakes_for_its_retry() -> None:
    session = degraded(expires_at=T0 + 20 * MINUTE, retry_at=T0 + 10 * SECOND)

    assert next_wakeup(session, T0, MARGIN) == T0 + 10 * SECOND


def test_a_degraded_session_with_no_credentials_wakes_for_its_retry() -> None:
    session = unlocking().apply(RenewalFailed("STS unreachable", T0 + 2 * SECOND))

    assert next_wakeup(session, T0, MARGIN) == T0 + 2 * SECOND


@pytest.mark.parametrize("state", [State.UNLOCKING, State.ROTATING], ids=lambda state: state.value)
def test_while_an_assume_role_runs_the_only_wakeup_is_the_session_end(state: State) -> None:
    assert next_wakeup(SESSION_IN[state](), T0, MARGIN) == T0 + 8 * HOUR


def _policy_sessions() -> Iterator[Session]:
    """Sessions in every unlocked state, with credentials and session ends on both sides of every boundary."""
    credential_ends = [None, T0 + 10 * MINUTE, T0 + 30 * MINUTE, T0 + 45 * MINUTE, T0 + HOUR]
    session_ends = [T0 + 20 * MINUTE, T0 + HOUR, T0 + 90 * MINUTE, T0 + 8 * HOUR]
    retries = [None, T0, T0 + 5 * MINUTE, T0 + 40 * MINUTE]
    for ends_at, expires_at in itertools.product(session_ends, credential_ends):
        start = unlocking(ends_at)
        if expires_at is not None:
            start = start.apply(RoleAssumed(role_credentials(expires_at)))
            yield start  # active
            yield start.apply(RenewalStarted())  # rotating
            for renewed_at in (T0, T0 + 29 * MINUTE + 57 * SECOND, T0 + 3 * HOUR):
                yield replace(start, renewed_at=renewed_at)  # active, just renewed
        else:
            yield start  # unlocking
        for retry_at in retries:
            # Degraded, built directly: the table itself cannot produce a None retry_at, but the policy accepts it.
            yield Session(
                state=State.DEGRADED,
                mfa_session=start.mfa_session,
                ends_at=ends_at,
                credentials=start.credentials,
                problem="STS is throttling",
                failures=1,
                retry_at=retry_at,
            )


def _grid() -> list[datetime]:
    return [T0 + step * MINUTE for step in range(-5, 10 * 60, 1)]


def _acts(session: Session, now: datetime) -> bool:
    """Would ``Service.tick`` do anything for this session now?"""
    return has_ended(session, now) or renewal_due(session, now, MARGIN)


def test_next_wakeup_never_sleeps_through_a_due_action() -> None:
    # Sleeping from `now` until next_wakeup must not skip a moment at which tick would have acted.
    grid = _grid()
    missed = []
    for session in _policy_sessions():
        for index, now in enumerate(grid):
            wake = next_wakeup(session, now, MARGIN)
            assert wake is not None
            first_due = next((moment for moment in grid[index:] if _acts(session, moment)), None)
            if first_due is not None and first_due < wake:
                missed.append((session.state.value, now, wake, first_due))
    assert missed == []


def test_whenever_next_wakeup_has_come_tick_would_act() -> None:
    wasted = [
        (session.state.value, now, session.credentials and session.credentials.expiration, session.retry_at)
        for session in _policy_sessions()
        for now in _grid()
        if (wake := next_wakeup(session, now, MARGIN)) is not None and wake <= now and not _acts(session, now)
    ]
    assert wasted == []


def test_renewal_is_due_at_the_very_moment_next_wakeup_names() -> None:
    session = active(expires_at=T0 + HOUR)
    wake = next_wakeup(session, T0, MARGIN)
    assert wake == T0 + HOUR - MARGIN

    assert renewal_due(session, wake, MARGIN)


def test_a_degraded_session_holding_fresh_credentials_sleeps_until_they_enter_the_margin() -> None:
    # How it happens: a re-unlock while credentials are fresh, and that first AssumeRole fails transiently.
    session = active(expires_at=T0 + HOUR).apply(Unlocked(mfa_session(), T0 + 8 * HOUR))
    session = session.apply(RenewalFailed("STS is throttling", T0 + SECOND))
    now = T0 + MINUTE
    assert not renewal_due(session, now, MARGIN)

    wake = next_wakeup(session, now, MARGIN)

    assert wake is not None
    assert wake > now
    assert wake == T0 + HOUR - MARGIN


# -- retry_delay: backoff ---------------------------------------------------------------------------------------------


def test_the_first_retry_comes_after_one_to_two_seconds() -> None:
    assert retry_delay(0, 0.0) == RETRY_BASE / 2 == SECOND
    assert SECOND <= retry_delay(0, 0.999999) < RETRY_BASE


def test_backoff_doubles_with_each_failure() -> None:
    assert [retry_delay(failures, 0.0).total_seconds() for failures in range(6)] == [1, 2, 4, 8, 16, 32]


def test_backoff_is_capped_at_two_minutes_however_many_failures() -> None:
    for failures in (6, 7, 16, 17, 1000, 10**9):
        assert RETRY_CAP / 2 <= retry_delay(failures, 0.0) <= retry_delay(failures, 0.999999) < RETRY_CAP


def test_a_negative_failure_count_is_treated_as_none() -> None:
    assert retry_delay(-3, 0.5) == retry_delay(0, 0.5)


def test_jitter_keeps_every_delay_between_half_and_all_of_its_ceiling() -> None:
    jitters = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999]
    for failures in range(-2, 40):
        ceiling = min(RETRY_CAP, RETRY_BASE * 2 ** max(failures, 0))
        delays = [retry_delay(failures, jitter) for jitter in jitters]
        assert all(ceiling / 2 <= delay < ceiling for delay in delays), (failures, delays)
        assert delays == sorted(delays)
        assert max(delays) <= RETRY_CAP
