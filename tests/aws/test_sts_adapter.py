"""The STS adapter against moto behind the fault-injecting proxy: every failure maps to the right error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govuk_imds.aws.sts import Sts
from govuk_imds.config.paths import RuntimePaths
from govuk_imds.config.settings import Settings
from govuk_imds.core.credentials import LongTermKey, MfaSession
from govuk_imds.core.environment import EnvironmentSpec
from govuk_imds.errors import MfaCodeRefused, MfaSessionEnded, SessionRejected, StsUnavailable
from tests.support.sts_emulator import MotoServer, StsProxy, make_iam_user
from tests.support.world import ACCOUNTS


@pytest.fixture
def user(moto: MotoServer, sts: StsProxy) -> Iterator[tuple[LongTermKey, str]]:
    key_id, secret, serial = make_iam_user(moto.url)
    sts.register_mfa_device(serial, access_key_id=key_id)
    yield LongTermKey(key_id, secret), serial
    sts.clear_faults()


def adapter(sts: StsProxy, tmp_path: Path) -> Sts:
    settings = Settings(config_file=tmp_path / "c.toml", runtime=RuntimePaths(tmp_path), aws_config_file=tmp_path,
                        sts_endpoint_url=sts.url, sts_region="eu-west-1")
    return Sts(settings, connect_timeout=1, read_timeout=1)


def spec(serial: str) -> EnvironmentSpec:
    return EnvironmentSpec(name="production", profile="govuk-production",
                           role_arn=f"arn:aws:iam::{ACCOUNTS['production']}:role/govuk-administrators",
                           mfa_serial=serial, source_profile="gds", region="eu-west-1", role_duration_seconds=3600,
                           role_session_name="first.last")


def session(sts: StsProxy, tmp_path: Path, user: tuple[LongTermKey, str]) -> MfaSession:
    key, serial = user
    return get_session_token(sts, tmp_path, key, serial, sts.unused_code(serial))


def get_session_token(sts: StsProxy, tmp_path: Path, key: LongTermKey, serial: str, code: str) -> MfaSession:
    return adapter(sts, tmp_path).get_session_token(
        key, source_profile="gds", mfa_serial=serial, code=code, duration_seconds=3600, region="eu-west-1"
    )


def test_session_and_role_credentials_come_back_typed(sts: StsProxy, tmp_path: Path,
                                                      user: tuple[LongTermKey, str]) -> None:
    mfa = session(sts, tmp_path, user)
    role = adapter(sts, tmp_path).assume_role(mfa, spec(user[1]))
    assert role.account_id == ACCOUNTS["production"]
    assert role.role_arn.endswith(":role/govuk-administrators")
    assert role.expiration.tzinfo is not None
    assert role.secret_access_key not in repr(role)


def test_wrong_code_is_mfa_code_refused(sts: StsProxy, tmp_path: Path, user: tuple[LongTermKey, str]) -> None:
    key, serial = user
    good = sts.unused_code(serial)
    with pytest.raises(MfaCodeRefused, match="wait for the next code"):
        get_session_token(sts, tmp_path, key, serial, f"{(int(good) + 1) % 10**6:06d}")


@pytest.mark.parametrize("kind", ["throttle", "500", "503", "garbage", "drop", "slow"])
def test_transient_faults_are_sts_unavailable(sts: StsProxy, tmp_path: Path, user: tuple[LongTermKey, str],
                                              kind: str) -> None:
    mfa = session(sts, tmp_path, user)
    sts.fail_next("AssumeRole", kind, delay=1.5)  # type: ignore[arg-type]
    before = sts.count("AssumeRole")
    with pytest.raises(StsUnavailable):
        adapter(sts, tmp_path).assume_role(mfa, spec(user[1]))
    assert sts.count("AssumeRole") == before + 1  # botocore did not retry behind our back


@pytest.mark.parametrize("kind", ["expired_token", "access_denied"])
def test_refusals_are_session_rejected(sts: StsProxy, tmp_path: Path, user: tuple[LongTermKey, str],
                                       kind: str) -> None:
    mfa = session(sts, tmp_path, user)
    sts.fail_next("AssumeRole", kind)  # type: ignore[arg-type]
    with pytest.raises(SessionRejected, match="STS refused AssumeRole"):
        adapter(sts, tmp_path).assume_role(mfa, spec(user[1]))


def test_expired_or_invalid_session_credentials_say_the_mfa_session_itself_is_done(
        sts: StsProxy, tmp_path: Path, user: tuple[LongTermKey, str]) -> None:
    mfa = session(sts, tmp_path, user)
    sts.fail_next("AssumeRole", "expired_token")
    with pytest.raises(MfaSessionEnded, match="ExpiredToken"):
        adapter(sts, tmp_path).assume_role(mfa, spec(user[1]))
    sts.fail_next("AssumeRole", "access_denied")
    with pytest.raises(SessionRejected) as refused:
        adapter(sts, tmp_path).assume_role(mfa, spec(user[1]))
    assert not isinstance(refused.value, MfaSessionEnded)  # the role said no; the MFA session is still good


@pytest.mark.parametrize("offset", [0.0, 35 * 60.0, -2 * 3600.0])
def test_role_credentials_carry_the_time_sts_stated(sts: StsProxy, tmp_path: Path, user: tuple[LongTermKey, str],
                                                    offset: float) -> None:
    mfa = session(sts, tmp_path, user)
    sts.clock_offset = offset
    try:
        role = adapter(sts, tmp_path).assume_role(mfa, spec(user[1]))
    finally:
        sts.clock_offset = 0.0
    assert role.server_time is not None
    expected = datetime.now(UTC) + timedelta(seconds=offset)
    assert abs(role.server_time - expected) < timedelta(seconds=3)
    assert abs(role.expiration - (expected + timedelta(hours=1))) < timedelta(seconds=3)
