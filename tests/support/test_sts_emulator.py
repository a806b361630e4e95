"""Tests for the STS emulator: a real moto_server behind the MFA-checking proxy, over HTTP."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pyotp
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from .sts_emulator import (
    MSG_INVALID_CODE,
    MSG_MISSING_MFA,
    MSG_REUSED_CODE,
    MSG_UNKNOWN_SERIAL,
    FaultKind,
    MotoServer,
    MotoServerNotFoundError,
    StsProxy,
    find_moto_server,
    make_iam_user,
    start_moto,
)

# Note: botocore's retries "max_attempts" counts retries *after* the first try, so
# {"max_attempts": 1} would retry once; "total_max_attempts": 1 means one try only.
FAST = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1)
ROLE_ARN = "arn:aws:iam::123456789012:role/govuk-test-role"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with start_moto() as server:
        iam: Any = boto3.client(
            "iam",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        iam.create_role(RoleName="govuk-test-role", AssumeRolePolicyDocument="{}")
        yield server


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[StsProxy]:
    with StsProxy(moto.url) as p:
        yield p


def sts(
    url: str, key: str, secret: str, token: str | None = None, cfg: Config = FAST
) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=url,
        region_name="eu-west-2",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=cfg,
    )


def wrong_code(totp: pyotp.TOTP) -> str:
    """A six-digit code that is not valid at any step the proxy accepts."""
    valid = {totp.at(time.time(), counter_offset=o) for o in (-2, -1, 0, 1, 2)}
    return next(
        c for c in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if c not in valid
    )


def denied(err: ClientError) -> tuple[int, str, str]:
    response: Any = err.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def session(proxy: StsProxy, moto: MotoServer) -> dict[str, str]:
    """Long-term key -> MFA'd session credentials, via the proxy."""
    key, secret, serial = make_iam_user(moto.url)
    totp = proxy.register_mfa_device(serial, access_key_id=key)
    creds: dict[str, str] = sts(proxy.url, key, secret).get_session_token(
        SerialNumber=serial, TokenCode=totp.now()
    )["Credentials"]
    return creds


def assume(
    proxy: StsProxy, creds: dict[str, str], cfg: Config = FAST
) -> dict[str, str]:
    client = sts(
        proxy.url,
        creds["AccessKeyId"],
        creds["SecretAccessKey"],
        creds["SessionToken"],
        cfg,
    )
    result: dict[str, str] = client.assume_role(
        RoleArn=ROLE_ARN, RoleSessionName="first.last"
    )["Credentials"]
    return result


# --------------------------------------------------------------------------- MFA


def test_valid_code_gets_a_session(proxy: StsProxy, moto: MotoServer) -> None:
    creds = session(proxy, moto)
    assert creds["AccessKeyId"] and creds["SessionToken"]
    assert [c.action for c in proxy.calls] == ["GetSessionToken"]
    assert proxy.calls[0].host == f"127.0.0.1:{proxy.port}"


def test_reused_code_is_refused(proxy: StsProxy, moto: MotoServer) -> None:
    key, secret, serial = make_iam_user(moto.url)
    code = proxy.register_mfa_device(serial, access_key_id=key).now()
    client = sts(proxy.url, key, secret)
    client.get_session_token(SerialNumber=serial, TokenCode=code)
    with pytest.raises(ClientError) as exc:
        client.get_session_token(SerialNumber=serial, TokenCode=code)
    assert denied(exc.value) == (403, "AccessDenied", MSG_REUSED_CODE)
    assert (
        MSG_REUSED_CODE
        == "MultiFactorAuthentication failed with invalid MFA one time pass code."
    )
    # a fresh code from the next step still works without waiting
    client.get_session_token(SerialNumber=serial, TokenCode=proxy.unused_code(serial))


def test_wrong_code_is_refused_and_not_consumed(
    proxy: StsProxy, moto: MotoServer
) -> None:
    key, secret, serial = make_iam_user(moto.url)
    totp = proxy.register_mfa_device(serial, access_key_id=key)
    client = sts(proxy.url, key, secret)
    with pytest.raises(ClientError) as exc:
        client.get_session_token(SerialNumber=serial, TokenCode=wrong_code(totp))
    assert denied(exc.value) == (403, "AccessDenied", MSG_INVALID_CODE)
    client.get_session_token(SerialNumber=serial, TokenCode=totp.now())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, MSG_MISSING_MFA),
        ({"SerialNumber": "SERIAL"}, MSG_MISSING_MFA),
        (
            {
                "SerialNumber": "arn:aws:iam::123456789012:mfa/nobody",
                "TokenCode": "123456",
            },
            MSG_UNKNOWN_SERIAL,
        ),
    ],
    ids=["no-mfa", "serial-without-code", "unknown-serial"],
)
def test_missing_or_unknown_mfa_is_refused(
    proxy: StsProxy, moto: MotoServer, params: dict[str, str], message: str
) -> None:
    key, secret, serial = make_iam_user(moto.url)
    proxy.register_mfa_device(serial, access_key_id=key)
    kwargs = {k: serial if v == "SERIAL" else v for k, v in params.items()}
    with pytest.raises(ClientError) as exc:
        sts(proxy.url, key, secret).get_session_token(**kwargs)
    assert denied(exc.value) == (403, "AccessDenied", message)
    assert proxy.count("GetSessionToken") == 1


def test_serial_of_another_user_is_refused(proxy: StsProxy, moto: MotoServer) -> None:
    key, secret, _ = make_iam_user(moto.url)
    other_key, _, other_serial = make_iam_user(moto.url)
    totp = proxy.register_mfa_device(other_serial, access_key_id=other_key)
    with pytest.raises(ClientError) as exc:
        sts(proxy.url, key, secret).get_session_token(
            SerialNumber=other_serial, TokenCode=totp.now()
        )
    assert denied(exc.value) == (403, "AccessDenied", MSG_UNKNOWN_SERIAL)


def test_query_string_action_is_checked_too(proxy: StsProxy) -> None:
    serial = "arn:aws:iam::123456789012:mfa/query.user"
    totp = proxy.register_mfa_device(serial)
    query = urllib.parse.urlencode(
        {
            "Action": "GetSessionToken",
            "Version": "2011-06-15",
            "SerialNumber": serial,
            "TokenCode": wrong_code(totp),
        }
    )
    url = f"{proxy.url}/?{query}"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url, timeout=5)
    body = exc.value.read().decode()
    assert exc.value.code == 403
    assert body.startswith(
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    )
    assert "<Type>Sender</Type><Code>AccessDenied</Code>" in body
    assert f"<Message>{MSG_INVALID_CODE}</Message>" in body
    assert "<RequestId>" in body


# --------------------------------------------------------------------------- forwarding


def test_assume_role_is_forwarded_and_counted(
    proxy: StsProxy, moto: MotoServer
) -> None:
    creds = session(proxy, moto)
    first = assume(proxy, creds)
    assume(proxy, creds)
    assert proxy.count("AssumeRole") == 2
    caller = sts(
        proxy.url, first["AccessKeyId"], first["SecretAccessKey"], first["SessionToken"]
    )
    arn = caller.get_caller_identity()["Arn"]
    assert arn == "arn:aws:sts::123456789012:assumed-role/govuk-test-role/first.last"
    assert [c.action for c in proxy.calls] == [
        "GetSessionToken",
        "AssumeRole",
        "AssumeRole",
        "GetCallerIdentity",
    ]
    assert proxy.calls[1].access_key_id == creds["AccessKeyId"]


def test_non_sts_requests_pass_through(proxy: StsProxy) -> None:
    iam: Any = boto3.client(
        "iam",
        endpoint_url=proxy.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=FAST,
    )
    names = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert "govuk-test-role" in names
    assert proxy.count("ListRoles") == 1


# --------------------------------------------------------------------------- faults

FAULTS: list[tuple[FaultKind, type[Exception], str | None, int | None]] = [
    ("throttle", ClientError, "Throttling", 400),
    ("500", ClientError, "InternalFailure", 500),
    ("503", ClientError, "ServiceUnavailable", 503),
    ("expired_token", ClientError, "ExpiredToken", 403),
    ("access_denied", ClientError, "AccessDenied", 403),
    ("garbage", ResponseParserError, None, None),
    ("drop", ConnectionClosedError, None, None),
    ("slow", ReadTimeoutError, None, None),
]


@pytest.mark.parametrize(
    ("kind", "error", "code", "status"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_fault_is_seen_by_boto3_and_proxy_survives(
    proxy: StsProxy,
    moto: MotoServer,
    kind: FaultKind,
    error: type[Exception],
    code: str | None,
    status: int | None,
) -> None:
    creds = session(proxy, moto)
    proxy.fail_next("AssumeRole", kind, delay=1.5)
    with pytest.raises(error) as exc:
        assume(proxy, creds)
    if isinstance(exc.value, ClientError):
        assert denied(exc.value)[:2] == (status, code)
    assert assume(proxy, creds)[
        "AccessKeyId"
    ]  # the proxy is still up and back to normal
    assert proxy.count("AssumeRole") == 2


def test_fault_count_and_action_filter(proxy: StsProxy, moto: MotoServer) -> None:
    creds = session(proxy, moto)
    proxy.fail_next("AssumeRole", "throttle", count=2)
    client = sts(
        proxy.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    client.get_caller_identity()  # other actions are untouched
    for _ in range(2):
        with pytest.raises(ClientError):
            assume(proxy, creds)
    assume(proxy, creds)
    assert proxy.count("AssumeRole") == 3


def test_slow_fault_answers_after_the_delay(proxy: StsProxy, moto: MotoServer) -> None:
    creds = session(proxy, moto)
    proxy.fail_next("AssumeRole", "slow", delay=0.5)
    start = time.monotonic()
    assume(proxy, creds, Config(retries={"total_max_attempts": 1}, read_timeout=5))
    assert time.monotonic() - start >= 0.5


def test_fail_next_rejects_unknown_kind(proxy: StsProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        proxy.fail_next("AssumeRole", "explode")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- canary


def test_canary_credentials_are_marked_and_still_work(
    proxy: StsProxy, moto: MotoServer
) -> None:
    proxy.canary = "CANARY"
    creds = session(proxy, moto)
    assert "CANARY" in creds["AccessKeyId"]
    assert "CANARY" in creds["SecretAccessKey"]
    assert "CANARY" in creds["SessionToken"]
    role = assume(proxy, creds)  # moto only knows the real key: the proxy maps it back
    assert all(
        "CANARY" in role[f] for f in ("AccessKeyId", "SecretAccessKey", "SessionToken")
    )
    caller = sts(
        proxy.url, role["AccessKeyId"], role["SecretAccessKey"], role["SessionToken"]
    )
    assert caller.get_caller_identity()["Arn"].endswith(
        ":assumed-role/govuk-test-role/first.last"
    )


# --------------------------------------------------------------------------- lifecycle


def test_stopped_proxy_refuses_connections(moto: MotoServer) -> None:
    proxy = StsProxy(moto.url)
    client = sts(proxy.url, "AKIAEXAMPLE", "secret")
    client.get_caller_identity()  # leaves a pooled keep-alive connection behind
    proxy.stop()
    proxy.stop()  # idempotent
    with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
        client.get_caller_identity()


def test_missing_moto_server_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/bin/python")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MotoServerNotFoundError, match=r"moto\[server\]"):
        find_moto_server()
