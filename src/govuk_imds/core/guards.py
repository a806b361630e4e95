"""An environment's guard-rails, as a user writes them under ``[environments.<name>]`` in config.toml, and the
rules for the two locks that happen without the user typing ``lock``.

- ``confirm``: ``exec``, ``console`` (and ``shell``) ask before running with this environment's credentials;
- ``deny_callers``: programs (with their children) that never get this environment's credentials
  (``core/callers.py``);
- ``lock_on_screen_lock``: lock when the screen locks or the session goes idle (``daemon/screen_lock.py``);
- ``idle_lock``: lock after this long without a request (``daemon/idle.py``).

Pure: no I/O, every function takes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .timefmt import span

#: What ``deny_callers`` means for production in the docs' recommended config: package managers and build tools
#: that run code fetched from the network (install scripts, build scripts, ``go run``).
RECOMMENDED_DENY_CALLERS = ("npm", "npx", "yarn", "pnpm", "pip", "uv", "poetry", "gem", "bundle", "cargo", "go")


@dataclass(frozen=True)
class Guards:
    confirm: bool = False
    deny_callers: tuple[str, ...] = ()
    lock_on_screen_lock: bool = False
    idle_lock: timedelta | None = None


NO_GUARDS = Guards()
#: What happened, as a screen lock's reason says it ("locked because the screen locked at 14:02").
SCREEN_LOCKED = "the screen locked"
SESSION_IDLE = "the session went idle"


def idle_lock_at(
    limit: timedelta | None, unlocked_at: datetime | None, last_served: datetime | None
) -> datetime | None:
    """When an unlocked environment locks for want of requests: ``limit`` after the later of its unlock and its
    last answered request; None without a limit or while locked (``unlocked_at`` is None then)."""
    if limit is None or unlocked_at is None:
        return None
    last = unlocked_at if last_served is None else max(unlocked_at, last_served)
    return last + limit


def idle_lock_reason(limit: timedelta) -> str:
    """``locked after 4 h without a request``: shown by ``status`` and in the endpoint's 423."""
    return f"locked after {_short(limit)} without a request"


def screen_lock_reason(event: str, at: datetime) -> str:
    """``locked because the screen locked at 14:02`` (``event`` is what happened: "the screen locked", "the session
    went idle"), in the daemon's local time."""
    return f"locked because {event} at {at.astimezone().strftime('%H:%M')}"


def _short(duration: timedelta) -> str:
    return span(duration).removesuffix(" 0 min").removesuffix(" 0 s")
