"""The daemon's part in `govuk-imds console`: fresh role credentials for one AWS console sign-in.

The served credentials will not do: they were assumed with ``DurationSeconds``, which AWS's federation endpoint
refuses for role credentials assumed with session credentials, and they may have only minutes left. So each
sign-in gets its own AssumeRole with the environment's MFA session and no ``DurationSeconds``, which STS answers
with one hour. The console session lasts exactly as long as those credentials, so it is refused when that hour
would outlast the MFA session the user unlocked. The credentials go to the CLI over the control socket (its peer
uid checked) and are not kept here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..core.clock import Clock, rfc3339
from ..core.credentials import RoleCredentials, TemporaryCredentials
from ..core.environment import EnvironmentSpec
from ..core.skew import NO_OFFSET, as_local
from ..core.timefmt import local_time, span
from ..errors import SessionEndsTooSoon
from .service import Service

log = logging.getLogger(__name__)

#: What STS gives an AssumeRole without DurationSeconds, and so how long a console session lasts.
CONSOLE_SESSION = timedelta(hours=1)


class ConsoleIssuer(Protocol):
    async def assume_role_for_console(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        ...


async def console_credentials(
    service: Service, issuer: ConsoleIssuer, clock: Clock, name: str, session_duration: timedelta
) -> dict[str, Any]:
    """Role credentials for one console sign-in, with whose they are and when the MFA session ends.

    ``session_duration`` is the environment's configured MFA session length, only to say what to change when it is
    too short for any console session.
    """
    spec, mfa_session, ends_at = await service.held_session(name)
    # Asked before AssumeRole, so a sign-in that would be refused costs no STS call...
    _refuse_past(name, clock.now() + CONSOLE_SESSION, ends_at, session_duration)
    credentials = await issuer.assume_role_for_console(mfa_session, spec)
    # ...and again with what STS actually gave (an expiry on AWS's clock; ends_at is on the local one).
    _refuse_past(name, as_local(credentials.expiration, service.clock_offset or NO_OFFSET), ends_at, session_duration)
    log.info("%s: role credentials for a console sign-in, valid until %s", name, rfc3339(credentials.expiration))
    return {
        "credentials": credentials.to_wire(),
        "role_arn": spec.role_arn,
        "account_id": credentials.account_id or spec.account_id,
        "session_ends": rfc3339(ends_at),
    }


def _refuse_past(name: str, console_ends: datetime, session_ends: datetime, session_duration: timedelta) -> None:
    if console_ends <= session_ends:
        return
    if session_duration <= CONSOLE_SESSION:
        raise SessionEndsTooSoon(
            f"{name}'s MFA sessions last {span(session_duration)}, and a console session lasts "
            f"{span(CONSOLE_SESSION)} and may not outlast one; set a session_duration over 1h for {name} in "
            "govuk-imds's config.toml to use the console"
        )
    raise SessionEndsTooSoon(
        f"{name}'s MFA session ends at {local_time(rfc3339(session_ends))}, before a console session would "
        f"({local_time(rfc3339(console_ends))}); run `govuk-imds unlock {name}` for a new session, then "
        f"`govuk-imds console {name}` again"
    )
