"""The container credential wire format, as every AWS SDK parses it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from govuk_imds.core.credentials import RoleCredentials
from govuk_imds.core.ecs_protocol import CONTENT_TYPE, credentials_body, error_body

REQUIRED = ("AccessKeyId", "SecretAccessKey", "Token", "Expiration")
RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _credentials(
    expiration: datetime, account_id: str = "012345678901", role_arn: str | None = None
) -> RoleCredentials:
    return RoleCredentials(
        "ASIAQWERTYUIOPASWXYZ",
        "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0K0+/",
        "IQoJb3JpZ2luX2VjEGx2h3bGlmZXRpbWVz" * 10,
        expiration,
        account_id,
        role_arn if role_arn is not None else f"arn:aws:iam::{account_id}:role/govuk-administrators",
    )


def test_content_type_is_plain_json() -> None:
    assert CONTENT_TYPE == "application/json"


def test_success_body_has_every_field_the_sdks_need() -> None:
    credentials = _credentials(datetime(2026, 11, 25, 16, 4, 5, tzinfo=UTC))
    body = json.loads(credentials_body(credentials))
    assert body == {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "Token": credentials.session_token,
        "Expiration": "2026-11-25T16:04:05Z",
        "AccountId": "012345678901",
        "RoleArn": "arn:aws:iam::012345678901:role/govuk-administrators",
    }
    assert all(isinstance(body[field], str) and body[field] for field in REQUIRED)
    assert isinstance(body["AccountId"], str)  # a number breaks the Go SDK; leading zeros must survive
    assert "Code" not in body  # the Rust SDK rejects anything but "Success"


@pytest.mark.parametrize(
    "expiration",
    [
        datetime(2026, 11, 25, 16, 4, 5, 999_999, tzinfo=UTC),
        datetime(2026, 11, 25, 17, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 11, 25, 11, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_expiration_is_utc_whole_seconds_ending_in_z(expiration: datetime) -> None:
    value = json.loads(credentials_body(_credentials(expiration)))["Expiration"]
    assert RFC3339_Z.fullmatch(value)
    assert value == "2026-11-25T16:04:05Z"
    assert "+00:00" not in value


def test_body_is_compact_utf8_json_bytes() -> None:
    body = credentials_body(_credentials(datetime(2026, 11, 25, 16, 4, 5, tzinfo=UTC)))
    assert isinstance(body, bytes)
    assert json.loads(body.decode("utf-8"))["AccessKeyId"].startswith("ASIA")


def test_optional_fields_are_left_out_rather_than_empty() -> None:
    body = json.loads(credentials_body(_credentials(datetime(2026, 11, 25, tzinfo=UTC), account_id="", role_arn="")))
    assert set(body) == set(REQUIRED)


def test_error_body_shape() -> None:
    raw = error_body("EnvironmentLocked", "environment 'production' is locked; run `govuk-imds unlock production`")
    assert isinstance(raw, bytes)
    assert json.loads(raw) == {
        "code": "EnvironmentLocked",
        "message": "environment 'production' is locked; run `govuk-imds unlock production`",
        "Code": "EnvironmentLocked",
        "Message": "environment 'production' is locked; run `govuk-imds unlock production`",
    }


def test_error_body_escapes_hostile_text() -> None:
    message = 'quote " backslash \\ newline \n and </script>'
    assert json.loads(error_body("X", message)) == {"code": "X", "message": message, "Code": "X", "Message": message}
