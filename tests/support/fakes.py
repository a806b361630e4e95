"""An STS you script, for the service's injected ``CredentialIssuer`` (the clock it takes is ``support.clock``).

A plain object with no I/O. ``ScriptedIssuer`` satisfies ``daemon.service.CredentialIssuer`` (mypy checks that
below), so a test drives the real ``Service`` with it instead of patching anything.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from govuk_imds.core.credentials import RoleCredentials, TemporaryCredentials
from govuk_imds.core.environment import EnvironmentSpec

from .clock import FakeClock

if TYPE_CHECKING:
    from govuk_imds.daemon.console import ConsoleIssuer
    from govuk_imds.daemon.service import CredentialIssuer

class ScriptedIssuer:
    """An STS stand-in that counts calls, fails on request, and can hold calls until a test releases them.

    Every outcome is decided when a call *returns*, so a test may block a call, change the script, then release.
    Credentials it issues expire ``duration`` after that moment on AWS's clock (``duration`` defaults to the spec's
    ``role_duration_seconds``), carry the time STS stated, and are unique per call, so a test can tell old credentials
    from new ones. AWS's clock is ``aws_offset`` off the fake local clock.
    """

    def __init__(self, clock: FakeClock, duration: timedelta | None = None, *,
                 aws_offset: timedelta = timedelta(0)) -> None:
        self._clock = clock
        self._duration = duration
        self.aws_offset = aws_offset
        #: Environment names, one per call, in the order the calls were made (counted on entry).
        self.calls: list[str] = []
        #: The session credentials each call was made with.
        self.sessions: list[TemporaryCredentials] = []
        #: Every credential this issuer has handed out, in order.
        self.issued: list[RoleCredentials] = []
        #: Environment names of the console's AssumeRole calls, and how long their credentials last.
        self.console_calls: list[str] = []
        self.console_duration = timedelta(hours=1)
        self._failures: dict[str | None, Exception] = {}
        self._gate: asyncio.Event | None = None
        self._waiting = 0

    # -- the CredentialIssuer protocol ---------------------------------------------------------------------------

    async def assume_role(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        self.calls.append(spec.name)
        self.sessions.append(session)
        gate = self._gate
        if gate is not None:
            self._waiting += 1
            try:
                await gate.wait()
            finally:
                self._waiting -= 1
        failure = self._failures.get(spec.name, self._failures.get(None))
        if failure is not None:
            raise failure
        return self._issue(spec, self._duration or timedelta(seconds=spec.role_duration_seconds))

    # -- the ConsoleIssuer protocol -------------------------------------------------------------------------------

    async def assume_role_for_console(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        """AssumeRole without DurationSeconds: ``console_duration`` (STS's default hour unless a test changes it)."""
        self.console_calls.append(spec.name)
        self.sessions.append(session)
        failure = self._failures.get(spec.name, self._failures.get(None))
        if failure is not None:
            raise failure
        return self._issue(spec, self.console_duration)

    def _issue(self, spec: EnvironmentSpec, duration: timedelta) -> RoleCredentials:
        serial = len(self.issued) + 1
        credentials = RoleCredentials(
            access_key_id=f"ASIA{serial:016d}",
            secret_access_key=f"{spec.name}-secret-{serial}".ljust(40, "x")[:40],
            session_token=f"{spec.name}-token-{serial}",
            expiration=self._clock.now() + self.aws_offset + duration,
            account_id=spec.account_id,
            role_arn=spec.role_arn,
            server_time=self._clock.now() + self.aws_offset,
        )
        self.issued.append(credentials)
        return credentials

    # -- the script ----------------------------------------------------------------------------------------------

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def calls_for(self, name: str) -> int:
        return Counter(self.calls)[name]

    def fail_with(self, error: Exception, *, environment: str | None = None) -> None:
        """Raise ``error`` from every call (for ``environment`` only, if given) until ``succeed()``.

        Usually a govuk_imds error (``StsUnavailable``, ``SessionRejected``); any other exception imitates a bug
        in the STS adapter.
        """
        self._failures[environment] = error

    def succeed(self, *, environment: str | None = None) -> None:
        """Stop failing: for one environment, or (with no argument) for all of them."""
        if environment is None:
            self._failures.clear()
        else:
            self._failures.pop(environment, None)

    def block(self) -> None:
        """Hold every call from now on inside ``assume_role`` until ``release()``."""
        if self._gate is None or self._gate.is_set():
            self._gate = asyncio.Event()

    def release(self) -> None:
        """Let every held call (and every later one) finish."""
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    @property
    def waiting(self) -> int:
        """How many calls are being held right now."""
        return self._waiting


if TYPE_CHECKING:

    def _is_a_credential_issuer(issuer: ScriptedIssuer) -> CredentialIssuer:
        return issuer  # mypy fails here if ScriptedIssuer drifts from the protocol

    def _is_a_console_issuer(issuer: ScriptedIssuer) -> ConsoleIssuer:
        return issuer
