"""The service: single-flight renewal, serving from cache, backoff, locking, driven by a fake clock and a scripted STS.

Each test runs its scenario in a fresh event loop with ``asyncio.run``. Nothing sleeps: time moves on the fake clock,
and ``settle()`` only hands the loop a few turns (``asyncio.sleep(0)``) so background renewals can take their steps.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from govuk_imds.core.clock import rfc3339
from govuk_imds.core.credentials import MfaSession, RoleCredentials
from govuk_imds.core.environment import EnvironmentSpec
from govuk_imds.core.session import MIN_SERVED_LIFETIME
from govuk_imds.daemon.service import AIOCACHE_SWITCH, Service, keep_cache_enabled
from govuk_imds.errors import (
    CredentialsUnavailable,
    EnvironmentLocked,
    SessionRejected,
    StsUnavailable,
    UnknownEnvironment,
)
from tests.support.clock import FakeClock
from tests.support.fakes import ScriptedIssuer

MARGIN = timedelta(minutes=30)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
SESSION_LENGTH = timedelta(hours=8)


def in_event_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an ``async def`` test in its own event loop (there is no pytest-asyncio here)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def settle(turns: int = 10) -> None:
    """Give the loop a few turns, so tasks that are ready (renewals, requests) run until they next wait."""
    for _ in range(turns):
        await asyncio.sleep(0)


def spec(name: str = "integration") -> EnvironmentSpec:
    return EnvironmentSpec(
        name=name,
        profile=f"govuk-{name}",
        role_arn="arn:aws:iam::123456789012:role/r",
        mfa_serial="arn:aws:iam::123456789012:mfa/u",
        source_profile="gds",
        region="eu-west-1",
        role_duration_seconds=3600,
        role_session_name="u",
    )


@dataclass
class World:
    clock: FakeClock
    issuer: ScriptedIssuer
    service: Service
    locked: list[str] = field(default_factory=list)

    def mfa_session(self, lasts: timedelta = SESSION_LENGTH) -> MfaSession:
        return MfaSession("ASIAMFA0000000000001", "m" * 40, "mfa-session-token", self.clock.now() + lasts)

    async def unlock(self, name: str = "integration", lasts: timedelta = SESSION_LENGTH) -> dict[str, Any]:
        session = self.mfa_session(lasts)
        return await self.service.unlock(spec(name), session, session.expiration)

    def status_of(self, name: str = "integration") -> dict[str, Any]:
        return next(entry for entry in self.service.status() if entry["environment"] == name)


def world(*names: str, request_wait: float = 5.0, jitter: float = 0.0, role_duration: timedelta | None = None) -> World:
    """Build inside a running loop. Jitter 0 makes the first backoff exactly one second.

    The default ``request_wait`` is only a bound: where STS answers at once the wait ends at once, and a test that
    expects a request to give up on a held renewal passes a short one (10 ms) explicitly.
    """
    clock = FakeClock()
    issuer = ScriptedIssuer(clock, role_duration)
    locked: list[str] = []
    service = Service(
        issuer,
        clock,
        rotation_margin=MARGIN,
        on_lock=locked.append,
        jitter=lambda: jitter,
        request_wait=request_wait,
    )
    service.set_environments({name: spec(name) for name in names or ("integration",)})
    return World(clock, issuer, service, locked)


def assert_servable(credentials: RoleCredentials, now: datetime) -> None:
    assert credentials.expiration - now >= MIN_SERVED_LIFETIME, f"served {credentials!r} at {rfc3339(now)}"


# -- unlock and the request path ------------------------------------------------------------------------------------


@in_event_loop
async def test_unlock_assumes_the_role_once_with_the_mfa_session_and_serves_the_result() -> None:
    w = world()
    session = w.mfa_session()

    report = await w.service.unlock(spec(), session, session.expiration)
    served = (await w.service.serve("integration")).credentials

    assert w.issuer.calls == ["integration"]
    assert w.issuer.sessions == [session]
    assert served == w.issuer.issued[0]
    assert served.expiration == w.clock.now() + HOUR
    assert report["state"] == "active"
    assert report["problem"] is None
    await w.service.close()


@in_event_loop
async def test_serves_the_same_credentials_again_without_calling_sts() -> None:
    w = world()
    await w.unlock()

    first = (await w.service.serve("integration")).credentials
    w.clock.advance(20 * MINUTE)
    second = (await w.service.serve("integration")).credentials
    await w.service.tick()

    assert first == second
    assert w.issuer.call_count == 1
    assert w.status_of()["last_served"] == rfc3339(w.clock.now())
    await w.service.close()


@in_event_loop
async def test_a_thousand_requests_inside_the_margin_get_the_old_credentials_at_once_and_one_renewal_runs() -> None:
    w = world()
    await w.unlock()
    old = w.issuer.issued[0]
    w.clock.advance(40 * MINUTE)  # 20 minutes left: inside the margin, still above the 15-minute floor
    w.issuer.block()

    await w.service.tick()  # the maintenance loop starts the renewal...
    await settle()
    assert w.issuer.waiting == 1  # ...which is now stuck in STS
    requests = [asyncio.ensure_future(w.service.serve("integration")) for _ in range(1000)]
    await settle()

    assert all(request.done() for request in requests), "a request waited for STS while valid credentials existed"
    assert {request.result().credentials for request in requests} == {old}
    for _ in range(3):
        await w.service.tick()
        await settle()
    assert w.issuer.call_count == 2  # the unlock, then the one renewal the tick started
    assert w.issuer.waiting == 1

    w.issuer.release()
    await settle()
    fresh = (await w.service.serve("integration")).credentials
    assert fresh == w.issuer.issued[1]
    assert fresh.expiration == w.clock.now() + HOUR
    assert w.issuer.call_count == 2
    await w.service.close()


@in_event_loop
async def test_many_requests_with_nothing_valid_to_serve_share_a_single_renewal() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(2 * HOUR)  # the laptop slept: the credentials have expired
    w.issuer.block()

    requests = [asyncio.ensure_future(w.service.serve("integration")) for _ in range(200)]
    await settle()
    assert not any(request.done() for request in requests)
    w.issuer.release()
    served = [answer.credentials for answer in await asyncio.gather(*requests)]

    assert w.issuer.call_count == 2  # the unlock, then exactly one renewal for all 200 requests
    assert set(served) == {w.issuer.issued[1]}
    assert_servable(served[0], w.clock.now())
    await w.service.close()


@pytest.mark.parametrize(
    "slept",
    [46 * MINUTE, 59 * MINUTE, HOUR, 2 * HOUR, 7 * HOUR + 44 * MINUTE],
    ids=["46m", "59m", "1h", "2h", "7h44m"],
)
@in_event_loop
async def test_never_serves_expired_credentials_after_the_laptop_slept(slept: timedelta) -> None:
    w = world(request_wait=0.01)
    await w.unlock()
    w.clock.advance(slept)
    w.issuer.block()

    with pytest.raises(CredentialsUnavailable):
        await w.service.serve("integration")
    await w.service.tick()
    with pytest.raises(CredentialsUnavailable):
        await w.service.serve("integration")

    w.issuer.release()
    await settle()
    fresh = (await w.service.serve("integration")).credentials
    assert fresh == w.issuer.issued[-1]
    assert_servable(fresh, w.clock.now())
    assert w.issuer.call_count == 2
    await w.service.close()


@in_event_loop
async def test_a_request_after_the_laptop_slept_gets_freshly_renewed_credentials_when_sts_answers_quickly() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(2 * HOUR)

    served = (await w.service.serve("integration")).credentials

    assert served == w.issuer.issued[1]
    assert served.expiration == w.clock.now() + HOUR
    await w.service.close()


@in_event_loop
async def test_after_sleeping_past_the_session_end_a_request_finds_the_environment_locked() -> None:
    w = world()
    await w.unlock(lasts=4 * HOUR)
    w.clock.advance(9 * HOUR)

    with pytest.raises(EnvironmentLocked, match="the MFA session ended"):
        await w.service.serve("integration")

    assert w.issuer.call_count == 1
    assert w.locked == ["integration"]
    assert w.status_of()["state"] == "locked"
    await w.service.close()


@in_event_loop
async def test_with_under_fifteen_minutes_of_session_left_and_nothing_valid_it_still_renews_and_says_so() -> None:
    w = world(request_wait=0.01)
    await w.unlock(lasts=HOUR + 20 * MINUTE)
    w.clock.advance(HOUR + 10 * MINUTE)  # credentials expired 10 minutes ago; the session ends in 10 minutes
    w.issuer.block()  # and STS is slow to answer the renewal this request starts

    with pytest.raises(CredentialsUnavailable, match=r"renewing them now.*retrying automatically"):
        await w.service.serve("integration")
    w.issuer.release()
    await settle()
    assert (await w.service.serve("integration")).credentials == w.issuer.issued[-1]  # served to the last minutes
    await w.service.close()


# -- STS trouble ----------------------------------------------------------------------------------------------------


@in_event_loop
async def test_keeps_serving_existing_credentials_while_sts_is_down() -> None:
    w = world()
    await w.unlock()
    old = w.issuer.issued[0]
    w.clock.advance(35 * MINUTE)
    w.issuer.fail_with(StsUnavailable("STS did not answer within 5 s"))

    await w.service.tick()
    await settle()

    status = w.status_of()
    assert status["state"] == "degraded"
    assert status["problem"] == "STS did not answer within 5 s"
    assert status["credentials_expire"] == rfc3339(old.expiration)
    assert (await w.service.serve("integration")).credentials == old
    w.clock.advance(5 * MINUTE)
    assert (await w.service.serve("integration")).credentials == old
    await w.service.close()


@in_event_loop
async def test_retries_after_the_backoff_and_recovers_when_sts_is_back() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(35 * MINUTE)
    w.issuer.fail_with(StsUnavailable("throttled"))
    await w.service.tick()
    await settle()
    assert w.issuer.call_count == 2

    w.clock.advance(SECOND / 2)  # the first backoff is 1 s with no jitter
    await w.service.tick()
    await settle()
    assert w.issuer.call_count == 2, "retried before the backoff was over"

    w.issuer.succeed()
    w.clock.advance(SECOND / 2)
    await w.service.tick()
    await settle()

    assert w.issuer.call_count == 3
    assert w.status_of()["state"] == "active"
    assert w.status_of()["problem"] is None
    assert (await w.service.serve("integration")).credentials == w.issuer.issued[-1]
    await w.service.close()


@in_event_loop
async def test_backs_off_longer_after_each_failure() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(35 * MINUTE)
    w.issuer.fail_with(StsUnavailable("throttled"))
    for expected_wait in (1, 2, 4, 8):
        await w.service.tick()
        await settle()
        retry_at = w.service._environments["integration"].session.retry_at
        assert retry_at == w.clock.now() + expected_wait * SECOND
        w.clock.jump_to(retry_at)

    assert w.issuer.call_count == 1 + 4
    await w.service.close()


@in_event_loop
async def test_a_request_during_the_backoff_does_not_call_sts_and_says_why_nothing_is_served() -> None:
    w = world(request_wait=0.01)
    w.issuer.fail_with(StsUnavailable("STS endpoint unreachable"))
    report = await w.unlock()
    assert report["state"] == "degraded"

    with pytest.raises(CredentialsUnavailable, match="STS endpoint unreachable"):
        await w.service.serve("integration")
    assert w.issuer.call_count == 1

    w.issuer.succeed()
    w.clock.advance(SECOND)
    served = (await w.service.serve("integration")).credentials  # backoff over: the request itself may renew
    assert served == w.issuer.issued[0]
    assert w.issuer.call_count == 2
    await w.service.close()


@in_event_loop
async def test_an_unexpected_error_in_the_issuer_degrades_the_environment_instead_of_killing_its_renewals() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(35 * MINUTE)
    w.issuer.fail_with(KeyError("Credentials"))  # e.g. the adapter misreading an STS answer

    await w.service.tick()
    await settle()
    assert w.status_of()["state"] == "degraded"
    assert w.status_of()["problem"] == "internal error: KeyError"

    w.issuer.succeed()
    w.clock.advance(MINUTE)
    await w.service.tick()
    await settle()
    assert w.status_of()["state"] == "active"
    await w.service.close()


@in_event_loop
async def test_locks_at_once_when_sts_rejects_the_session_and_never_calls_it_again() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(35 * MINUTE)
    w.issuer.fail_with(SessionRejected("AccessDenied: the MFA session may not assume the role"))

    await w.service.tick()
    await settle()

    status = w.status_of()
    assert status["state"] == "locked"
    assert status["problem"] == "AccessDenied: the MFA session may not assume the role"
    assert status["credentials_expire"] is None
    assert w.locked == ["integration"]
    with pytest.raises(EnvironmentLocked, match=r"AccessDenied.*govuk-imds unlock integration"):
        await w.service.serve("integration")
    for _ in range(5):
        w.clock.advance(10 * MINUTE)
        # The role said no, not the MFA session: it is still held (for other roles), and only its end is awaited.
        assert await w.service.tick() == w.clock.now().replace(hour=17, minute=0)
        await settle()
    assert w.issuer.call_count == 2
    await w.service.close()


@in_event_loop
async def test_requests_waiting_on_a_rejected_renewal_are_told_the_environment_is_locked() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(2 * HOUR)
    w.issuer.block()
    requests = [asyncio.ensure_future(w.service.serve("integration")) for _ in range(3)]
    await settle()

    w.issuer.fail_with(SessionRejected("ExpiredToken"))
    w.issuer.release()
    outcomes = await asyncio.gather(*requests, return_exceptions=True)

    assert all(isinstance(outcome, EnvironmentLocked) for outcome in outcomes), outcomes
    assert "ExpiredToken" in str(outcomes[0])
    assert w.issuer.call_count == 2
    await w.service.close()


@in_event_loop
async def test_a_failure_renewing_one_environment_never_disturbs_another() -> None:
    w = world("integration", "staging", "production")
    for name in ("integration", "staging", "production"):
        await w.unlock(name)
    w.clock.advance(35 * MINUTE)
    w.issuer.fail_with(StsUnavailable("throttled"), environment="staging")
    w.issuer.fail_with(SessionRejected("AccessDenied"), environment="production")

    await w.service.tick()
    await settle()

    states = {entry["environment"]: (entry["state"], entry["problem"]) for entry in w.service.status()}
    assert states == {
        "integration": ("active", None),
        "staging": ("degraded", "throttled"),
        "production": ("locked", "AccessDenied"),
    }
    assert w.locked == ["production"]
    served = (await w.service.serve("integration")).credentials
    assert served == w.issuer.issued[-1]
    assert served.expiration == w.clock.now() + HOUR
    assert (await w.service.serve("staging")).credentials == w.issuer.issued[1]
    await w.service.close()


# -- locking ----------------------------------------------------------------------------------------------------------


@in_event_loop
async def test_the_tick_locks_an_environment_when_its_mfa_session_ends() -> None:
    w = world()
    await w.unlock(lasts=2 * HOUR)
    w.clock.advance(2 * HOUR - SECOND)
    await w.service.tick()
    assert w.status_of()["state"] != "locked"

    w.clock.advance(SECOND)
    assert await w.service.tick() is None

    status = w.status_of()
    assert (status["state"], status["problem"]) == ("locked", "the MFA session ended")
    assert (status["session_ends"], status["credentials_expire"]) == (None, None)
    assert w.locked == ["integration"]
    with pytest.raises(EnvironmentLocked, match="govuk-imds unlock integration"):
        await w.service.serve("integration")
    await w.service.close()


@in_event_loop
async def test_a_lock_during_a_renewal_discards_its_result() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(35 * MINUTE)
    w.issuer.block()
    await w.service.tick()
    await settle()
    assert w.issuer.waiting == 1

    assert await w.service.lock("integration") is True
    assert w.issuer.waiting == 0  # the call holding the forgotten MFA session was stopped, not left to finish
    w.issuer.release()
    await settle()

    with pytest.raises(EnvironmentLocked, match="locked by you"):
        await w.service.serve("integration")
    assert w.status_of()["credentials_expire"] is None
    assert w.status_of()["state"] == "locked"
    assert w.locked == ["integration"]
    await w.service.close()


@in_event_loop
async def test_a_lock_during_a_renewal_whose_issuer_ignores_cancellation_still_discards_its_result() -> None:
    # The real STS adapter runs boto3 in a thread: cancelling the await does not stop the call from returning.
    w = world()
    await w.unlock()
    w.clock.advance(35 * MINUTE)
    w.issuer.block()
    environment = w.service._environments["integration"]
    await w.service.tick()
    await settle()
    renewal = environment.renewal
    assert renewal is not None

    environment.renewal = None  # lock() will not cancel it: the result arrives after the lock
    await w.service.lock("integration")
    w.issuer.release()
    await renewal

    with pytest.raises(EnvironmentLocked):
        await w.service.serve("integration")
    assert environment.session.credentials is None
    await w.service.close()


@in_event_loop
async def test_a_request_waiting_for_a_renewal_is_told_locked_when_the_environment_is_locked_meanwhile() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(2 * HOUR)
    w.issuer.block()
    request = asyncio.ensure_future(w.service.serve("integration"))
    await settle()
    assert not request.done()

    await w.service.lock("integration")
    await settle()

    assert request.done()
    assert not request.cancelled()
    assert isinstance(request.exception(), EnvironmentLocked)
    await w.service.close()


@in_event_loop
async def test_an_unlock_interrupted_by_a_lock_reports_the_environment_locked() -> None:
    w = world()
    w.issuer.block()
    unlocking = asyncio.ensure_future(w.unlock())
    await settle()
    assert w.issuer.waiting == 1

    await w.service.lock("integration")
    await settle()

    assert unlocking.done()
    assert not unlocking.cancelled()
    assert unlocking.exception() is None
    assert unlocking.result()["state"] == "locked"
    await w.service.close()


@in_event_loop
async def test_credentials_from_before_a_lock_are_never_served_again_even_while_a_new_unlock_runs() -> None:
    w = world(request_wait=0.01)
    await w.unlock()
    before_lock = (await w.service.serve("integration")).credentials
    await w.service.lock("integration")
    w.issuer.block()

    unlocking = asyncio.ensure_future(w.unlock())
    await settle()
    assert w.issuer.waiting == 1
    with pytest.raises(CredentialsUnavailable):
        await w.service.serve("integration")

    w.issuer.release()
    await unlocking
    served = (await w.service.serve("integration")).credentials
    assert served != before_lock
    assert served == w.issuer.issued[-1]
    await w.service.close()


@in_event_loop
async def test_a_new_unlock_proves_the_new_mfa_session_even_if_a_renewal_was_under_way() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(35 * MINUTE)
    w.issuer.block()
    await w.service.tick()
    await settle()
    assert w.issuer.waiting == 1  # a renewal with the old MFA session is stuck in STS

    new_session = MfaSession("ASIAMFA0000000000002", "n" * 40, "new-mfa-session-token", w.clock.now() + 8 * HOUR)
    unlocking = asyncio.ensure_future(w.service.unlock(spec(), new_session, new_session.expiration))
    await settle()
    w.issuer.release()
    report = await unlocking

    assert report["state"] == "active"
    assert w.issuer.sessions[-1] == new_session
    assert report["session_ends"] == rfc3339(new_session.expiration)
    assert (await w.service.serve("integration")).credentials == w.issuer.issued[-1]
    await w.service.close()


@in_event_loop
async def test_clients_are_served_the_old_credentials_while_a_new_unlock_is_being_proven() -> None:
    w = world()
    await w.unlock()
    old = w.issuer.issued[0]
    w.clock.advance(10 * MINUTE)
    w.issuer.block()

    unlocking = asyncio.ensure_future(w.unlock())
    await settle()
    assert w.issuer.waiting == 1
    assert (await w.service.serve("integration")).credentials == old

    w.issuer.release()
    report = await unlocking
    assert report["state"] == "active"
    assert (await w.service.serve("integration")).credentials == w.issuer.issued[1]
    await w.service.close()


@in_event_loop
async def test_locking_an_unknown_environment_names_the_known_ones() -> None:
    w = world("integration", "staging")

    with pytest.raises(UnknownEnvironment, match=r"'nope' \(known: integration, staging\)"):
        await w.service.lock("nope")
    assert w.locked == []
    await w.service.close()


@in_event_loop
async def test_asking_for_an_unknown_environment_is_an_unknown_environment_error() -> None:
    w = world()

    with pytest.raises(UnknownEnvironment, match="'production'"):
        await w.service.serve("production")
    assert w.issuer.call_count == 0
    await w.service.close()


@in_event_loop
async def test_a_never_unlocked_environment_is_locked_and_says_how_to_unlock_it() -> None:
    w = world("staging")

    with pytest.raises(EnvironmentLocked, match=r"'staging' is locked; run `govuk-imds unlock staging`"):
        await w.service.serve("staging")
    await w.service.close()


@in_event_loop
async def test_a_locked_environment_gives_the_reason_and_how_to_unlock_it() -> None:
    w = world()
    await w.unlock()
    assert await w.service.lock("integration") is True

    with pytest.raises(EnvironmentLocked) as raised:
        await w.service.serve("integration")

    message = "environment 'integration' is locked (locked by you); run `govuk-imds unlock integration`"
    assert str(raised.value) == message
    assert raised.value.name == "integration"
    assert w.issuer.call_count == 1
    await w.service.close()


@in_event_loop
async def test_lock_all_reports_only_the_environments_that_were_unlocked() -> None:
    w = world("integration", "staging", "production")
    await w.unlock("staging")
    await w.unlock("production")

    assert await w.service.lock_all() == ["production", "staging"]
    assert {entry["state"] for entry in w.service.status()} == {"locked"}
    assert await w.service.lock("staging") is False
    await w.service.close()


@in_event_loop
async def test_reloading_the_environments_keeps_the_sessions_of_those_that_stay() -> None:
    w = world("integration", "staging")
    await w.unlock("integration")
    served = (await w.service.serve("integration")).credentials

    w.service.set_environments({"integration": spec("integration"), "production": spec("production")})

    assert (await w.service.serve("integration")).credentials == served
    assert w.service.knows("production")
    await w.service.close()


@in_event_loop
async def test_closing_the_service_forgets_every_session() -> None:
    w = world("integration", "staging")
    await w.unlock("integration")

    await w.service.close()

    with pytest.raises(EnvironmentLocked, match="the daemon stopped"):
        await w.service.serve("integration")


@in_event_loop
async def test_does_not_reassume_over_and_over_when_role_credentials_are_shorter_than_the_margin() -> None:
    w = world(role_duration=timedelta(seconds=900))
    await w.unlock()

    for _ in range(10):
        await w.service.tick()
        await settle()

    assert w.issuer.call_count <= 2
    await w.service.close()


@in_event_loop
async def test_tick_does_not_ask_to_be_woken_at_once_when_nothing_is_due() -> None:
    w = world()
    await w.unlock()
    w.clock.advance(5 * MINUTE)
    w.issuer.fail_with(StsUnavailable("throttled"))
    report = await w.unlock()  # a re-unlock, e.g. to extend the session before it ends
    assert report["state"] == "degraded"
    w.clock.advance(2 * SECOND)  # past the 1-second backoff

    wake = await w.service.tick()
    await settle()

    assert w.issuer.call_count == 2  # nothing was due: the held credentials have 53 minutes left
    assert wake is not None
    assert wake > w.clock.now()
    await w.service.close()


# -- status -----------------------------------------------------------------------------------------------------------


STATUS_FIELDS = {
    "environment",
    "state",
    "session_ends",
    "credentials_expire",
    "last_served",
    "problem",
    "ending_soon",
    "role_arn",
}


def fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The documented status fields of one entry (the service may add more)."""
    return {key: entry[key] for key in STATUS_FIELDS}


@in_event_loop
async def test_status_describes_every_environment_in_name_order() -> None:
    w = world("staging", "integration")
    await w.unlock("integration", lasts=4 * HOUR)
    unlocked_at = w.clock.now()
    w.clock.advance(MINUTE)
    await w.service.serve("integration")

    status = w.service.status()

    assert [entry["environment"] for entry in status] == ["integration", "staging"]
    assert all(set(entry) >= STATUS_FIELDS for entry in status)
    assert [fields(entry) for entry in status] == [
        {
            "environment": "integration",
            "state": "active",
            "session_ends": "2026-03-02T13:00:00Z",
            "credentials_expire": rfc3339(unlocked_at + HOUR),
            "last_served": rfc3339(unlocked_at + MINUTE),
            "problem": None,
            "ending_soon": False,
            "role_arn": "arn:aws:iam::123456789012:role/r",
        },
        {
            "environment": "staging",
            "state": "locked",
            "session_ends": None,
            "credentials_expire": None,
            "last_served": None,
            "problem": None,
            "ending_soon": False,
            "role_arn": "arn:aws:iam::123456789012:role/r",
        },
    ]
    await w.service.close()


@in_event_loop
async def test_status_never_contains_a_secret() -> None:
    w = world()
    await w.unlock()
    served = (await w.service.serve("integration")).credentials

    text = repr(w.service.status())

    for secret in (served.access_key_id, served.secret_access_key, served.session_token, "mfa-session-token"):
        assert secret not in text
    await w.service.close()


@in_event_loop
async def test_status_warns_when_the_session_ends_within_fifteen_minutes() -> None:
    w = world()
    await w.unlock(lasts=HOUR)
    w.clock.advance(44 * MINUTE)
    assert w.status_of()["ending_soon"] is False

    w.clock.advance(2 * MINUTE)
    assert w.status_of()["ending_soon"] is True
    await w.service.close()


@pytest.mark.parametrize("kept_enabled", [False, True])
@in_event_loop
async def test_the_credential_cache_stays_on_when_the_shell_says_aiocache_disable(
        kept_enabled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AIOCACHE_SWITCH, "1")  # inherited from whoever started the daemon
    if kept_enabled:
        keep_cache_enabled(os.environ)  # what the daemon does at start
    w = world()
    await w.unlock()
    first, second = await w.service.serve("integration"), await w.service.serve("integration")
    assert first.body == second.body
    # Served from the cache, the answer is the one rendered when the credentials arrived; without the cache every
    # request renders its own.
    assert (first is second) is kept_enabled
    await w.service.close()
