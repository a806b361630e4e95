"""When an unlock may reuse the MFA session the daemon holds, and when it must spend a new code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from govuk_imds.core.credentials import MfaSession
from govuk_imds.core.held import HELD_SESSION_MIN_LIFE, Device, HeldSession, why_a_code_is_needed

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
GDS = Device("gds", "arn:aws:iam::123456789012:mfa/first.last")
NO_OFFSET = timedelta(0)


def held(expires: datetime, granted: timedelta = 8 * HOUR) -> HeldSession:
    return HeldSession(GDS, MfaSession("ASIAMFA0000000000001", "m" * 40, "token", expires), granted)


def test_without_a_held_session_a_code_is_needed() -> None:
    assert why_a_code_is_needed(GDS, None, {"production": 4 * HOUR}, T0, NO_OFFSET) == "no MFA session is held for gds"


def test_a_session_made_for_the_longest_duration_serves_every_later_unlock_that_day() -> None:
    # Made at 09:00 for 8 h: staging (8 h) at 11:00 reuses it and ends with it at 17:00.
    session = held(T0 + 8 * HOUR)
    for later in (T0, T0 + 2 * HOUR, T0 + 6 * HOUR):
        wanted = {"staging": 8 * HOUR, "production": 4 * HOUR}
        assert why_a_code_is_needed(GDS, session, wanted, later, NO_OFFSET) is None


def test_a_session_made_shorter_than_an_environments_configured_duration_needs_a_code() -> None:
    reason = why_a_code_is_needed(GDS, held(T0 + 4 * HOUR, granted=4 * HOUR), {"staging": 8 * HOUR}, T0, NO_OFFSET)
    assert reason == "the MFA session held for gds was made for 4 h 0 min, shorter than the 8 h 0 min " \
                     "session_duration of staging"


def test_a_session_with_under_an_hour_left_is_not_worth_reusing() -> None:
    session = held(T0 + 8 * HOUR)
    assert why_a_code_is_needed(GDS, session, {"staging": 8 * HOUR}, T0 + 8 * HOUR - HELD_SESSION_MIN_LIFE,
                                NO_OFFSET) is None
    reason = why_a_code_is_needed(GDS, session, {"staging": 8 * HOUR}, T0 + 7 * HOUR + MINUTE, NO_OFFSET)
    assert reason is not None and reason.endswith("too soon to be worth reusing")
    # ...unless the environment's own session is shorter than that anyway.
    assert why_a_code_is_needed(GDS, session, {"staging": 30 * MINUTE}, T0 + 7 * HOUR + MINUTE, NO_OFFSET) is None


def test_an_ended_session_needs_a_code() -> None:
    reason = why_a_code_is_needed(GDS, held(T0 + 8 * HOUR), {"staging": 8 * HOUR}, T0 + 9 * HOUR, NO_OFFSET)
    assert reason is not None and reason.startswith("the MFA session for gds ended at ")


def test_an_explicit_duration_needs_that_much_life_left() -> None:
    session = held(T0 + 8 * HOUR)
    wanted = {"staging": 8 * HOUR}
    assert why_a_code_is_needed(GDS, session, wanted, T0 + 4 * HOUR, NO_OFFSET, explicit=3 * HOUR) is None
    reason = why_a_code_is_needed(GDS, session, wanted, T0 + 4 * HOUR, NO_OFFSET, explicit=5 * HOUR)
    assert reason is not None and reason.endswith("sooner than the 5 h 0 min asked with --duration")


def test_fresh_code_environments_always_need_a_code() -> None:
    reason = why_a_code_is_needed(GDS, held(T0 + 8 * HOUR), {"production": HOUR}, T0, NO_OFFSET, fresh=["production"])
    assert reason == "production asks for a new code at every unlock (fresh_code in config.toml)"


def test_the_held_sessions_life_is_judged_on_awss_clock() -> None:
    # AWS wrote 17:00 as the expiry; a local clock 2 h ahead reads 19:00 then, so at 18:30 local it still has 30 min.
    session = held(T0 + 8 * HOUR)
    assert why_a_code_is_needed(GDS, session, {"staging": 30 * MINUTE}, T0 + 9 * HOUR + 30 * MINUTE,
                                -2 * HOUR) is None
    assert why_a_code_is_needed(GDS, session, {"staging": 30 * MINUTE}, T0 + 9 * HOUR + 30 * MINUTE,
                                NO_OFFSET) is not None


def test_a_newer_session_supersedes_the_held_one_unless_it_would_end_sooner() -> None:
    older, newer = held(T0 + 8 * HOUR), held(T0 + 9 * HOUR)
    assert newer.supersedes(older, NO_OFFSET)
    assert not older.supersedes(newer, NO_OFFSET)
