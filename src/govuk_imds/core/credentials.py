"""Key pairs and temporary credentials as frozen values.

Secret fields are ``repr=False`` so that a stray ``print`` or log line shows only a redacted key id. This module
must never import an I/O library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from ..errors import InvalidInput
from .clock import parse_rfc3339, rfc3339

LONG_TERM_KEY_ID = re.compile(r"AKIA[A-Z0-9]{16}")
SECRET_KEY = re.compile(r"[A-Za-z0-9/+]{40}")


def redact(key_id: str) -> str:
    """Show only the last four characters of a key id."""
    return f"…{key_id[-4:]}" if len(key_id) > 4 else "…"


@dataclass(frozen=True)
class LongTermKey:
    """The central IAM user's access key pair, as kept in the OS keyring."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)

    def __repr__(self) -> str:
        return f"LongTermKey({redact(self.access_key_id)})"

    @classmethod
    def parse(cls, access_key_id: str, secret_access_key: str) -> LongTermKey:
        """Validate the shape of a key pair before anything stores or sends it."""
        key_id, secret = access_key_id.strip(), secret_access_key.strip()
        if key_id.startswith("ASIA"):
            raise InvalidInput("that is a temporary key id (ASIA...); store the IAM user's long-term key (AKIA...)")
        if not LONG_TERM_KEY_ID.fullmatch(key_id):
            raise InvalidInput("the access key id must be 20 characters: AKIA followed by 16 capitals or digits")
        if not SECRET_KEY.fullmatch(secret):
            raise InvalidInput("the secret access key must be 40 characters of letters, digits, '/' or '+'")
        return cls(key_id, secret)

    @classmethod
    def from_json(cls, document: Any) -> LongTermKey:
        """Accept ``{"AccessKeyId", "SecretAccessKey"}`` or what ``aws iam create-access-key`` prints."""
        if isinstance(document, dict) and isinstance(document.get("AccessKey"), dict):
            document = document["AccessKey"]
        if not isinstance(document, dict):
            raise InvalidInput('expected a JSON object with "AccessKeyId" and "SecretAccessKey"')
        key_id, secret = document.get("AccessKeyId"), document.get("SecretAccessKey")
        if not isinstance(key_id, str) or not isinstance(secret, str):
            raise InvalidInput('expected a JSON object with "AccessKeyId" and "SecretAccessKey" strings')
        return cls.parse(key_id, secret)


@dataclass(frozen=True)
class TemporaryCredentials:
    """Credentials with a session token and an expiry: an MFA session or a role's credentials."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    def __post_init__(self) -> None:
        # botocore hands back expiries in dateutil's tzlocal, whose utcoffset() costs several microseconds and
        # runs on every comparison; the request path compares expiries on every request. Held in UTC, a
        # comparison is a plain subtraction. A naive time is refused: its meaning would depend on the machine.
        if self.expiration.tzinfo is None:
            raise ValueError("expiration must be timezone-aware")
        if self.expiration.tzinfo is not UTC:
            object.__setattr__(self, "expiration", self.expiration.astimezone(UTC))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.access_key_id)}, expires {rfc3339(self.expiration)})"

    def to_wire(self) -> dict[str, str]:
        """The form sent over the control socket (never over TCP, never to disk)."""
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": rfc3339(self.expiration),
        }

    @classmethod
    def from_wire(cls, document: Any) -> Self:
        fields = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
        try:
            values = [document[name] for name in fields]
            if not all(isinstance(value, str) and value for value in values):
                raise TypeError("every field must be a non-empty string")
            return cls(values[0], values[1], values[2], parse_rfc3339(values[3]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("malformed session credentials") from exc


@dataclass(frozen=True, repr=False)
class MfaSession(TemporaryCredentials):
    """What GetSessionToken returns for one MFA code."""


@dataclass(frozen=True, repr=False)
class RoleCredentials(TemporaryCredentials):
    """What AssumeRole returns: the only credentials ever served to clients."""

    account_id: str = ""
    role_arn: str = ""
    #: STS's clock when it issued them (its ``Date`` header), from which the daemon learns the clock offset.
    server_time: datetime | None = field(default=None, compare=False)
