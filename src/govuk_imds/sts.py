"""AWS STS through boto3, and nothing else: GetSessionToken for the CLI, AssumeRole for the daemon.

Clients are built explicitly (credentials, region, endpoint) inside a process whose environment was first cleaned
of everything that could redirect or intercept STS traffic (``AWS_ENDPOINT_URL*``, ``AWS_CA_BUNDLE``, proxies,
profiles, ``AWS_CONTAINER_*``). Every botocore error is mapped to our own tree and chained. Secrets are never
logged: the botocore loggers are pinned to WARNING by the logging setup.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import MutableMapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from .aws_errors import KEY_PROBLEMS, describe, error_code, error_message, is_transient
from .config import EnvironmentSpec, Settings
from .credentials import LongTermKey, MfaSession, RoleCredentials, TemporaryCredentials
from .errors import LongTermKeyRejected, MfaCodeRefused, SessionRejected, StsError, StsUnavailable

_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "requests_ca_bundle", "curl_ca_bundle"}
_ACCOUNT_IN_ARN = re.compile(r"arn:aws[a-z-]*:sts::(\d{12}):")


def isolate_from_environment(environ: MutableMapping[str, str]) -> None:
    """Forget every variable through which the calling shell could steer our STS traffic."""
    for name in list(environ):
        if name.startswith("AWS_") or name.lower() in _PROXY_VARIABLES:
            del environ[name]
    # No profile, credentials or CA bundle from the user's files either: everything is passed explicitly.
    environ["AWS_CONFIG_FILE"] = os.devnull
    environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    environ["AWS_EC2_METADATA_DISABLED"] = "true"


class Sts:
    """Builds STS clients for one configured endpoint."""

    def __init__(self, settings: Settings, *, connect_timeout: float = 3, read_timeout: float = 5) -> None:
        self._endpoint_url = settings.sts_endpoint_url
        self._region = settings.sts_region
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # One attempt: the daemon retries with its own backoff, and a retried GetSessionToken would spend
            # the same MFA code twice.
            retries={"mode": "standard", "total_max_attempts": 1},
            user_agent_extra="govuk-imds",
        )
        self._session = boto3.session.Session()

    def _client(self, region: str | None, key_id: str, secret: str, token: str | None = None) -> Any:
        chosen_region = self._region or region or "eu-west-1"
        endpoint = self._endpoint_url or f"https://sts.{chosen_region}.amazonaws.com"
        return self._session.client(
            "sts",
            region_name=chosen_region,
            endpoint_url=endpoint,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=self._config,
        )

    def get_session_token(
        self, key: LongTermKey, spec: EnvironmentSpec, code: str, duration_seconds: int
    ) -> MfaSession:
        client = self._client(spec.region, key.access_key_id, key.secret_access_key)
        try:
            answer = client.get_session_token(
                SerialNumber=spec.mfa_serial, TokenCode=code, DurationSeconds=duration_seconds
            )["Credentials"]
        except ClientError as exc:
            code_name = error_code(exc)
            if code_name == "AccessDenied" and "MultiFactorAuthentication" in error_message(exc):
                raise MfaCodeRefused(
                    "AWS refused the MFA code: it was wrong or already used (AWS accepts each code once), "
                    f"or {spec.mfa_serial} is not your device; wait for the next code and run the same command again"
                ) from exc
            if code_name in KEY_PROBLEMS:
                raise LongTermKeyRejected(
                    f"AWS does not accept the stored key for {spec.source_profile!r} ({code_name}); "
                    f"run `govuk-imds add {spec.source_profile}` with a current key"
                ) from exc
            if is_transient(exc):
                raise StsUnavailable(f"GetSessionToken failed ({describe(exc)}); try again shortly") from exc
            raise StsError(f"AWS refused GetSessionToken ({describe(exc)})") from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise StsUnavailable(f"STS could not be reached ({type(exc).__name__}); try again shortly") from exc
        return MfaSession(
            answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"], answer["Expiration"]
        )

    def assume_role(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        client = self._client(spec.region, session.access_key_id, session.secret_access_key, session.session_token)
        try:
            answer = client.assume_role(
                RoleArn=spec.role_arn,
                RoleSessionName=spec.role_session_name,
                DurationSeconds=spec.role_duration_seconds,
            )
        except ClientError as exc:
            if is_transient(exc):
                raise StsUnavailable(f"AssumeRole failed ({describe(exc)})") from exc
            # AccessDenied, ExpiredToken, InvalidClientTokenId, a role that cannot be assumed...: retrying
            # cannot help, so the environment locks with this reason.
            raise SessionRejected(f"STS refused AssumeRole ({describe(exc)})") from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise StsUnavailable(f"STS unreachable or unreadable ({type(exc).__name__})") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise StsUnavailable("STS sent an answer that could not be read") from exc
        try:
            credentials = answer["Credentials"]
            assumed_arn = answer.get("AssumedRoleUser", {}).get("Arn", "")
            match = _ACCOUNT_IN_ARN.match(assumed_arn)
            return RoleCredentials(
                credentials["AccessKeyId"],
                credentials["SecretAccessKey"],
                credentials["SessionToken"],
                credentials["Expiration"],
                account_id=match.group(1) if match else spec.account_id,
                role_arn=spec.role_arn,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise StsUnavailable("STS sent an answer that could not be read") from exc


class StsIssuer:
    """The daemon's ``CredentialIssuer``: AssumeRole in a worker thread so the event loop never blocks."""

    def __init__(self, sts: Sts) -> None:
        self._sts = sts

    async def assume_role(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        return await asyncio.to_thread(self._sts.assume_role, session, spec)
