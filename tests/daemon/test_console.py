"""The daemon's console operation: fresh role credentials from the held MFA session, never outlasting it.

Driven like the service's own tests: the real ``Service``, a scripted STS and a fake clock.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from govuk_imds.core.clock import rfc3339
from govuk_imds.core.credentials import RoleCredentials
from govuk_imds.daemon.console import CONSOLE_SESSION, console_credentials
from govuk_imds.errors import EnvironmentLocked, SessionEndsTooSoon, SessionRejected, UnknownEnvironment
from tests.daemon.test_service import HOUR, MINUTE, SESSION_LENGTH, in_event_loop, world


@in_event_loop
async def test_a_console_sign_in_gets_fresh_credentials_from_the_held_session_and_serving_goes_on() -> None:
    w = world("production")
    await w.unlock("production")
    served = (await w.service.serve("production")).credentials
    w.clock.advance(40 * MINUTE)  # the served credentials have 20 minutes left; the console gets a whole hour

    answer = await console_credentials(w.service, w.issuer, w.clock, "production", SESSION_LENGTH)

    minted = RoleCredentials.from_wire(answer["credentials"])
    assert w.issuer.console_calls == ["production"]
    assert w.issuer.sessions[-1] == w.issuer.sessions[0]  # the MFA session the unlock brought
    assert minted.access_key_id != served.access_key_id
    assert minted.expiration == w.clock.now() + CONSOLE_SESSION
    assert answer["role_arn"] == "arn:aws:iam::123456789012:role/r"
    assert answer["account_id"] == "123456789012"
    assert answer["session_ends"] == rfc3339(w.clock.now() - 40 * MINUTE + SESSION_LENGTH)
    assert (await w.service.serve("production")).credentials == served  # serving is untouched
    await w.service.close()


@in_event_loop
async def test_unknown_and_locked_environments_make_no_sts_call() -> None:
    w = world("production", "staging")
    await w.unlock("production")
    with pytest.raises(UnknownEnvironment):
        await console_credentials(w.service, w.issuer, w.clock, "prod", SESSION_LENGTH)
    with pytest.raises(EnvironmentLocked, match="run `govuk-imds unlock staging`"):
        await console_credentials(w.service, w.issuer, w.clock, "staging", SESSION_LENGTH)
    assert w.issuer.console_calls == []
    await w.service.close()


@in_event_loop
async def test_an_ended_session_locks_and_is_refused() -> None:
    w = world("production")
    await w.unlock("production", lasts=2 * HOUR)
    w.clock.advance(2 * HOUR)
    with pytest.raises(EnvironmentLocked, match="the MFA session ended"):
        await console_credentials(w.service, w.issuer, w.clock, "production", 2 * HOUR)
    assert w.service.status()[0]["state"] == "locked"
    assert w.locked == ["production"]
    assert w.issuer.console_calls == []
    await w.service.close()


@in_event_loop
async def test_a_session_ending_within_the_console_hour_is_refused_before_sts_is_asked() -> None:
    w = world("production")
    await w.unlock("production", lasts=2 * HOUR)
    w.clock.advance(61 * MINUTE)  # 59 minutes of the MFA session left
    with pytest.raises(SessionEndsTooSoon, match=r"run `govuk-imds unlock production` for a new session, then "
                                                 r"`govuk-imds console production` again"):
        await console_credentials(w.service, w.issuer, w.clock, "production", 2 * HOUR)
    assert w.issuer.console_calls == []
    w.clock.jump_to(w.clock.now() - 2 * MINUTE)  # 61 minutes left: fine
    await console_credentials(w.service, w.issuer, w.clock, "production", 2 * HOUR)
    assert w.issuer.console_calls == ["production"]
    await w.service.close()


@in_event_loop
async def test_sessions_configured_no_longer_than_an_hour_say_which_setting_to_change() -> None:
    w = world("production")
    await w.unlock("production", lasts=45 * MINUTE)
    with pytest.raises(SessionEndsTooSoon, match="set a session_duration over 1h for production"):
        await console_credentials(w.service, w.issuer, w.clock, "production", 45 * MINUTE)
    await w.service.close()


@in_event_loop
async def test_credentials_that_would_outlast_the_session_are_not_handed_out() -> None:
    w = world("production")
    await w.unlock("production", lasts=2 * HOUR)
    w.issuer.console_duration = 3 * HOUR  # STS answering with more than the hour asked for
    with pytest.raises(SessionEndsTooSoon):
        await console_credentials(w.service, w.issuer, w.clock, "production", 2 * HOUR)
    await w.service.close()


@in_event_loop
async def test_an_sts_refusal_is_reported_and_leaves_the_environment_serving() -> None:
    w = world("production")
    await w.unlock("production")
    w.issuer.fail_with(SessionRejected("STS refused AssumeRole (AccessDenied, HTTP 403)"))
    with pytest.raises(SessionRejected, match="AccessDenied"):
        await console_credentials(w.service, w.issuer, w.clock, "production", timedelta(hours=8))
    assert w.service.status()[0]["state"] == "active"
    await w.service.close()
