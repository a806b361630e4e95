"""Building boto3 clients the one way govuk-imds builds them: explicit credentials, region and endpoint, one attempt.

``isolate_from_environment`` first removes everything through which the calling shell could steer AWS traffic
(``AWS_*`` variables, proxies, the user's AWS files), so a client built here reaches only the endpoint our own
config names (``endpoints``). botocore's own retries are off: a retried GetSessionToken would spend the MFA code
twice and a retried CreateAccessKey could create a second key; callers decide what is safe to retry.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

import boto3
from botocore.config import Config

from ..core.credentials import LongTermKey, TemporaryCredentials

_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "requests_ca_bundle", "curl_ca_bundle"}

Credentials = LongTermKey | TemporaryCredentials


def isolate_from_environment(environ: MutableMapping[str, str]) -> None:
    """Forget every variable through which the calling shell could steer our AWS traffic."""
    for name in list(environ):
        if name.startswith("AWS_") or name.lower() in _PROXY_VARIABLES:
            del environ[name]
    # No profile, credentials or CA bundle from the user's files either: everything is passed explicitly.
    environ["AWS_CONFIG_FILE"] = os.devnull
    environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    environ["AWS_EC2_METADATA_DISABLED"] = "true"


def client_config(connect_timeout: float, read_timeout: float) -> Config:
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        user_agent_extra="govuk-imds",
    )


class ClientFactory:
    """Clients for one set of timeouts.

    With ``cache``, one client per service, endpoint and credentials is kept (building one costs tens of
    milliseconds): right for a short CLI command that makes several calls with the same key, wrong for the daemon,
    where a cached client would keep a locked environment's MFA session in memory.
    """

    def __init__(self, *, connect_timeout: float, read_timeout: float, cache: bool = False) -> None:
        self._config = client_config(connect_timeout, read_timeout)
        self._session = boto3.session.Session()
        self._cache = cache
        self._clients: dict[tuple[str, str, str, str, str, str | None], Any] = {}

    def client(self, service: str, region: str, endpoint_url: str, credentials: Credentials) -> Any:
        token = credentials.session_token if isinstance(credentials, TemporaryCredentials) else None
        key = (service, region, endpoint_url, credentials.access_key_id, credentials.secret_access_key, token)
        if not self._cache or key not in self._clients:
            self._clients[key] = self._session.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=endpoint_url,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=token,
                config=self._config,
            )
        return self._clients[key] if self._cache else self._clients.pop(key)
