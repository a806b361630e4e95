"""AWS STS for the session flow: GetSessionToken for the CLI, AssumeRole for the daemon.

Clients come from ``clients.ClientFactory`` (explicit credentials, region and endpoint, one attempt), in a process
whose environment was first cleaned by ``clients.isolate_from_environment``. Every botocore error is mapped to our
own tree and chained. Secrets are never logged: the botocore loggers are pinned to WARNING by the logging setup.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from ..config.settings import Settings
from ..core.credentials import LongTermKey, MfaSession, RoleCredentials, TemporaryCredentials
from ..core.environment import EnvironmentSpec
from ..core.skew import server_time
from ..errors import LongTermKeyRejected, MfaCodeRefused, MfaSessionEnded, SessionRejected, StsError, StsUnavailable
from .clients import ClientFactory, Credentials
from .endpoints import sts_region, sts_url
from .errors import KEY_PROBLEMS, describe, error_code, error_message, is_transient

_ACCOUNT_IN_ARN = re.compile(r"arn:aws[a-z-]*:sts::(\d{12}):")
#: AssumeRole refusals that are about the MFA session itself, not the role: every environment using it is done.
_SESSION_ITSELF_REFUSED = frozenset({"ExpiredToken", "InvalidClientTokenId"})


class Sts:
    """STS calls at the endpoint our config names (``endpoints.sts_url``)."""

    def __init__(self, settings: Settings, *, connect_timeout: float = 3, read_timeout: float = 5) -> None:
        self._settings = settings
        self._clients = ClientFactory(connect_timeout=connect_timeout, read_timeout=read_timeout)

    def _client(self, region: str | None, credentials: Credentials) -> Any:
        return self._clients.client(
            "sts", sts_region(self._settings, region), sts_url(self._settings, region), credentials
        )

    def get_session_token(
        self,
        key: LongTermKey,
        *,
        source_profile: str,
        mfa_serial: str,
        code: str,
        duration_seconds: int,
        region: str | None = None,
    ) -> MfaSession:
        """One MFA code for an MFA session of ``source_profile``'s user (``source_profile`` only names it in errors)."""
        client = self._client(region, key)
        try:
            answer = client.get_session_token(
                SerialNumber=mfa_serial, TokenCode=code, DurationSeconds=duration_seconds
            )["Credentials"]
        except ClientError as exc:
            code_name = error_code(exc)
            if code_name == "AccessDenied" and "MultiFactorAuthentication" in error_message(exc):
                raise MfaCodeRefused(
                    "AWS refused the MFA code: it was wrong or already used (AWS accepts each code once), "
                    f"or {mfa_serial} is not your device; wait for the next code and run the same command again"
                ) from exc
            if code_name in KEY_PROBLEMS:
                raise LongTermKeyRejected(
                    f"AWS does not accept the stored key for {source_profile!r} ({code_name}); "
                    f"run `govuk-imds add {source_profile}` with a current key"
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
        """The role credentials the daemon serves, for the environment's configured duration."""
        return self._assume_role(session, spec, {"DurationSeconds": spec.role_duration_seconds})

    def assume_role_for_console(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        """Role credentials for one console sign-in: AssumeRole *without* ``DurationSeconds``.

        AWS's federation endpoint refuses role credentials that were assumed with ``DurationSeconds`` by anything but
        an IAM user's long-term key, and ours are assumed with an MFA session. Without it STS gives the default
        hour, which is also the most it allows a role assumed with session credentials.
        """
        return self._assume_role(session, spec, {})

    def _assume_role(
        self, session: TemporaryCredentials, spec: EnvironmentSpec, duration: dict[str, int]
    ) -> RoleCredentials:
        client = self._client(spec.region, session)
        try:
            answer = client.assume_role(RoleArn=spec.role_arn, RoleSessionName=spec.role_session_name, **duration)
        except ClientError as exc:
            if is_transient(exc):
                raise StsUnavailable(f"AssumeRole failed ({describe(exc)})") from exc
            # AccessDenied, ExpiredToken, InvalidClientTokenId, a role that cannot be assumed...: retrying
            # cannot help, so the environment locks with this reason.
            if error_code(exc) in _SESSION_ITSELF_REFUSED:
                raise MfaSessionEnded(f"STS refused AssumeRole ({describe(exc)})") from exc
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
                server_time=server_time(answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise StsUnavailable("STS sent an answer that could not be read") from exc


class StsIssuer:
    """The daemon's ``CredentialIssuer`` (and ``ConsoleIssuer``): AssumeRole in a worker thread, so the event loop
    never blocks."""

    def __init__(self, sts: Sts) -> None:
        self._sts = sts

    async def assume_role(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        return await asyncio.to_thread(self._sts.assume_role, session, spec)

    async def assume_role_for_console(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        return await asyncio.to_thread(self._sts.assume_role_for_console, session, spec)
