"""The shapes of the names and secrets govuk-imds accepts, each written once.

Only ``re`` is imported: the lean ``credential-process`` path checks a token's shape with these too.
"""

from __future__ import annotations

import re

#: An environment's name: what follows the profile prefix (``govuk-production`` -> ``production``), and a path
#: segment of the endpoint's one route.
ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: A source profile (``gds``): a section name of the AWS config and a keyring entry's user name.
PROFILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
ACCOUNT_ID = re.compile(r"\d{12}")
#: An IAM role's name (without its path).
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
MFA_SERIAL = re.compile(r"[\w+=/:,.@-]{9,256}")
ROLE_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
#: An AWS region's name (``eu-west-1``, ``us-gov-west-1``): a host name label of the console's address.
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
#: What an MFA device shows.
MFA_CODE = re.compile(r"\d{6}")
#: A bearer token for the endpoint: URL-safe base64 (``secrets.token_urlsafe(32)`` gives 43 characters), never a
#: CR or LF, which would break every SDK.
TOKEN = re.compile(rb"[A-Za-z0-9_-]{43,128}")


def role_arn_parts(arn: str) -> tuple[str, str] | None:
    """``arn:aws:iam::123456789012:role/path/name`` -> ``("123456789012", "name")``; ``None`` for anything else."""
    if not ROLE_ARN.fullmatch(arn):
        return None
    account, _, path = arn.split(":", 4)[4].partition(":role/")
    return account, path.rsplit("/", 1)[-1]


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message quotes what it refuses without echoing a huge value."""
    try:
        text = repr(value)
    except ValueError:  # an integer longer than Python will turn into text
        return f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= limit else f"{text[: limit - 5]}...({len(text)} characters)"
