"""One MFA code a day: the MFA session belongs to the source profile, serves every environment and role, survives a
restart of the daemon, and every duration takes effect where it should. Real daemon, real keyring, STS behind the
MFA-checking proxy, which counts GetSessionToken calls and records each call's DurationSeconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_resilience import raw_get
from tests.support.world import ACCOUNTS, World, aws_whoami, status_rows, wait_for

HOUR = 3600
KEPT_ITEM = "import json, sys; from keyring.backends.SecretService import Keyring; " \
            "d = Keyring().get_password('govuk-imds-mfa-session', 'held'); " \
            "print('none' if d is None else json.dumps([[u['environment'] for u in s['unlocks']] " \
            "for s in json.loads(d)['sessions']]))"


def kept(world: World) -> list[list[str]] | None:
    """What the keyring holds for the daemon: per MFA session, the environments unlocked with it (None: no item)."""
    out = subprocess.run([sys.executable, "-c", KEPT_ITEM], env=world.environment, capture_output=True, text=True,
                         timeout=30, check=True).stdout.strip()
    return None if out == "none" else list(json.loads(out))


def configure(world: World, text: str) -> None:
    world.config_file.write_text(world.config_file.read_text() + "\n" + text)


def ends_in(row: dict[str, object], key: str = "session_ends") -> timedelta:
    moment = datetime.fromisoformat(str(row[key]).replace("Z", "+00:00"))
    return moment - datetime.now(UTC)


def near(span: timedelta, hours: float) -> bool:
    return abs(span - timedelta(hours=hours)) < timedelta(minutes=2)


def no_code(world: World, *names: str) -> subprocess.CompletedProcess[str]:
    """`unlock` with no code anywhere: stdin is empty, so a prompt for one fails."""
    return world.cli("unlock", *names, input="")


def test_one_code_unlocks_production_then_staging_and_a_second_role_of_production(world: World) -> None:
    world.add_key()
    world.start()
    before = world.sts.count("GetSessionToken")

    first = world.unlock("production")
    assert first.returncode == 0, first.stderr + world.log()
    assert "an MFA code is needed: no MFA session is held for gds" in first.stdout
    for name in ("staging", "production-readonly"):
        later = no_code(world, name)
        assert later.returncode == 0, later.stderr + world.log()
        assert "no MFA code needed: using the MFA session held for gds" in later.stdout

    assert world.sts.count("GetSessionToken") == before + 1
    assert world.sts.durations("GetSessionToken")[-1] == 8 * HOUR  # the longest session of any gds environment
    for name, role in (("production", "govuk-administrators"), ("staging", "govuk-administrators"),
                       ("production-readonly", "govuk-readonly")):
        answer = aws_whoami(world, name)
        assert answer.returncode == 0, answer.stderr
        account = ACCOUNTS[name.split("-")[0]]
        assert f"arn:aws:sts::{account}:assumed-role/{role}/" in answer.stdout
    status = world.cli("status")
    assert "MFA session for gds: until" in status.stdout
    assert "used by production, production-readonly, staging" in status.stdout


def test_a_code_given_when_none_is_needed_is_accepted_and_said_unused(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    before = world.sts.count("GetSessionToken")

    flagged = world.unlock("staging")
    piped = world.cli("unlock", "integration", input=world.code() + "\n")

    assert flagged.returncode == 0 and piped.returncode == 0, flagged.stderr + piped.stderr
    assert "the code given with --code was not needed and was not used" in flagged.stdout
    assert "the code on stdin was not needed and was not used" in piped.stdout
    assert world.sts.count("GetSessionToken") == before


def test_a_malformed_code_is_refused_before_anything_else_even_right_after_an_unlock(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    calls = len(world.sts.calls)

    refused = world.cli("unlock", "integration", "--code", "12ab")

    assert refused.returncode == 2
    assert refused.stderr.strip() == ("govuk-imds: an MFA code is six digits; run the command again with the code "
                                      "your device shows")
    assert len(world.sts.calls) == calls
    assert status_rows(world)["integration"]["state"] == "locked"


def test_a_deliberate_re_unlock_unlocks_again_with_the_held_session(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    first = status_rows(world)["production"]["unlocked_at"]
    time.sleep(1.1)

    again = no_code(world, "production")

    assert again.returncode == 0, again.stderr
    assert "unlocked a moment ago" not in again.stdout
    assert "production: unlocked until" in again.stdout
    assert status_rows(world)["production"]["unlocked_at"] != first


def test_fresh_code_makes_every_unlock_of_that_environment_spend_a_new_code(world: World) -> None:
    configure(world, "[environments.production]\nfresh_code = true\n")
    world.add_key()
    world.start()
    assert world.unlock("staging").returncode == 0
    before = world.sts.count("GetSessionToken")

    without = no_code(world, "production")
    assert without.returncode == 2
    assert "production asks for a new code at every unlock (fresh_code in config.toml)" in without.stdout
    assert world.sts.count("GetSessionToken") == before

    unlocked = world.unlock("production")
    assert unlocked.returncode == 0, unlocked.stderr
    assert world.sts.count("GetSessionToken") == before + 1
    # Right after its own unlock, production still demands a new code...
    again = no_code(world, "production")
    assert again.returncode == 2 and "asks for a new code at every unlock" in again.stdout
    # ...while the newest session is the held one, which other environments go on reusing with no code.
    assert no_code(world, "integration").returncode == 0
    assert world.sts.count("GetSessionToken") == before + 1


def test_after_sigkill_and_a_new_start_both_environments_serve_again_with_no_code(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production", "staging").returncode == 0
    assert kept(world) == [["production", "staging"]]
    ends = {name: ends_in(status_rows(world)[name]) for name in ("production", "staging")}
    pid = world.daemon_pid()
    assert pid is not None
    get_session_tokens = world.sts.count("GetSessionToken")

    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: world.cli("status").returncode != 0, 10, "the daemon gone")
    world.start()

    for name in ("production", "staging"):
        answer = aws_whoami(world, name)
        assert answer.returncode == 0, answer.stderr + world.log()
        # The same end (to the second the keyring keeps, and the clock offset STS's Date header allows).
        assert abs(ends_in(status_rows(world)[name]) - ends[name]) < timedelta(seconds=30)
    assert world.sts.count("GetSessionToken") == get_session_tokens
    assert "unlocked again after a restart" in world.log()


def test_stop_and_start_keeps_the_sessions_and_lock_all_leaves_no_session_item(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production", "staging").returncode == 0
    assert world.cli("stop").returncode == 0
    world.start()
    wait_for(lambda: status_rows(world)["production"]["state"] == "active", 20, "production back")

    locked = world.cli("lock", "production")
    assert locked.returncode == 0
    assert kept(world) == [["staging"]]  # staging still uses the MFA session
    assert world.cli("lock", "--all").returncode == 0
    assert kept(world) is None
    assert "an MFA code is needed" in no_code(world, "staging").stdout


def test_locking_the_last_environment_forgets_the_mfa_session(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0

    assert world.cli("lock", "production").returncode == 0

    assert kept(world) is None
    refused = no_code(world, "production")
    assert refused.returncode == 2
    assert "an MFA code is needed: no MFA session is held for gds" in refused.stdout


def test_a_restart_that_lost_a_session_says_why_in_status_and_in_the_423(world: World) -> None:
    world.sts.session_lifetime = 20  # an MFA session that ends 20 s after it was made
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    assert world.cli("stop").returncode == 0
    time.sleep(21)

    world.start()

    reason = "the MFA session expired while the daemon was stopped"
    assert status_rows(world)["production"]["problem"] == reason
    status, body = raw_get(world, "production")
    assert status == 423
    assert reason in body["message"]
    assert kept(world) is None


def test_a_daemon_that_cannot_reach_the_keyring_keeps_serving_and_says_so(world: World) -> None:
    world.add_key()
    no_keyring = dict(world.environment, DBUS_SESSION_BUS_ADDRESS=f"unix:path={world.home}/no-such-bus")
    started = world.cli("start", env=no_keyring)
    assert started.returncode == 0, started.stderr + world.log()
    assert "could not read the keyring" in str(status_rows(world)["production"]["problem"])

    assert world.unlock("production").returncode == 0
    assert aws_whoami(world, "production").returncode == 0
    status = world.cli("status")
    assert status.stdout.count("MFA sessions are not kept across a restart of the daemon:") == 1
    assert world.log().count("MFA sessions are not kept across a restart") == 1


# -- every duration, where it takes effect ----------------------------------------------------------------------------


def test_session_duration_per_environment_alone_and_in_a_multi_environment_unlock(world: World) -> None:
    configure(world, '[environments.production]\nsession_duration = "4h"\n')
    world.add_key()
    world.start()

    assert world.unlock("production").returncode == 0
    assert near(ends_in(status_rows(world)["production"]), 4)
    assert world.sts.durations("GetSessionToken")[-1] == 8 * HOUR  # staging's 8 h: the longest of gds

    assert world.cli("lock", "--all").returncode == 0
    assert world.unlock("production", "staging").returncode == 0
    rows = status_rows(world)
    assert near(ends_in(rows["production"]), 4)
    assert near(ends_in(rows["staging"]), 8)


def test_the_longest_session_of_the_source_profile_or_duration_is_what_get_session_token_asks_for(
        world: World) -> None:
    configure(world, '[environments.production]\nsession_duration = "2h"\n[environments.staging]\n'
                     'session_duration = "5h"\n[environments.integration]\nsession_duration = "3h"\n'
                     '[environments.production-readonly]\nsession_duration = "1h"\n')
    world.add_key()
    world.start()

    assert world.unlock("production").returncode == 0
    assert world.sts.durations("GetSessionToken")[-1] == 5 * HOUR
    assert near(ends_in(status_rows(world)["production"]), 2)

    longer = world.cli("unlock", "integration", "--duration", "10h", "--code", world.code())
    assert longer.returncode == 0, longer.stderr
    assert "sooner than the 10 h 0 min asked with --duration" in longer.stdout
    assert world.sts.durations("GetSessionToken")[-1] == 10 * HOUR
    assert near(ends_in(status_rows(world)["integration"]), 10)


def test_a_profiles_duration_seconds_reaches_assume_role(world: World) -> None:
    world.aws_config_file.write_text(world.aws_config_file.read_text().replace(
        "[profile govuk-production]\n", "[profile govuk-production]\nduration_seconds = 2700\n"))
    world.add_key()
    world.start()

    assert world.unlock("production", "staging").returncode == 0

    assert sorted(duration or 0 for duration in world.sts.durations("AssumeRole")[-2:]) == [2700, 3600]


def test_an_unlocks_end_is_capped_by_the_mfa_sessions_expiry(world: World) -> None:
    world.sts.session_lifetime = 2 * HOUR  # AWS granted less than asked
    world.add_key()
    world.start()

    unlocked = world.unlock("production")

    assert unlocked.returncode == 0, unlocked.stderr
    row = status_rows(world)["production"]
    assert row["session_ends"] == row["mfa_session_ends"]
    assert near(ends_in(row), 2)
    assert "when the MFA session for gds ends" in unlocked.stdout
    assert "--duration 8h` spends a new code" in unlocked.stdout


# -- a clock off from AWS's -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [-35, 120])
def test_a_clock_off_from_awss_is_measured_told_once_and_served_on_the_local_clock(world: World,
                                                                                   minutes: int) -> None:
    world.sts.clock_offset = minutes * 60.0  # AWS's clock minus this machine's
    world.add_key()
    world.start()
    assume_roles = world.sts.count("AssumeRole")
    assert world.unlock("production").returncode == 0

    status, body = raw_get(world, "production")
    assert status == 200
    served_for = datetime.fromisoformat(body["Expiration"].replace("Z", "+00:00")) - datetime.now(UTC)
    assert abs(served_for - timedelta(hours=1)) < timedelta(minutes=1)  # one hour on this machine's clock too
    assert aws_whoami(world, "staging").returncode != 0  # staging is locked: nothing else changed
    offset = json.loads(world.cli("status", "--json").stdout)["clock_offset_seconds"]
    assert abs(offset - minutes * 60) < 5
    direction = "ahead of" if minutes < 0 else "behind"
    assert f"{direction} AWS (measured from STS's answers)" in world.cli("status").stdout
    assert world.log().count("the local clock is") == 1
    assert world.sts.count("AssumeRole") == assume_roles + 1  # fresh credentials do not look due for renewal
    doctor = world.cli("doctor", "production")
    assert f"the daemon measured this machine's clock {'35 min 0 s' if minutes < 0 else '2 h 0 min'}" in doctor.stdout


# -- what a working day costs ---------------------------------------------------------------------------------------


def test_a_working_day_of_three_environments_and_two_roles_costs_one_code(world: World) -> None:
    """09:00 the first unlock; through the day each of three environments in two roles, one at a time; a restart of
    the daemon at lunch (an upgrade); every environment serves after it. One code, one GetSessionToken."""
    readonly = "".join(
        f"\n[profile govuk-{name}-readonly]\nrole_arn = arn:aws:iam::{ACCOUNTS[name]}:role/govuk-readonly\n"
        f"mfa_serial = {world.mfa_serial}\nsource_profile = gds\nregion = eu-west-1\n"
        for name in ("integration", "staging"))
    world.aws_config_file.write_text(world.aws_config_file.read_text() + readonly)
    day = ["integration", "integration-readonly", "staging", "staging-readonly", "production", "production-readonly"]
    world.add_key()
    world.start()
    before = world.sts.count("GetSessionToken")
    codes = 0

    for name in day:
        unlocked = no_code(world, name)
        if "an MFA code is needed" in unlocked.stdout:
            codes += 1
            unlocked = world.unlock(name)
        assert unlocked.returncode == 0, unlocked.stderr
    pid = world.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: world.cli("status").returncode != 0, 10, "the daemon gone")
    world.start()
    for name in day:
        answer = aws_whoami(world, name)
        assert answer.returncode == 0, answer.stderr

    assert (codes, world.sts.count("GetSessionToken") - before) == (1, 1)


@pytest.mark.parametrize("duration", ["10m", "37h", "soon"])
def test_a_duration_out_of_range_or_not_a_duration_is_refused_before_anything_else(world: World,
                                                                                   duration: str) -> None:
    refused = world.cli("unlock", "production", "--duration", duration)  # no daemon, no key: not even asked
    assert refused.returncode == 2
    assert refused.stderr.startswith("govuk-imds: --duration")
    assert ("must be between 15m and 36h" in refused.stderr) != (duration == "soon")
    assert len(refused.stderr.strip().splitlines()) == 1
