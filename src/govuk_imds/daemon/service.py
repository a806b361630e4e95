"""One object per daemon: the environments, their sessions, the MFA sessions held for them, single-flight
rotation, lock and unlock.

The request path (``serve``) reads the aiocache in-memory cache and judges expiry on the wall clock; it
never waits for STS while valid credentials exist. Renewals run as background tasks, at most one per environment.
Each STS answer teaches the offset between the local clock and AWS's (``core.skew``), with which every expiry AWS
wrote is judged. MFA sessions are held per source profile and device (``core.held``) and kept across restarts by a
``Keeper``. The session policy itself lives in ``core/session.py``; this module only acts on it. STS is reached
through the ``CredentialIssuer`` protocol, so tests drive the service with any issuer and a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiocache import SimpleMemoryCache

from ..config.settings import DEFAULT_PREFIX
from ..core.clock import Clock, rfc3339
from ..core.credentials import MfaSession, RoleCredentials, TemporaryCredentials
from ..core.ecs_protocol import credentials_body
from ..core.environment import EnvironmentSpec
from ..core.held import Device, HeldSession, KeptUnlock, why_a_code_is_needed
from ..core.session import (
    InvalidTransition,
    Locked,
    RenewalFailed,
    RenewalStarted,
    RoleAssumed,
    Session,
    State,
    Unlocked,
    end_reason,
    ending_soon,
    has_ended,
    next_wakeup,
    renewal_due,
    retry_delay,
    servable_until,
    session_end,
    still_servable,
)
from ..core.skew import NO_OFFSET, as_local, describe, for_clients, measured_offset, worth_telling
from ..errors import (
    CredentialsUnavailable,
    EnvironmentLocked,
    GovukImdsError,
    MfaSessionEnded,
    SessionRejected,
    UnknownEnvironment,
)

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


class Keeper(Protocol):
    """Keeps the held MFA sessions, with the environments unlocked with each, across a restart of the daemon."""

    async def keep(self, sessions: Sequence[HeldSession]) -> None: ...


@dataclass(frozen=True)
class Served:
    """Role credentials as served: the wire answer is rendered once per set of credentials, not per request."""

    credentials: RoleCredentials
    body: bytes = field(repr=False)

    @classmethod
    def of(cls, credentials: RoleCredentials, clock_offset: timedelta = NO_OFFSET) -> Served:
        return cls(credentials, credentials_body(credentials, for_clients(clock_offset)))


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
        on_change: Callable[[str, datetime | None], None] | None = None,
        jitter: Callable[[], float] = random.random,
        request_wait: float = REQUEST_WAIT_SECONDS,
        profile_prefix: str = DEFAULT_PREFIX,
        keeper: Keeper | None = None,
        on_locked_request: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self._issuer = issuer
        self._clock = clock
        self._margin = rotation_margin
        self._on_lock = on_lock
        self._on_change = on_change  # (name, the MFA session's end or None when locked): state_files.StateFiles
        self._jitter = jitter
        self._request_wait = request_wait
        self._prefix = profile_prefix  # only to name the profile in an UnknownEnvironment message
        self._environments: dict[str, _Environment] = {}
        #: One MFA session per source profile and device, shared by every environment unlocked with it.
        self._held: dict[Device, HeldSession] = {}
        self._keeper = keeper
        #: (name, the client's User-Agent): a client with the right token was refused as locked (daemon/attention.py).
        self._on_locked_request = on_locked_request
        self._keeping: asyncio.Task[None] | None = None
        #: AWS's clock minus the local one, learned from STS's answers (zero until the first).
        self._offset = NO_OFFSET
        self._offset_known = False
        self._offset_told = False
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
        now, offset = self._clock.now(), self._offset
        cached: Served | None = await self._cache.get(name)
        session = environment.session
        if session.state is State.LOCKED:
            raise EnvironmentLocked(name, session.problem)
        if cached is not None and still_servable(cached.credentials, session, now, offset):
            environment.last_served = now
            return cached
        if has_ended(session, now, offset):
            reason = end_reason(session, offset)
            await self._end(name, environment, reason)
            raise EnvironmentLocked(name, reason)
        # Nothing valid (the laptop slept, or STS has been failing): renew if policy allows, wait briefly.
        if environment.renewal is None and renewal_due(session, now, self._margin, offset):
            self._start_renewal(name, environment)
        if environment.renewal is not None:
            # asyncio.wait, not wait_for: a renewal cancelled by a concurrent lock must not cancel this request.
            await asyncio.wait({environment.renewal}, timeout=self._request_wait)
        now, offset = self._clock.now(), self._offset
        session = environment.session
        fresh = session.credentials
        if fresh is not None and still_servable(fresh, session, now, offset):
            environment.last_served = now
            return Served.of(fresh, offset)
        if session.state is State.LOCKED:
            raise EnvironmentLocked(name, session.problem)
        problem = session.problem or "renewing them now"
        raise CredentialsUnavailable(
            f"no valid credentials for {name!r} yet ({problem}); retrying automatically, see `govuk-imds status`"
        )

    # -- unlock, lock ---------------------------------------------------------------------------------------------

    def code_needed_for(
        self,
        specs: Sequence[EnvironmentSpec],
        wanted: Mapping[str, timedelta],
        *,
        explicit: timedelta | None = None,
        fresh: Sequence[str] = (),
    ) -> str | None:
        """Why unlocking ``specs`` (one device) needs a new MFA code, in words; None if the held session serves."""
        device = Device.of(specs[0])
        self._drop_ended_holds(self._clock.now())
        return why_a_code_is_needed(
            device, self._held.get(device), wanted, self._clock.now(), self._offset, explicit=explicit, fresh=fresh
        )

    async def unlock_all(
        self,
        specs: Sequence[EnvironmentSpec],
        durations: Mapping[str, timedelta],
        mfa_session: MfaSession | None = None,
        *,
        granted: timedelta | None = None,
    ) -> list[dict[str, Any]]:
        """Unlock ``specs`` (one device) with a new MFA session, or with the held one when ``mfa_session`` is None;
        each ends ``durations[name]`` from now or with the MFA session, whichever is sooner. The held sessions are
        kept before this returns."""
        now = self._clock.now()
        if mfa_session is None:
            held = self._held[Device.of(specs[0])]
            mfa_session = held.credentials
        else:
            self._hold(Device.of(specs[0]), mfa_session, granted or (mfa_session.expiration - now - self._offset))
        reports = await asyncio.gather(
            *(self.unlock(spec, mfa_session, now + durations[spec.name], keep=False) for spec in specs)
        )
        await self._keep()
        return list(reports)

    async def unlock(
        self, spec: EnvironmentSpec, mfa_session: MfaSession, ends_at: datetime, *, keep: bool = True
    ) -> dict[str, Any]:
        """Take an MFA session, assume the role with it at once, and report how that went. ``ends_at`` is the
        unlock's own end on the local clock; the MFA session's expiry may end it sooner."""
        environment = self._environments.setdefault(spec.name, _Environment(spec))
        environment.spec = spec
        device = Device.of(spec)
        if device not in self._held:
            self._hold(device, mfa_session, mfa_session.expiration - self._clock.now() - self._offset)
        await self._cancel_renewal(environment)
        environment.session = environment.session.apply(Unlocked(mfa_session, ends_at))
        environment.unlocked_at = self._clock.now()
        log.info("%s unlocked until %s", spec.name, rfc3339(ends_at))
        task = self._start_renewal(spec.name, environment)
        await asyncio.wait({task})  # a lock meanwhile cancels the renewal; the unlock then reports "locked"
        self._wake.set()
        if self._on_change is not None and environment.session.state is not State.LOCKED:
            self._on_change(spec.name, environment.session.ends_at)
        if keep:
            await self._keep()
        return self._describe(spec.name, environment, self._clock.now())

    async def lock(self, name: str, reason: str = "locked by you") -> bool:
        """The user's lock: the environment's session and credentials are forgotten, and so is its MFA session if
        no other environment uses it any more. What is kept across restarts is updated before this returns."""
        was_unlocked = await self._lock(name, reason)
        self._forget_unused(Device.of(self._environments[name].spec))
        await self._keep()
        return was_unlocked

    async def lock_all(self, reason: str = "locked by you") -> list[str]:
        locked = [name for name in self.names() if await self._lock(name, reason)]
        self._held.clear()
        await self._keep()
        return locked

    async def _lock(self, name: str, reason: str) -> bool:
        environment = self._environments.get(name)
        if environment is None:
            raise UnknownEnvironment(name, self.names(), self._prefix)
        await self._cancel_renewal(environment)
        was_unlocked = environment.session.state is not State.LOCKED
        environment.session = environment.session.apply(Locked(reason))
        await self._cache.delete(name)
        if self._on_lock is not None:
            self._on_lock(name)
        if self._on_change is not None:
            self._on_change(name, None)
        if was_unlocked:
            log.info("%s locked: %s", name, reason)
        return was_unlocked

    async def _end(self, name: str, environment: _Environment, reason: str) -> None:
        """An environment whose session ended, or that STS refused: locked, and the change kept in the background
        (the request path never waits on the keyring)."""
        await self._lock(name, reason)
        self._keep_soon()

    # -- restoring after a restart --------------------------------------------------------------------------------

    def restore(self, kept: Sequence[HeldSession]) -> None:
        """Take back what was kept before a restart: hold each MFA session that is still valid and unlock again, with
        no code, every environment that was unlocked with it and whose own end has not come. The roles are assumed
        in the background; whatever could not come back says why in its lock reason."""
        now = self._clock.now()
        for held in kept:
            if held.ends_at(self._offset) <= now:
                for unlock in held.unlocks:
                    self._mark_locked(unlock.environment, "the MFA session expired while the daemon was stopped")
                continue
            self._held[held.device] = replace(held, unlocks=())
            for unlock in held.unlocks:
                environment = self._environments.get(unlock.environment)
                if environment is None or Device.of(environment.spec) != held.device:
                    continue  # gone from the AWS config, or now using another source profile
                if unlock.ends_at <= now:
                    self._mark_locked(unlock.environment, "its session ended while the daemon was stopped")
                    continue
                environment.session = environment.session.apply(Unlocked(held.credentials, unlock.ends_at))
                environment.unlocked_at = unlock.unlocked_at
                log.info("%s unlocked again after a restart, until %s", unlock.environment, rfc3339(unlock.ends_at))
                self._start_renewal(unlock.environment, environment)
        self._keep_soon()

    def mark_all_locked(self, reason: str) -> None:
        """Why every locked environment is locked, when the daemon could not learn what it held before."""
        for name, environment in self._environments.items():
            if environment.session.state is State.LOCKED:
                self._mark_locked(name, reason)

    def _mark_locked(self, name: str, reason: str) -> None:
        environment = self._environments.get(name)
        if environment is not None and environment.session.state is State.LOCKED:
            environment.session = environment.session.apply(Locked(reason))

    # -- held MFA sessions ----------------------------------------------------------------------------------------

    def _hold(self, device: Device, mfa_session: MfaSession, granted: timedelta) -> None:
        candidate = HeldSession(device, mfa_session, granted)
        current = self._held.get(device)
        if current is None or candidate.supersedes(current, self._offset):
            self._held[device] = candidate

    def _users(self, device: Device) -> list[str]:
        return [
            name
            for name, environment in self._environments.items()
            if environment.session.state is not State.LOCKED and Device.of(environment.spec) == device
        ]

    def _forget_unused(self, device: Device) -> None:
        if device in self._held and not self._users(device):
            del self._held[device]
            log.info("forgot the MFA session for %s: no environment uses it", device)

    def _drop_ended_holds(self, now: datetime) -> bool:
        ended = [device for device, held in self._held.items() if held.ends_at(self._offset) <= now]
        for device in ended:
            del self._held[device]
            log.info("the MFA session for %s ended", device)
        return bool(ended)

    def _kept(self) -> list[HeldSession]:
        """What a restart should bring back: each held session, with the environments unlocked with it."""
        kept = []
        for device, held in sorted(self._held.items()):
            unlocks = tuple(
                KeptUnlock(name, environment.unlocked_at, environment.session.ends_at)
                for name, environment in sorted(self._environments.items())
                if environment.session.state is not State.LOCKED
                and Device.of(environment.spec) == device
                and environment.unlocked_at is not None
                and environment.session.ends_at is not None
            )
            kept.append(replace(held, unlocks=unlocks))
        return kept

    async def _keep(self) -> None:
        if self._keeper is not None:
            await self._keeper.keep(self._kept())

    def _keep_soon(self) -> None:
        """Keep the held sessions in the background, one write after another, each with the state of its moment."""
        if self._keeper is None:
            return
        previous = self._keeping

        async def keep() -> None:
            if previous is not None:
                await asyncio.wait({previous})
            await self._keep()

        self._keeping = asyncio.get_running_loop().create_task(keep())

    # -- the clock --------------------------------------------------------------------------------------------------

    def _learn_offset(self, sent: datetime, received: datetime, server: datetime | None) -> None:
        if server is None:
            return
        self._offset = measured_offset(sent, received, server)
        self._offset_known = True
        if worth_telling(self._offset) and not self._offset_told:
            self._offset_told = True
            log.warning(
                "the local clock is %s (measured from STS's answers): govuk-imds judges lifetimes on AWS's clock, "
                "but other tools may not; set the clock right (sudo timedatectl set-ntp true)",
                describe(self._offset),
            )

    @property
    def clock_offset(self) -> timedelta | None:
        """AWS's clock minus the local one, once an STS answer has said."""
        return self._offset if self._offset_known else None

    async def held_session(self, name: str) -> tuple[EnvironmentSpec, MfaSession, datetime]:
        """The environment's spec, its MFA session and when its session ends (on the local clock): for a one-off
        AssumeRole outside the served path (a console sign-in). Raises ``UnknownEnvironment``, or
        ``EnvironmentLocked`` (locking an ended one)."""
        environment = self._environments.get(name)
        if environment is None:
            raise UnknownEnvironment(name, self.names(), self._prefix)
        if has_ended(environment.session, self._clock.now(), self._offset):
            await self._end(name, environment, end_reason(environment.session, self._offset))
        session = environment.session
        end = session_end(session, self._offset)
        if session.state is State.LOCKED or session.mfa_session is None or end is None:
            raise EnvironmentLocked(name, session.problem)
        return environment.spec, session.mfa_session, end

    def refused_while_locked(self, name: str, client: str | None) -> None:
        """Remember that a client was answered "locked": most SDKs hide the answer's text from their user, so
        `status` is where a person learns which tool asked, and when."""
        environment = self._environments.get(name)
        if environment is not None:
            environment.refused_while_locked = (self._clock.now(), client)
            if self._on_locked_request is not None:
                self._on_locked_request(name, client)

    # -- background maintenance -----------------------------------------------------------------------------------

    async def tick(self) -> datetime | None:
        """Lock ended sessions, forget ended MFA sessions, start due renewals; return when something may next be
        due."""
        now, offset = self._clock.now(), self._offset
        upcoming: list[datetime] = []
        changed = self._drop_ended_holds(now)
        for name, environment in list(self._environments.items()):
            if has_ended(environment.session, now, offset):
                await self._lock(name, end_reason(environment.session, offset))
                changed = True
                continue
            if environment.renewal is None and renewal_due(environment.session, now, self._margin, offset):
                self._start_renewal(name, environment)
            moment = next_wakeup(environment.session, now, self._margin, offset)
            if moment is not None:
                upcoming.append(moment)
        upcoming += [held.ends_at(offset) for held in self._held.values()]
        if changed:
            self._keep_soon()
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
        """Forget every session in memory. What the keeper holds stays, so that a restart brings it back."""
        if self._keeping is not None:
            await asyncio.wait({self._keeping})
        for environment in self._environments.values():
            await self._cancel_renewal(environment)
            environment.session = Session(problem="the daemon stopped")
        self._held.clear()
        await self._cache.clear()

    # -- status ---------------------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = self._clock.now()
        return [self._describe(name, self._environments[name], now) for name in self.names()]

    def held_status(self) -> list[dict[str, Any]]:
        """The MFA sessions held, each with when it ends (on the local clock) and which environments use it."""
        return [
            {
                "source_profile": device.source_profile,
                "mfa_serial": device.mfa_serial,
                "ends": rfc3339(held.ends_at(self._offset)),
                "environments": sorted(self._users(device)),
            }
            for device, held in sorted(self._held.items())
        ]

    def _describe(self, name: str, environment: _Environment, now: datetime) -> dict[str, Any]:
        """One environment's state. Every time is on the local clock (AWS's expiries moved by the learned offset)."""
        session, offset = environment.session, self._offset
        credentials = session.credentials
        unlocked = session.state is not State.LOCKED
        return {
            "environment": name,
            "state": session.state.value,
            "session_ends": _iso(session_end(session, offset)),
            "mfa_session_ends": _iso(as_local(session.mfa_session.expiration, offset) if session.mfa_session else None),
            "credentials_expire": _iso(as_local(credentials.expiration, offset) if credentials else None),
            "served_until": _iso(servable_until(credentials, session, offset) if credentials and unlocked else None),
            "last_served": _iso(environment.last_served),
            "unlocked_at": _iso(environment.unlocked_at) if unlocked else None,
            "problem": session.problem,
            "ending_soon": ending_soon(session, now, offset),
            "role_arn": environment.spec.role_arn,
            "source_profile": environment.spec.source_profile,
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
            sent = self._clock.now()
            try:
                credentials = await self._issuer.assume_role(mfa_session, environment.spec)
            except SessionRejected as exc:
                environment.renewal = None
                if isinstance(exc, MfaSessionEnded):
                    self._held.pop(Device.of(environment.spec), None)  # no environment can use it again
                await self._end(name, environment, str(exc))
                return
            except GovukImdsError as exc:
                self._record_failure(name, environment, str(exc))
                return
            except Exception as exc:  # an adapter bug must not kill the environment's renewals for good
                log.exception("unexpected error while renewing %s", name)
                self._record_failure(name, environment, f"internal error: {type(exc).__name__}")
                return
            self._learn_offset(sent, self._clock.now(), credentials.server_time)
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
        if credentials is None:
            return
        until = servable_until(credentials, session, self._offset)
        ttl = (until - self._clock.now()).total_seconds() if until is not None else 0
        if ttl > 0:
            await self._cache.set(name, Served.of(credentials, self._offset), ttl=ttl)
        else:
            await self._cache.delete(name)


def _iso(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


def _refusal(refusal: tuple[datetime, str | None] | None) -> dict[str, str | None] | None:
    if refusal is None:
        return None
    moment, client = refusal
    return {"at": rfc3339(moment), "client": client}
