"""The federation emulator enforces AWS's rules, so a console test that passes against it means something.

Credentials come from moto through the STS proxy, whose ledger the emulator reads; requests are plain HTTP, the way
a browser or a tool would send them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from .federation_emulator import FederationEmulator
from .sts_emulator import MotoServer, StsProxy, make_iam_user

ROLE_ARN = "arn:aws:iam::410987654321:role/govuk-administrators"
CONSOLE = "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signin(sts: StsProxy, clock: Clock) -> Iterator[FederationEmulator]:
    with FederationEmulator(sts, now=clock) as emulator:
        yield emulator


def sts_client(sts: StsProxy, credentials: dict[str, str]) -> Any:
    return boto3.client("sts", endpoint_url=sts.url, region_name="eu-west-1",
                        aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials.get("SessionToken"))


@pytest.fixture
def mfa_session(moto: MotoServer, sts: StsProxy) -> dict[str, str]:
    key_id, secret, serial = make_iam_user(moto.url)
    sts.register_mfa_device(serial, access_key_id=key_id)
    answer = sts_client(sts, {"AccessKeyId": key_id, "SecretAccessKey": secret}).get_session_token(
        SerialNumber=serial, TokenCode=sts.unused_code(serial))
    return dict(answer["Credentials"])


def assume(sts: StsProxy, mfa_session: dict[str, str], **extra: Any) -> dict[str, str]:
    answer = sts_client(sts, mfa_session).assume_role(RoleArn=ROLE_ARN, RoleSessionName="first.last", **extra)
    return dict(answer["Credentials"])


def token_for(signin: FederationEmulator, credentials: dict[str, str], **extra: str) -> tuple[int, dict[str, Any]]:
    session = json.dumps({"sessionId": credentials["AccessKeyId"], "sessionKey": credentials["SecretAccessKey"],
                          "sessionToken": credentials["SessionToken"]})
    query = urlencode({"Action": "getSigninToken", "Session": session, **extra})
    try:
        with urllib.request.urlopen(f"{signin.url}/federation?{query}", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, {"page": refused.read().decode()}


def browser() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def login_url(signin: FederationEmulator, token: str, destination: str = CONSOLE) -> str:
    return f"{signin.url}/federation?" + urlencode(
        {"Action": "login", "Issuer": "test", "Destination": destination, "SigninToken": token})


def test_the_ledger_records_how_each_credential_was_made(sts: StsProxy, mfa_session: dict[str, str]) -> None:
    plain, timed = assume(sts, mfa_session), assume(sts, mfa_session, DurationSeconds=1800)
    session = sts.find_issued(mfa_session["AccessKeyId"], mfa_session["SecretAccessKey"], mfa_session["SessionToken"])
    assert session is not None and (session.action, session.signed_by) == ("GetSessionToken", "long-term")
    first, second = (sts.find_issued(c["AccessKeyId"]) for c in (plain, timed))
    assert first is not None and second is not None
    assert (first.duration_seconds, first.signed_by, first.role_chained) == (None, "GetSessionToken", True)
    assert second.duration_seconds == 1800
    assert first.arn == "arn:aws:sts::410987654321:assumed-role/govuk-administrators/first.last"
    assert sts.find_issued(plain["AccessKeyId"], "wrong secret") is None


def test_a_role_assumed_without_duration_seconds_signs_in_once(
    signin: FederationEmulator, sts: StsProxy, mfa_session: dict[str, str]
) -> None:
    status, answer = token_for(signin, assume(sts, mfa_session))
    assert status == 200
    opener = browser()
    with opener.open(login_url(signin, answer["SigninToken"])) as landed:
        page = landed.read().decode()
    assert "arn:aws:sts::410987654321:assumed-role/govuk-administrators/first.last" in page
    assert signin.logins[-1].issuer == "test"
    with pytest.raises(urllib.error.HTTPError, match="400"):  # spent
        opener.open(login_url(signin, answer["SigninToken"]))


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"SessionDuration": "3600"}, "SessionDuration with role-chained credentials"),
        ({"SessionDuration": "899"}, "SessionDuration out of range"),
        ({"SessionDuration": "43201"}, "SessionDuration out of range"),
        ({"SessionDuration": "an hour"}, "SessionDuration out of range"),
    ],
)
def test_session_duration_rules(
    signin: FederationEmulator, sts: StsProxy, mfa_session: dict[str, str], extra: dict[str, str], reason: str
) -> None:
    status, answer = token_for(signin, assume(sts, mfa_session), **extra)
    assert status == 400
    assert "HTTP Status 400 - Invalid credentials parameter" in answer["page"]
    assert signin.token_requests[-1].reason == reason


def test_duration_seconds_from_temporary_credentials_is_refused_unless_the_rule_is_relaxed(
    signin: FederationEmulator, sts: StsProxy, mfa_session: dict[str, str]
) -> None:
    timed = assume(sts, mfa_session, DurationSeconds=3600)
    assert token_for(signin, timed)[0] == 400
    signin.strict_duration_seconds = False
    assert token_for(signin, timed)[0] == 200


def test_session_credentials_and_expired_ones_are_refused(
    signin: FederationEmulator, sts: StsProxy, mfa_session: dict[str, str], clock: Clock
) -> None:
    assert token_for(signin, mfa_session)[0] == 400
    assert signin.token_requests[-1].reason == "GetSessionToken credentials cannot sign in to the console"
    role = assume(sts, mfa_session)
    clock.now += timedelta(hours=1, seconds=1)
    assert token_for(signin, role)[0] == 400
    assert signin.token_requests[-1].reason == "expired credentials"


def test_a_token_lasts_fifteen_minutes_and_lands_only_on_the_console(
    signin: FederationEmulator, sts: StsProxy, mfa_session: dict[str, str], clock: Clock
) -> None:
    _, old = token_for(signin, assume(sts, mfa_session))
    _, elsewhere = token_for(signin, assume(sts, mfa_session))
    clock.now += timedelta(minutes=15)
    with pytest.raises(urllib.error.HTTPError, match="400"):
        browser().open(login_url(signin, old["SigninToken"]))
    clock.now -= timedelta(minutes=15)
    with pytest.raises(urllib.error.HTTPError, match="400"):
        browser().open(login_url(signin, elsewhere["SigninToken"], "https://evil.example/console.aws.amazon.com"))


def test_still_signed_in_as_another_role_lands_there_unless_signed_out_first(
    signin: FederationEmulator, sts: StsProxy, mfa_session: dict[str, str]
) -> None:
    opener = browser()
    _, first = token_for(signin, assume(sts, mfa_session))
    opener.open(login_url(signin, first["SigninToken"])).read()
    other = sts_client(sts, mfa_session).assume_role(RoleArn="arn:aws:iam::310987654321:role/govuk-administrators",
                                                     RoleSessionName="first.last")["Credentials"]
    _, second = token_for(signin, dict(other))
    page = opener.open(login_url(signin, second["SigninToken"])).read().decode()
    assert "410987654321" in page and "310987654321" not in page
    _, third = token_for(signin, dict(other))
    logout = f"{signin.url}/oauth?" + urlencode({"Action": "logout",
                                                  "redirect_uri": login_url(signin, third["SigninToken"])})
    page = opener.open(logout).read().decode()
    assert "310987654321" in page
    assert signin.events[-2:] == ["logout", "login"]


def test_logout_follows_only_its_own_login(signin: FederationEmulator) -> None:
    away = f"{signin.url}/oauth?" + urlencode({"Action": "logout", "redirect_uri": "https://evil.example/"})
    assert 'id="signed-out"' in browser().open(away).read().decode()


def test_a_refusal_can_be_scripted(signin: FederationEmulator, sts: StsProxy, mfa_session: dict[str, str]) -> None:
    signin.refuse_next(503, "Service Unavailable")
    status, answer = token_for(signin, assume(sts, mfa_session))
    assert status == 503 and "Service Unavailable" in answer["page"]
    assert token_for(signin, assume(sts, mfa_session))[0] == 200
