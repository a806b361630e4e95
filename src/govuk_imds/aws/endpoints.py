"""Where STS, IAM and the console sign-in are: the one rule for every client (the CLI, the daemon, `doctor`'s clock
check, `console`).

An emulator endpoint is used only when govuk-imds's own config names one (``[sts] endpoint_url``, ``[iam]
endpoint_url``, ``[signin] endpoint_url``); nothing from the calling shell (``AWS_ENDPOINT_URL*``) is ever consulted.
Light: no boto3.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config.settings import Settings
from ..errors import ConfigError

DEFAULT_REGION = "eu-west-1"
#: IAM is global; its requests are signed for us-east-1.
IAM_REGION = "us-east-1"
#: The federation endpoint. us-east-1's host, not the global name or the environment's region: signing out and
#: then in again in one redirect works only there, and the token is then redeemed on the host that issued it.
SIGNIN_URL = "https://us-east-1.signin.aws.amazon.com"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def sts_region(settings: Settings, profile_region: str | None = None) -> str:
    """Our config's ``[sts] region``, else the profile's region, else GOV.UK's home region."""
    return settings.sts_region or profile_region or DEFAULT_REGION


def sts_url(settings: Settings, profile_region: str | None = None) -> str:
    return settings.sts_endpoint_url or f"https://sts.{sts_region(settings, profile_region)}.amazonaws.com"


def iam_url(settings: Settings) -> str:
    return settings.iam_endpoint_url or "https://iam.amazonaws.com"


def signin_url(settings: Settings) -> str:
    """The federation endpoint's base URL (``/federation`` and ``/oauth`` hang off it), without a trailing slash.

    A sign-in token is a bearer credential: an emulator in our config may speak plain HTTP only on loopback.
    """
    url = (settings.signin_endpoint_url or SIGNIN_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        raise ConfigError(f"{settings.config_file}: signin.endpoint_url must be https (plain http only on loopback)")
    if parts.query or parts.fragment or not parts.hostname:
        raise ConfigError(f"{settings.config_file}: signin.endpoint_url must be a plain https://host[:port] address")
    return url
