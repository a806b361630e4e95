"""The container credential wire format, exactly as every AWS SDK accepts it (see docs/ecs-protocol in design).

Success: status 200, JSON with AccessKeyId, SecretAccessKey, Token, Expiration (RFC 3339 with ``Z``), AccountId as a
string, RoleArn. Errors: ``{"code", "message"}`` in the ECS agent's format (repeated as ``Code``/``Message``), with a
message for a person. Pure: no I/O here.
"""

from __future__ import annotations

import json
from datetime import timedelta

from .clock import rfc3339
from .credentials import RoleCredentials
from .skew import NO_OFFSET, as_local

CONTENT_TYPE = "application/json"


def credentials_body(credentials: RoleCredentials, clock_offset: timedelta = NO_OFFSET) -> bytes:
    """``clock_offset`` (AWS's clock minus the local one) moves ``Expiration`` onto the local clock, on which every
    SDK judges expiry."""
    document = {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "Token": credentials.session_token,
        "Expiration": rfc3339(as_local(credentials.expiration, clock_offset)),
    }
    if credentials.account_id:
        document["AccountId"] = credentials.account_id
    if credentials.role_arn:
        document["RoleArn"] = credentials.role_arn
    return json.dumps(document).encode()


def error_body(code: str, message: str) -> bytes:
    """The ECS agent's ``{"code", "message"}``, plus the same values capitalised: the JS SDK's ``fromHttp`` shows
    only ``Code``/``Message`` to its user, and Go's case-insensitive JSON decoding sees identical values."""
    return json.dumps({"code": code, "message": message, "Code": code, "Message": message}).encode()
