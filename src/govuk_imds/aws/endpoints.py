"""Where STS and IAM are: the one rule for every client (the CLI, the daemon, `doctor`'s clock check).

An emulator endpoint is used only when govuk-imds's own config names one (``[sts] endpoint_url``, ``[iam]
endpoint_url``); nothing from the calling shell (``AWS_ENDPOINT_URL*``) is ever consulted. Light: no boto3.
"""

from __future__ import annotations

from ..config.settings import Settings

DEFAULT_REGION = "eu-west-1"
#: IAM is global; its requests are signed for us-east-1.
IAM_REGION = "us-east-1"


def sts_region(settings: Settings, profile_region: str | None = None) -> str:
    """Our config's ``[sts] region``, else the profile's region, else GOV.UK's home region."""
    return settings.sts_region or profile_region or DEFAULT_REGION


def sts_url(settings: Settings, profile_region: str | None = None) -> str:
    return settings.sts_endpoint_url or f"https://sts.{sts_region(settings, profile_region)}.amazonaws.com"


def iam_url(settings: Settings) -> str:
    return settings.iam_endpoint_url or "https://iam.amazonaws.com"
