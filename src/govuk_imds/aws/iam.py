"""AWS IAM (access keys) and STS GetCallerIdentity through boto3, for importing and rotating long-term keys.

Clients come from ``clients.ClientFactory`` like every other client (explicit credentials, region and endpoint from
``endpoints``, one attempt: a retried CreateAccessKey could create a second key). Every botocore error is mapped to
our own tree and chained. Secrets are never logged or put in a message; key ids appear redacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore import xform_name
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)
from botocore.parsers import ResponseParserError

from ..config.settings import Settings
from ..core.credentials import LongTermKey, MfaSession, redact
from ..errors import (
    AccessKeyLimit,
    IamError,
    IamUnavailable,
    InvalidInput,
    LongTermKeyRejected,
    StsError,
    StsUnavailable,
)
from .clients import ClientFactory, Credentials
from .endpoints import IAM_REGION, iam_url, sts_region, sts_url
from .errors import KEY_PROBLEMS, THROTTLING, describe, error_code, http_status, is_transient
from .sts import Sts

ROTATION_SESSION_SECONDS = 900  # the shortest MFA session AWS grants: rotation takes seconds

_USER_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):user/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)")
_ROOT_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:root")


@dataclass(frozen=True)
class Identity:
    """What GetCallerIdentity says about a key: whose it is."""

    arn: str
    account: str
    user_name: str | None  # None unless the ARN is an IAM user's


@dataclass(frozen=True)
class AccessKeyInfo:
    """One of a user's access keys as IAM lists it (never the secret)."""

    access_key_id: str = field(repr=False)
    status: str
    created: datetime | None

    def __repr__(self) -> str:
        return f"AccessKeyInfo({redact(self.access_key_id)}, {self.status})"


class Iam:
    """IAM access-key calls and GetCallerIdentity for one configured pair of endpoints."""

    def __init__(self, settings: Settings, *, connect_timeout: float = 3.0, read_timeout: float = 10.0) -> None:
        self._settings = settings
        self._clients = ClientFactory(connect_timeout=connect_timeout, read_timeout=read_timeout, cache=True)

    def _client(self, service: str, credentials: Credentials) -> Any:
        if service == "iam":
            return self._clients.client("iam", IAM_REGION, iam_url(self._settings), credentials)
        return self._clients.client("sts", sts_region(self._settings), sts_url(self._settings), credentials)

    # -- STS ------------------------------------------------------------------------------------------------------

    def caller_identity(self, credentials: Credentials) -> Identity:
        """GetCallerIdentity: needs no permission, so it proves a key works and says whose it is."""
        who = redact(credentials.access_key_id)
        try:
            answer = self._client("sts", credentials).get_caller_identity()
            arn, account = str(answer["Arn"]), str(answer["Account"])
        except ClientError as exc:
            if error_code(exc) in KEY_PROBLEMS:
                raise LongTermKeyRejected(f"AWS does not accept the key {who} ({error_code(exc)})") from exc
            if is_transient(exc):
                raise StsUnavailable(f"GetCallerIdentity failed ({describe(exc)}); try again shortly") from exc
            raise StsError(f"AWS refused GetCallerIdentity for the key {who} ({describe(exc)})") from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise StsUnavailable(
                f"STS could not be reached or answered nonsense ({type(exc).__name__}); try again shortly"
            ) from exc
        except (KeyError, TypeError) as exc:
            raise StsUnavailable("STS sent an answer that could not be read; try again shortly") from exc
        user = _USER_ARN.fullmatch(arn)
        return Identity(arn, account, user.group(2) if user else None)

    def get_session_token(self, key: LongTermKey, source_profile: str, mfa_serial: str, code: str) -> MfaSession:
        """A short MFA session for IAM calls, through ``Sts`` so MFA refusals read the same as at unlock."""
        return Sts(self._settings).get_session_token(
            key,
            source_profile=source_profile,
            mfa_serial=mfa_serial,
            code=code,
            duration_seconds=ROTATION_SESSION_SECONDS,
        )

    # -- IAM ------------------------------------------------------------------------------------------------------

    def list_access_keys(self, credentials: Credentials, user_name: str) -> list[AccessKeyInfo]:
        answer = self._call("ListAccessKeys", credentials, UserName=user_name)
        try:
            return [
                AccessKeyInfo(str(item["AccessKeyId"]), str(item.get("Status", "?")), _aware(item.get("CreateDate")))
                for item in answer["AccessKeyMetadata"]
            ]
        except (KeyError, TypeError) as exc:
            raise IamUnavailable("IAM sent an answer that could not be read", maybe_done=False) from exc

    def create_access_key(self, credentials: Credentials, user_name: str) -> LongTermKey:
        answer = self._call("CreateAccessKey", credentials, UserName=user_name)
        try:
            created = answer["AccessKey"]
            return LongTermKey.parse(str(created["AccessKeyId"]), str(created["SecretAccessKey"]))
        except (KeyError, TypeError, InvalidInput) as exc:
            raise IamUnavailable(
                "IAM answered CreateAccessKey with something that is not a key pair", maybe_done=True
            ) from exc

    def list_mfa_devices(self, credentials: Credentials, user_name: str) -> list[str]:
        """The serial numbers (ARNs) of the user's MFA devices. Users may list their own without MFA: it is how
        they set one up."""
        answer = self._call("ListMFADevices", credentials, UserName=user_name)
        try:
            return [str(device["SerialNumber"]) for device in answer["MFADevices"]]
        except (KeyError, TypeError) as exc:
            raise IamUnavailable("IAM sent an answer that could not be read", maybe_done=False) from exc

    def delete_access_key(self, credentials: Credentials, user_name: str, access_key_id: str) -> None:
        self._call("DeleteAccessKey", credentials, UserName=user_name, AccessKeyId=access_key_id)

    def _call(self, action: str, credentials: Credentials, **parameters: str) -> dict[str, Any]:
        method = xform_name(action)  # botocore's own: ListMFADevices -> list_mfa_devices
        try:
            answer: dict[str, Any] = getattr(self._client("iam", credentials), method)(**parameters)
        except ClientError as exc:
            code = error_code(exc)
            if code == "LimitExceeded":
                raise AccessKeyLimit(f"AWS refused {action}: the user already has two access keys") from exc
            if code in KEY_PROBLEMS:
                raise LongTermKeyRejected(f"AWS does not accept the credentials used for {action} ({code})") from exc
            if is_transient(exc):
                # Throttling is refused before anything runs; a 5xx may come after the work was done.
                raise IamUnavailable(
                    f"{action} failed ({describe(exc)})", maybe_done=code not in THROTTLING or http_status(exc) >= 500
                ) from exc
            raise IamError(f"AWS refused {action} ({describe(exc)})") from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise IamUnavailable(
                f"IAM could not be reached for {action} ({type(exc).__name__})", maybe_done=False
            ) from exc
        except (BotoCoreError, ResponseParserError) as exc:
            # The request went out and its answer was lost or unreadable: it may have been carried out.
            raise IamUnavailable(f"{action} got no usable answer ({type(exc).__name__})", maybe_done=True) from exc
        return answer


def verify_key(settings: Settings, key: LongTermKey) -> Identity:
    """Prove a long-term key works (GetCallerIdentity) and that it is an IAM user's, not the root user's."""
    identity = Iam(settings).caller_identity(key)
    return check_user_key(identity, key)


def check_user_key(identity: Identity, key: LongTermKey) -> Identity:
    if identity.user_name is not None:
        return identity
    if _ROOT_ARN.fullmatch(identity.arn):
        raise InvalidInput(
            f"the key {key!r} belongs to the account's root user; store an IAM user's key (never keep root keys)"
        )
    raise LongTermKeyRejected(f"AWS does not know the key {key!r} as an IAM user's key (it answered {identity.arn})")


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
