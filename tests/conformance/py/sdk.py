"""Shared by the boto3 client scripts: call sts:GetCallerIdentity the way a user's script would, and describe the
outcome (or the error, exactly as botocore worded it) as one JSON-ready dict.

botocore logs each failed fetch from the container endpoint before retrying it, and says so whenever it decides
cached credentials need refreshing; both are collected so that a test can see what the SDK otherwise hides.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import boto3

# Logged once per failed attempt, before botocore sleeps and retries (the provider logs the last one again, worded
# differently, when it gives up).
FAILED_ATTEMPT = re.compile(r"^Received error when attempting to retrieve container metadata: .*?"
                            r"(?:Received non 200 response (\d+)|Received error when attempting)")


class Observer(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.failed_fetches: list[int] = []
        self.refreshes = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = FAILED_ATTEMPT.match(message)
        if found:  # the status, or 0 when no answer came (connection refused, timeout)
            self.failed_fetches.append(int(found.group(1) or 0))
        elif message == "Credentials need to be refreshed.":
            self.refreshes += 1

    def drain(self) -> dict[str, Any]:
        seen = {"failed_fetches": self.failed_fetches, "refreshes_needed": self.refreshes}
        self.failed_fetches, self.refreshes = [], 0
        return seen


observer = Observer()
for name in ("botocore.utils", "botocore.credentials"):
    logging.getLogger(name).addHandler(observer)
    logging.getLogger(name).setLevel(logging.DEBUG)


class Client:
    """A boto3 session and its STS client. A new session resolves credentials afresh, so it fetches from the
    endpoint; a kept one reuses botocore's cached, refreshable credentials."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.session = boto3.session.Session()
        self.sts: Any = None

    def whoami(self) -> dict[str, Any]:
        started = time.monotonic()
        try:
            if self.sts is None:  # botocore resolves credentials when it creates a client: that may fail too
                self.sts = self.session.client("sts", endpoint_url=self.endpoint)
            identity = self.sts.get_caller_identity()
        except Exception as exc:
            return {"ok": False, "type": type(exc).__name__, "message": str(exc), **observer.drain(),
                    "elapsed": time.monotonic() - started}
        credentials = self.session.get_credentials()  # the session's cached credentials: the ones the call used
        assert credentials is not None  # the call above succeeded, so some provider gave credentials
        frozen = credentials.get_frozen_credentials()
        return {
            "ok": True,
            "arn": identity["Arn"],
            "account": identity["Account"],
            "method": credentials.method,
            "access_key_id": frozen.access_key,
            "account_id": frozen.account_id,
            # Only refreshable (temporary) credentials have an expiry; keys from the environment do not.
            "at_least_15_min_left": hasattr(credentials, "refresh_needed") and not credentials.refresh_needed(15 * 60),
            "region": self.sts.meta.region_name,
            **observer.drain(),
            "elapsed": time.monotonic() - started,
        }
