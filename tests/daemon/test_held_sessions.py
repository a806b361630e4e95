"""The service's held MFA sessions: reuse, lock, what is kept across a restart and how it comes back, the clock
offset learned from STS's answers, and the request path's own check of the session's end. Fake clock, scripted STS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from govuk_imds.core.credentials import MfaSession
from govuk_imds.core.held import Device, HeldSession, KeptUnlock
from govuk_imds.daemon.service import Service
from govuk_imds.errors import EnvironmentLocked, MfaSessionEnded
from tests.daemon.test_service import HOUR, MARGIN, MINUTE, SECOND, in_event_loop, settle, spec
from tests.support.clock import FakeClock
from tests.support.fakes import ScriptedIssuer

GDS = Device("gds", "arn:aws:iam::123456789012:mfa/u")


@dataclass
class RecordingKeeper:
    """A ``Keeper`` that remembers every state it was asked to keep."""

    kept: list[list[HeldSession]] = field(default_factory=list)

    async def keep(self, sessions: Sequence[HeldSession]) -> None:
        self.kept.append(list(sessions))

    def environments(self) -> list[list[str]]:
        return [[unlock.environment for unlock in held.unlocks] for held in self.kept[-1]]


@dataclass
class Day:
    clock: FakeClock
    issuer: ScriptedIssuer
    service: Service
    keeper: RecordingKeeper

    def mfa_session(self, lasts: timedelta = 8 * HOUR) -> MfaSession:
        return MfaSession("ASIAMFA0000000000001", "m" * 40, "mfa-session-token",
                          self.clock.now() + self.issuer.aws_offset + lasts)

    def state(self, name: str) -> str:
        return str(next(row for row in self.service.status() if row["environment"] == name)["state"])


def day(*names: str, aws_offset: timedelta = timedelta(0)) -> Day:
    clock = FakeClock()
    issuer = ScriptedIssuer(clock, aws_offset=aws_offset)
    keeper = RecordingKeeper()
    service = Service(issuer, clock, rotation_margin=MARGIN, jitter=lambda: 0.0, request_wait=5.0, keeper=keeper)
    service.set_environments({name: spec(name) for name in names or ("production", "staging")})
    return Day(clock, issuer, service, keeper)


EIGHT_HOURS = {"production": 8 * HOUR, "staging": 8 * HOUR}


@in_event_loop
async def test_an_unlock_with_a_new_session_holds_it_and_later_unlocks_use_it_with_no_code() -> None:
    d = day()
    session = d.mfa_session()
    assert d.service.code_needed_for([spec("production")], EIGHT_HOURS) == "no MFA session is held for gds"

    await d.service.unlock_all([spec("production")], {"production": 8 * HOUR}, session, granted=8 * HOUR)
    d.clock.advance(2 * HOUR)
    assert d.service.code_needed_for([spec("staging")], EIGHT_HOURS) is None
    reports = await d.service.unlock_all([spec("staging")], {"staging": 8 * HOUR})

    assert d.issuer.sessions == [session, session]  # staging's role was assumed with production's MFA session
    assert reports[0]["state"] == "active"
    # Staging asked for 8 h at 11:00; the MFA session made at 09:00 ends at 17:00, and so does staging.
    assert reports[0]["session_ends"] == reports[0]["mfa_session_ends"] == "2026-03-02T17:00:00Z"
    assert d.keeper.environments() == [["production", "staging"]]
    await d.service.close()


@in_event_loop
async def test_locking_forgets_the_mfa_session_only_with_its_last_environment() -> None:
    d = day()
    await d.service.unlock_all([spec("production"), spec("staging")], EIGHT_HOURS, d.mfa_session(), granted=8 * HOUR)

    await d.service.lock("production")
    assert d.keeper.environments() == [["staging"]]
    assert d.service.code_needed_for([spec("production")], EIGHT_HOURS) is None

    await d.service.lock("staging")
    assert d.keeper.kept[-1] == []
    assert d.service.code_needed_for([spec("production")], EIGHT_HOURS) == "no MFA session is held for gds"
    await d.service.close()


@in_event_loop
async def test_lock_all_forgets_every_mfa_session() -> None:
    d = day()
    await d.service.unlock_all([spec("production")], {"production": 8 * HOUR}, d.mfa_session(), granted=8 * HOUR)

    assert await d.service.lock_all() == ["production"]

    assert d.keeper.kept[-1] == []
    assert d.service.held_status() == []
    await d.service.close()


@in_event_loop
async def test_an_environment_that_ends_by_itself_leaves_the_mfa_session_held_for_the_rest_of_the_day() -> None:
    d = day()
    await d.service.unlock_all([spec("production")], {"production": 4 * HOUR}, d.mfa_session(), granted=8 * HOUR)
    d.clock.advance(4 * HOUR)

    await d.service.tick()
    await settle()

    assert d.state("production") == "locked"
    assert d.service.code_needed_for([spec("staging")], EIGHT_HOURS) is None  # no second code at 13:00
    assert d.keeper.environments() == [[]]
    await d.service.close()


@in_event_loop
async def test_an_mfa_session_sts_no_longer_accepts_is_no_longer_held() -> None:
    d = day()
    await d.service.unlock_all([spec("production")], {"production": 8 * HOUR}, d.mfa_session(), granted=8 * HOUR)
    d.issuer.fail_with(MfaSessionEnded("STS refused AssumeRole (ExpiredToken)"))
    d.clock.advance(40 * MINUTE)

    await d.service.tick()
    await settle()

    assert d.state("production") == "locked"
    assert d.service.code_needed_for([spec("staging")], EIGHT_HOURS) == "no MFA session is held for gds"
    await d.service.close()


@in_event_loop
async def test_a_newer_session_that_ends_sooner_does_not_replace_a_longer_held_one() -> None:
    d = day()
    long = d.mfa_session(36 * HOUR)
    await d.service.unlock_all([spec("production")], {"production": 36 * HOUR}, long, granted=36 * HOUR)
    await d.service.unlock_all([spec("staging")], {"staging": 8 * HOUR}, d.mfa_session(8 * HOUR), granted=8 * HOUR)

    assert d.keeper.kept[-1][0].credentials == long
    await d.service.close()


# -- after a restart ----------------------------------------------------------------------------------------------


@in_event_loop
async def test_a_restart_unlocks_again_what_was_kept_with_no_code_and_assumes_the_roles() -> None:
    before = day()
    session = before.mfa_session()
    await before.service.unlock_all([spec("production"), spec("staging")],
                                    {"production": 4 * HOUR, "staging": 8 * HOUR}, session, granted=8 * HOUR)
    kept = before.keeper.kept[-1]
    await before.service.close()

    after = day()
    after.clock.jump_to(before.clock.now() + 10 * MINUTE)
    after.service.restore(kept)
    await settle()

    assert [after.state(name) for name in ("production", "staging")] == ["active", "active"]
    assert after.issuer.sessions == [session, session]
    rows = {row["environment"]: row for row in after.service.status()}
    assert rows["production"]["session_ends"] == "2026-03-02T13:00:00Z"  # its own end, not a new one
    assert rows["staging"]["session_ends"] == "2026-03-02T17:00:00Z"
    assert after.service.code_needed_for([spec("staging")], EIGHT_HOURS) is None
    await after.service.close()


@in_event_loop
async def test_a_restart_that_lost_a_session_says_why() -> None:
    d, blind = day(), day()
    start = d.clock.now()
    expired = HeldSession(GDS, d.mfa_session(HOUR), HOUR, (KeptUnlock("production", start, start + HOUR),))
    d.clock.advance(2 * HOUR)

    d.service.restore([expired])
    blind.service.mark_all_locked("the daemon started and could not read the keyring (locked)")

    with pytest.raises(EnvironmentLocked, match="the MFA session expired while the daemon was stopped"):
        await d.service.serve("production")
    with pytest.raises(EnvironmentLocked, match="could not read the keyring"):
        await blind.service.serve("staging")
    assert d.issuer.call_count == blind.issuer.call_count == 0
    await settle()
    assert d.keeper.kept[-1] == []  # the expired session is not kept any longer
    await d.service.close()
    await blind.service.close()


@in_event_loop
async def test_a_restart_after_an_environments_own_end_says_so() -> None:
    d = day()
    start = d.clock.now()
    held = HeldSession(GDS, d.mfa_session(8 * HOUR), 8 * HOUR, (KeptUnlock("production", start, start + HOUR),
                                                                KeptUnlock("staging", start, start + 8 * HOUR)))
    d.clock.advance(2 * HOUR)

    d.service.restore([held])
    await settle()

    with pytest.raises(EnvironmentLocked, match="its session ended while the daemon was stopped"):
        await d.service.serve("production")
    assert d.state("staging") == "active"
    await d.service.close()


# -- the request path's own check of the session's end ------------------------------------------------------------


@pytest.mark.parametrize("capped_by_mfa", [False, True], ids=["own-end", "mfa-end"])
@in_event_loop
async def test_the_request_path_stops_serving_at_the_sessions_end_without_a_tick(capped_by_mfa: bool) -> None:
    d = day()
    own, mfa = (HOUR, 8 * HOUR) if not capped_by_mfa else (8 * HOUR, HOUR)
    await d.service.unlock_all([spec("production")], {"production": own}, d.mfa_session(mfa), granted=mfa)
    await d.service.serve("production")

    d.clock.advance(HOUR - SECOND)
    await d.service.serve("production")  # cached with a TTL on the event loop's clock, which the fake one outruns
    d.clock.advance(SECOND)
    with pytest.raises(EnvironmentLocked):
        await d.service.serve("production")
    await d.service.close()


# -- the clock offset ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [2 * HOUR, 10 * MINUTE, -10 * MINUTE, -35 * MINUTE, -2 * HOUR],
                         ids=["aws-2h-ahead", "aws-10m-ahead", "local-10m-ahead", "local-35m-ahead", "local-2h-ahead"])
@in_event_loop
async def test_a_clock_off_from_awss_costs_one_assume_role_per_rotation_and_every_minute_is_served(
        offset: timedelta) -> None:
    d = day(aws_offset=offset)
    await d.service.unlock_all([spec("production")], {"production": 8 * HOUR}, d.mfa_session(), granted=8 * HOUR)
    unserved = []
    for _ in range(8 * 60):
        await d.service.tick()
        await settle()
        served = await d.service.serve("production")
        if served.credentials.expiration - (d.clock.now() + offset) < 15 * MINUTE:
            unserved.append(d.clock.now())
        d.clock.advance(MINUTE)

    assert unserved == []
    assert d.issuer.call_count == 16  # the unlock's, then one every 30 minutes, as with a right clock
    assert d.service.clock_offset == offset
    with pytest.raises(EnvironmentLocked):
        await d.service.serve("production")
    await d.service.close()
