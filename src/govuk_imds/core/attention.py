"""When a tool asks for a locked environment: how the daemon tells the person at the screen, and how often.

The tool itself always gets the immediate 423 (a request never waits for a person). Besides that, per
``prompt`` in config.toml: ``notify`` shows a desktop notification naming the environment and the command to run;
``gui`` starts ``govuk-imds unlock ENV --prompt gui`` (a GUI prompt, or ``mfa_process``), so the tool's next retry
succeeds; ``off`` does neither. Either happens at most once per environment per ``REMIND_EVERY``: a tool retrying
in a loop must not flood the desktop with bubbles or dialogs, and a dialog the person cancelled stays away a while.

Pure: the caller passes the time and does the I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

REMIND_EVERY = timedelta(minutes=5)


class Action(enum.Enum):
    NOTIFY = "notify"
    PROMPT = "prompt"  # start `govuk-imds unlock ENV --prompt gui`
    NOTHING = "nothing"


@dataclass(frozen=True)
class Response:
    action: Action
    #: Whether the unlock the daemon starts may get its code from ``mfa_process`` (else only from a person typing).
    mfa_process: bool = False


def response(mode: str, fresh_code: bool) -> Response:
    """What to do for a locked environment, by ``prompt`` mode.

    An environment with ``fresh_code = true`` is never unlocked without a person typing or touching. The daemon's
    unlock may show a GUI prompt (someone types), but may not run ``mfa_process`` for it: a YubiKey account without
    the touch policy, or a TOTP program, hands out a code with nobody there, and a tool on an unattended laptop
    would then open production by itself.
    """
    if mode == "gui":
        return Response(Action.PROMPT, mfa_process=not fresh_code)
    if mode == "notify":
        return Response(Action.NOTIFY)
    return Response(Action.NOTHING)


@dataclass
class Reminders:
    """At most one reminder per environment per ``interval``."""

    interval: timedelta = REMIND_EVERY
    _last: dict[str, datetime] = field(default_factory=dict)

    def due(self, environment: str, now: datetime) -> bool:
        """Whether to remind now; if so, the interval starts again. A clock that jumped back counts as due."""
        last = self._last.get(environment)
        if last is not None and last <= now < last + self.interval:
            return False
        self._last[environment] = now
        return True


def locked_notice(environment: str, client: str | None) -> tuple[str, str]:
    """The notification for a refused tool: summary and body (plain text)."""
    who = f"{client} was" if client else "A tool was"
    return (
        f"govuk-imds: {environment} is locked",
        f"{who} refused {environment}'s credentials. Unlock it in a terminal: govuk-imds unlock {environment}",
    )


def unlocked_notice(environment: str) -> tuple[str, str]:
    return f"govuk-imds: {environment} unlocked", f"{environment} was unlocked; the tool's next try gets credentials."


def failed_notice(environment: str, line: str) -> tuple[str, str]:
    """The unlock the daemon started did not unlock: ``line`` is its own one-line message (no code is ever in it)."""
    return f"govuk-imds: {environment} stays locked", line or f"Run `govuk-imds unlock {environment}` in a terminal."


def client_label(user_agent: str | None) -> str | None:
    """The first word of a User-Agent (``aws-cli/1.32.0``), short: enough to say which tool it was."""
    if not user_agent or not user_agent.split():
        return None
    return user_agent.split()[0][:60]
