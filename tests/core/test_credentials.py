"""Key pairs and temporary credentials: shape checks, secret-free reprs, the control-socket wire form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from govuk_imds.core.credentials import LongTermKey, MfaSession, RoleCredentials, TemporaryCredentials, redact
from govuk_imds.errors import GovukImdsError, InvalidInput

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TEMP_KEY_ID = "ASIAQWERTYUIOPASWXYZ"
TEMP_SECRET = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0K0+/"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjE" + "Gx2h3bGlmZXRpbWVz" * 20 + "=="
EXPIRY = datetime(2026, 11, 25, 16, 4, 5, tzinfo=UTC)


def test_parse_accepts_a_long_term_key_and_strips_whitespace() -> None:
    key = LongTermKey.parse(f"  {KEY_ID}\n", f"\t{SECRET}\r\n")
    assert key.access_key_id == KEY_ID
    assert key.secret_access_key == SECRET


def test_from_json_accepts_a_flat_document() -> None:
    key = LongTermKey.from_json(json.loads(json.dumps({"AccessKeyId": KEY_ID, "SecretAccessKey": SECRET})))
    assert key == LongTermKey(KEY_ID, SECRET)


def test_from_json_accepts_what_aws_iam_create_access_key_prints() -> None:
    printed = json.dumps(
        {
            "AccessKey": {
                "UserName": "first.last@digital.cabinet-office.gov.uk",
                "AccessKeyId": KEY_ID,
                "Status": "Active",
                "SecretAccessKey": SECRET,
                "CreateDate": "2026-11-25T16:04:05+00:00",
            }
        },
        indent=4,
    )
    assert LongTermKey.from_json(json.loads(printed)) == LongTermKey(KEY_ID, SECRET)


@pytest.mark.parametrize(
    ("key_id", "secret"),
    [
        (TEMP_KEY_ID, SECRET),  # a temporary key id
        (KEY_ID[:-1], SECRET),  # 19 characters
        (KEY_ID + "A", SECRET),  # 21 characters
        (KEY_ID.lower(), SECRET),
        ("AKIA-OSFODNN7EXAMPL", SECRET),
        ("AKIAIOSFODNN7EXAMPL\u00c9", SECRET),
        ("AKIAIOSFODNN7EX MPLE", SECRET),
        ("AROAIOSFODNN7EXAMPLE", SECRET),  # a role id, not a key
        ("", SECRET),
        (KEY_ID, SECRET[:-1]),  # 39 characters
        (KEY_ID, SECRET + "A"),  # 41 characters
        (KEY_ID, SECRET[:-1] + "="),
        (KEY_ID, SECRET[:-1] + "-"),
        (KEY_ID, SECRET[:20] + " " + SECRET[21:]),
        (KEY_ID, SECRET[:-1] + "\u00e9"),
        (KEY_ID, ""),
    ],
)
def test_parse_refuses_malformed_keys(key_id: str, secret: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        LongTermKey.parse(key_id, secret)
    message = str(caught.value)
    assert isinstance(caught.value, GovukImdsError)
    assert "\n" not in message
    # An error message must never echo what was typed: it could be the real secret.
    assert SECRET[:20] not in message
    assert secret == "" or secret not in message


def test_temporary_key_id_gets_its_own_explanation() -> None:
    with pytest.raises(InvalidInput, match="temporary"):
        LongTermKey.parse(TEMP_KEY_ID, SECRET)


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        "AKIA",
        42,
        {},
        {"AccessKeyId": KEY_ID},
        {"SecretAccessKey": SECRET},
        {"AccessKeyId": KEY_ID, "SecretAccessKey": 5},
        {"AccessKeyId": None, "SecretAccessKey": SECRET},
        {"AccessKey": "not an object"},
        {"AccessKey": {"AccessKeyId": KEY_ID}},
        {"AccessKey": {"AccessKeyId": TEMP_KEY_ID, "SecretAccessKey": SECRET}},
    ],
)
def test_from_json_refuses_malformed_documents(document: Any) -> None:
    with pytest.raises(InvalidInput):
        LongTermKey.from_json(document)


def _assert_nothing_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


def test_long_term_key_repr_shows_only_the_last_four_characters() -> None:
    key = LongTermKey(KEY_ID, SECRET)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"gds": key})):
        _assert_nothing_secret(text, SECRET, KEY_ID, KEY_ID[:-4], SECRET[-10:])
        assert "MPLE" in text


@pytest.mark.parametrize("kind", [MfaSession, RoleCredentials])
def test_temporary_credentials_repr_hides_secret_token_and_key_id(kind: type[TemporaryCredentials]) -> None:
    if kind is RoleCredentials:
        credentials: TemporaryCredentials = RoleCredentials(
            TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, EXPIRY, "410987654321", "arn:aws:iam::410987654321:role/x"
        )
    else:
        credentials = MfaSession(TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, EXPIRY)
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        _assert_nothing_secret(text, TEMP_SECRET, SESSION_TOKEN, SESSION_TOKEN[:24], TEMP_KEY_ID, TEMP_KEY_ID[:-4])
        assert "WXYZ" in text
        assert kind.__name__ in text
        assert "2026-11-25T16:04:05Z" in text


@pytest.mark.parametrize(("key_id", "shown"), [(KEY_ID, "…MPLE"), ("ABCDE", "…BCDE"), ("ABCD", "…"), ("", "…")])
def test_redact_keeps_only_the_last_four(key_id: str, shown: str) -> None:
    assert redact(key_id) == shown


def test_mfa_session_wire_round_trip_through_json() -> None:
    session = MfaSession(TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, EXPIRY)
    wire = json.loads(json.dumps(session.to_wire()))
    assert wire == {
        "AccessKeyId": TEMP_KEY_ID,
        "SecretAccessKey": TEMP_SECRET,
        "SessionToken": SESSION_TOKEN,
        "Expiration": "2026-11-25T16:04:05Z",
    }
    back = MfaSession.from_wire(wire)
    assert type(back) is MfaSession
    assert back == session
    assert back.expiration.utcoffset() == timedelta(0)


def test_from_wire_converts_other_zones_to_utc() -> None:
    wire = MfaSession(TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, EXPIRY).to_wire()
    back = MfaSession.from_wire({**wire, "Expiration": "2026-11-25T17:04:05+01:00"})
    assert back.expiration == EXPIRY
    assert back.expiration.tzinfo is not None
    assert back.expiration.utcoffset() == timedelta(0)


def test_to_wire_writes_utc_with_z_for_any_zone() -> None:
    local = EXPIRY.astimezone(timezone(timedelta(hours=-5)))
    assert MfaSession(TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, local).to_wire()["Expiration"] == "2026-11-25T16:04:05Z"


def _wire(**change: Any) -> dict[str, Any]:
    return {**MfaSession(TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, EXPIRY).to_wire(), **change}


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        "session",
        {},
        {key: value for key, value in _wire().items() if key != "SessionToken"},
        {key: value for key, value in _wire().items() if key != "Expiration"},
        _wire(Expiration="2026-11-25T16:04:05"),  # no zone
        _wire(Expiration="tomorrow"),
        _wire(Expiration=""),
    ],
)
def test_from_wire_refuses_malformed_sessions(document: Any) -> None:
    with pytest.raises(InvalidInput):
        MfaSession.from_wire(document)


@pytest.mark.parametrize("change", [{"AccessKeyId": None}, {"SecretAccessKey": 5}, {"SessionToken": []}])
def test_from_wire_refuses_non_string_fields(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        MfaSession.from_wire(_wire(**change))


def test_credentials_are_frozen() -> None:
    session = MfaSession(TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, EXPIRY)
    with pytest.raises(AttributeError):
        session.secret_access_key = "x"  # type: ignore[misc]
    key = LongTermKey(KEY_ID, SECRET)
    with pytest.raises(AttributeError):
        key.access_key_id = "x"  # type: ignore[misc]


def test_an_expiry_in_another_zone_is_held_in_utc_as_the_same_moment() -> None:
    # What botocore hands back: an aware time in the machine's zone (dateutil's tzlocal in real life).
    london_summer = timezone(timedelta(hours=1))
    credentials = RoleCredentials(TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, EXPIRY.astimezone(london_summer))
    assert credentials.expiration.tzinfo is UTC
    assert credentials.expiration == EXPIRY


def test_a_naive_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MfaSession(TEMP_KEY_ID, TEMP_SECRET, SESSION_TOKEN, EXPIRY.replace(tzinfo=None))
