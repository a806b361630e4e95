"""One object per daemon: the environments, their sessions, single-flight rotation, lock and unlock.

The request path (``serve``) reads the aiocache in-memory cache and judges expiry on the wall clock; it
never waits for STS while valid credentials exist. Renewals run as background tasks, at most one per environment.
The session policy itself lives in ``core/session.py``; this module only acts on it. STS is reached through the
``CredentialIssuer`` protocol, so tests drive the service with any issuer and a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiocache import SimpleMemoryCache

from ..config.settings import DEFAULT_PREFIX
from ..core.clock import Clock, rfc3339
from ..core.credentials import MfaSession, RoleCredentials, TemporaryCredentials
from ..core.ecs_protocol import credentials_body
from ..core.environment import EnvironmentSpec
from ..core.session import (
    MIN_SERVED_LIFETIME,
    InvalidTransition,
    Locked,
    RenewalFailed,
    RenewalStarted,
    RoleAssumed,
    Session,
    State,
    Unlocked,
    ending_soon,
    has_ended,
    next_wakeup,
    renewal_due,
    retry_delay,
    still_servable,
)
from ..errors import CredentialsUnavailable, EnvironmentLocked, GovukImdsError, SessionRejected, UnknownEnvironment

log = logging.getLogger(__name__)

#: The longest the maintenance loop sleeps: after a laptop wakes, asyncio's monotonic timers are late by the
#: length of the sleep, so the wall clock is looked at again at least this often.
MAX_SLEEP_SECONDS = 30.0
#: How long a request with nothing valid to serve may wait for a renewal already under way (SDKs time out at 1 s).
REQUEST_WAIT_SECONDS = 0.8
# aiocache looks this variable up on every call and turns the cache into a no-op when it is "1".
AIOCACHE_SWITCH = "AIOCACHE_DISABLE"


def sleep_before(due: datetime | None, now: datetime) -> float:
    """How long a maintenance loop sleeps: until ``due``, but at most ``MAX_SLEEP_SECONDS`` (the wall clock is looked
    at again after a laptop's sleep) and at least 50 ms."""
    if due is None:
        return MAX_SLEEP_SECONDS
    return min(MAX_SLEEP_SECONDS, max(0.05, (due - now).total_seconds()))


class CredentialIssuer(Protocol):
    async def assume_role(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials: ...


@dataclass(frozen=True)
class Served:
    """Role credentials as served: the wire answer is rendered once per set of credentials, not per request."""

    credentials: RoleCredentials
    body: bytes = field(repr=False)

    @classmethod
    def of(cls, credentials: RoleCredentials) -> Served:
        return cls(credentials, credentials_body(credentials))


@dataclass
class _Environment:
    spec: EnvironmentSpec
    session: Session = field(default_factory=Session)
    last_served: datetime | None = None
    unlocked_at: datetime | None = None
    renewal: asyncio.Task[None] | None = None
    #: When a client holding the right token was last answered "locked", and its User-Agent (None: it sent none).
    refused_while_locked: tuple[datetime, str | None] | None = None


def keep_cache_enabled(environ: MutableMapping[str, str]) -> None:
    """Pin aiocache's switch on, whatever the shell that started the daemon says.

    ``AIOCACHE_DISABLE=1`` inherited from a user's shell would silently turn the credential cache (and the TTL that
    drops credentials from memory) into a no-op. A set variable is also faster to look up per request than a missing
    one, which ``os.getenv`` pays for with a KeyError.
    """
    environ[AIOCACHE_SWITCH] = "0"


class Service:
    def __init__(
        self,
        issuer: CredentialIssuer,
        clock: Clock,
        *,
        rotation_margin: timedelta,
        on_lock: Callable[[str], None] | None = None,
        jitter: Callable[[], float] = random.random,
        request_wait: float = REQUEST_WAIT_SECONDS,
        profile_prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._issuer = issuer
        self._clock = clock
        self._margin = rotation_margin
        self._on_lock = on_lock
        self._jitter = jitter
        self._request_wait = request_wait
        self._prefix = profile_prefix  # only to name the profile in an UnknownEnvironment message
        self._environments: dict[str, _Environment] = {}
        # The served copy of each environment's role credentials; its TTL ends when they stop being servable.
        self._cache = SimpleMemoryCache(timeout=None)
        self._wake = asyncio.Event()

    # -- environments -------------------------------------------------------------------------------------------

    def set_environments(self, specs: Mapping[str, EnvironmentSpec]) -> None:
        """Adopt the environments from the AWS config. Sessions of environments that stay are kept; an environment
        gone from the config is dropped once it is locked (an unlocked one serves until it is locked or ends)."""
        for name in [name for name in self._environments if name not in specs]:
            if self._environments[name].session.state is State.LOCKED:
                del self._environments[name]
        for name, spec in specs.items():
            existing = self._environments.get(name)
            if existing is None:
                self._environments[name] = _Environment(spec)
            else:
                existing.spec = spec

    def knows(self, name: str) -> bool:
        return name in self._environments

    def role_arn(self, name: str) -> str | None:
        environment = self._environments.get(name)
        return environment.spec.role_arn if environment is not None else None

    def activity(self, name: str) -> tuple[datetime | None, datetime | None]:
        """When ``name`` was unlocked (None while it is locked) and when it last served credentials: where an idle
        lock counts from."""
        environment = self._environments.get(name)
        if environment is None or environment.session.state is State.LOCKED:
            return None, None
        return environment.unlocked_at, environment.last_served

    def names(self) -> list[str]:
        return sorted(self._environments)

    # -- the request path -----------------------------------------------------------------------------------------

    async def serve(self, name: str) -> Served:
        """The credentials to hand out now, with their answer already rendered; never waits on STS while valid
        credentials exist."""
        environment = self._environments.get(name)
        if environment is None:
            raise UnknownEnvironment(name, self.names(), self._prefix)
        now = self._clock.now()
        cached: Served | None = await self._cache.get(name)
        session = environment.session
        if session.state is State.LOCKED:
            raise EnvironmentLocked(name, session.problem)
        if cached is not None and still_servable(cached.credentials, session, now):
            environment.last_served = now
            return cached
        if has_ended(session, now):
            await self.lock(name, "the MFA session ended")
            raise EnvironmentLocked(name, "the MFA session ended")
        # Nothing valid (the laptop slept, or STS has been failing): renew if policy allows, wait briefly.
        if environment.renewal is None and renewal_due(session, now, self._margin):
            self._start_renewal(name, environment)
        if environment.renewal is not None:
            # asyncio.wait, not wait_for: a renewal cancelled by a concurrent lock must not cancel this request.
            await asyncio.wait({environment.renewal}, timeout=self._request_wait)
        now = self._clock.now()
        session = environment.session
        fresh = session.credentials
        if fresh is not None and still_servable(fresh, session, now):
            environment.last_served = now
            return Served.of(fresh)
        if session.state is State.LOCKED:
            raise EnvironmentLocked(name, session.problem)
        if session.ends_at is not None and session.ends_at - now < MIN_SERVED_LIFETIME:
            raise CredentialsUnavailable(
                f"the MFA session for {name!r} ends in under 15 minutes; run `govuk-imds unlock {name}`"
            )
        problem = session.problem or "renewing them now"
        raise CredentialsUnavailable(
            f"no valid credentials for {name!r} yet ({problem}); retrying automatically, see `govuk-imds status`"
        )

    # -- unlock, lock ---------------------------------------------------------------------------------------------

    async def unlock(self, spec: EnvironmentSpec, mfa_session: MfaSession, ends_at: datetime) -> dict[str, Any]:
        """Take an MFA session, assume the role with it at once, and report how that went."""
        environment = self._environments.setdefault(spec.name, _Environment(spec))
        environment.spec = spec
        await self._cancel_renewal(environment)
        environment.session = environment.session.apply(Unlocked(mfa_session, ends_at))
        environment.unlocked_at = self._clock.now()
        log.info("%s unlocked until %s", spec.name, rfc3339(ends_at))
        task = self._start_renewal(spec.name, environment)
        await asyncio.wait({task})  # a lock meanwhile cancels the renewal; the unlock then reports "locked"
        self._wake.set()
        return self._describe(spec.name, environment, self._clock.now())

    async def lock(self, name: str, reason: str = "locked by you") -> bool:
        environment = self._environments.get(name)
        if environment is None:
            raise UnknownEnvironment(name, self.names(), self._prefix)
        await self._cancel_renewal(environment)
        was_unlocked = environment.session.state is not State.LOCKED
        environment.session = environment.session.apply(Locked(reason))
        await self._cache.delete(name)
        if self._on_lock is not None:
            self._on_lock(name)
        if was_unlocked:
            log.info("%s locked: %s", name, reason)
        return was_unlocked

    async def lock_all(self, reason: str = "locked by you") -> list[str]:
        return [name for name in self.names() if await self.lock(name, reason)]

    async def held_session(self, name: str) -> tuple[EnvironmentSpec, MfaSession, datetime]:
        """The environment's spec, its MFA session and when that ends: for a one-off AssumeRole outside the served
        path (a console sign-in). Raises ``UnknownEnvironment``, or ``EnvironmentLocked`` (locking an ended one)."""
        environment = self._environments.get(name)
        if environment is None:
            raise UnknownEnvironment(name, self.names(), self._prefix)
        if has_ended(environment.session, self._clock.now()):
            await self.lock(name, "the MFA session ended")
        session = environment.session
        if session.state is State.LOCKED or session.mfa_session is None or session.ends_at is None:
            raise EnvironmentLocked(name, session.problem)
        return environment.spec, session.mfa_session, session.ends_at

    def refused_while_locked(self, name: str, client: str | None) -> None:
        """Remember that a client was answered "locked": most SDKs hide the answer's text from their user, so
        `status` is where a person learns which tool asked, and when."""
        environment = self._environments.get(name)
        if environment is not None:
            environment.refused_while_locked = (self._clock.now(), client)

    # -- background maintenance -----------------------------------------------------------------------------------

    async def tick(self) -> datetime | None:
        """Lock ended sessions, start due renewals; return when something may next be due."""
        now = self._clock.now()
        upcoming: list[datetime] = []
        for name, environment in list(self._environments.items()):
            if has_ended(environment.session, now):
                await self.lock(name, "the MFA session ended")
                continue
            if environment.renewal is None and renewal_due(environment.session, now, self._margin):
                self._start_renewal(name, environment)
            moment = next_wakeup(environment.session, now, self._margin)
            if moment is not None:
                upcoming.append(moment)
        return min(upcoming) if upcoming else None

    async def run(self) -> None:
        """The maintenance loop: a task the daemon starts, then cancels and awaits on shutdown."""
        while True:
            next_at = await self.tick()
            delay = sleep_before(next_at, self._clock.now())
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def close(self) -> None:
        for environment in self._environments.values():
            await self._cancel_renewal(environment)
            environment.session = Session(problem="the daemon stopped")
        await self._cache.clear()

    # -- status ---------------------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = self._clock.now()
        return [self._describe(name, self._environments[name], now) for name in self.names()]

    def _describe(self, name: str, environment: _Environment, now: datetime) -> dict[str, Any]:
        session = environment.session
        credentials = session.credentials
        return {
            "environment": name,
            "state": session.state.value,
            "session_ends": _iso(session.ends_at),
            "credentials_expire": _iso(credentials.expiration if credentials else None),
            "last_served": _iso(environment.last_served),
            "unlocked_at": _iso(environment.unlocked_at) if session.state is not State.LOCKED else None,
            "problem": session.problem,
            "ending_soon": ending_soon(session, now),
            "role_arn": environment.spec.role_arn,
            "refused_while_locked": _refusal(environment.refused_while_locked),
        }

    # -- renewal --------------------------------------------------------------------------------------------------

    def _start_renewal(self, name: str, environment: _Environment) -> asyncio.Task[None]:
        if environment.renewal is None:
            environment.renewal = asyncio.get_running_loop().create_task(self._renew(name, environment))
        return environment.renewal

    async def _cancel_renewal(self, environment: _Environment) -> None:
        task, environment.renewal = environment.renewal, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _renew(self, name: str, environment: _Environment) -> None:
        try:
            if environment.session.state in (State.ACTIVE, State.DEGRADED):
                environment.session = environment.session.apply(RenewalStarted())
            mfa_session = environment.session.mfa_session
            if mfa_session is None:
                return
            try:
                credentials = await self._issuer.assume_role(mfa_session, environment.spec)
            except SessionRejected as exc:
                environment.renewal = None
                await self.lock(name, str(exc))
                return
            except GovukImdsError as exc:
                self._record_failure(name, environment, str(exc))
                return
            except Exception as exc:  # an adapter bug must not kill the environment's renewals for good
                log.exception("unexpected error while renewing %s", name)
                self._record_failure(name, environment, f"internal error: {type(exc).__name__}")
                return
            try:
                environment.session = environment.session.apply(RoleAssumed(credentials, self._clock.now()))
            except InvalidTransition:
                return  # locked or re-unlocked meanwhile: these credentials belong to a session that is gone
            await self._cache_credentials(name, environment)
            log.info("%s: role credentials renewed, valid until %s", name, rfc3339(credentials.expiration))
        finally:
            if environment.renewal is asyncio.current_task():
                environment.renewal = None
            self._wake.set()

    def _record_failure(self, name: str, environment: _Environment, reason: str) -> None:
        now = self._clock.now()
        retry_at = now + retry_delay(environment.session.failures, self._jitter())
        try:
            environment.session = environment.session.apply(RenewalFailed(reason, retry_at))
        except InvalidTransition:
            return
        log.warning("%s: could not renew role credentials (%s); retrying at %s", name, reason, rfc3339(retry_at))

    async def _cache_credentials(self, name: str, environment: _Environment) -> None:
        session, credentials = environment.session, environment.session.credentials
        if credentials is None or session.ends_at is None:
            return
        servable_until = min(credentials.expiration - MIN_SERVED_LIFETIME, session.ends_at)
        ttl = (servable_until - self._clock.now()).total_seconds()
        if ttl > 0:
            await self._cache.set(name, Served.of(credentials), ttl=ttl)
        else:
            await self._cache.delete(name)


def _iso(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


def _refusal(refusal: tuple[datetime, str | None] | None) -> dict[str, str | None] | None:
    if refusal is None:
        return None
    moment, client = refusal
    return {"at": rfc3339(moment), "client": client}
