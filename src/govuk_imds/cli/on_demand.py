"""Unlocking on demand: ``exec``, ``env``, ``shell`` and ``console`` on a locked environment unlock it first, the
way ``unlock`` does (the held MFA session when it serves, else a code from ``mfa_process`` or the terminal), then
go on. ``--no-unlock`` keeps the old behaviour for scripts.

Whether the environment is locked comes from the state file the daemon keeps for prompt segments (no round trip
to the daemon on the common, unlocked path). Everything said goes to stderr and the prompt to the terminal: stdout
is the command's, or (``env``) what the shell evals. With no way to ask (no mfa_process, no terminal) the command
goes on as before and says the environment is locked. Light at import: the unlock's heavy parts load only when an
unlock happens.
"""

from __future__ import annotations

import sys
import time

from ..config.aws_config import Environments
from ..config.settings import Settings
from ..core.environment import EnvironmentSpec
from ..daemon.state_files import unlocked_until

NO_UNLOCK_HELP = "do not unlock a locked environment first (for scripts: the command runs, and its tools are refused)"


def unlock_if_locked(settings: Settings, environments: Environments, spec: EnvironmentSpec, *, wanted: bool) -> int:
    """0 once ``spec`` is unlocked (or when unlocking was not wanted, or cannot happen here); else the failed
    unlock's exit status (it has said why)."""
    if not wanted or not settings.runtime.control_socket.exists():
        return 0  # no daemon: the command says so itself
    if _unlocked(settings, spec.name):
        return 0
    status = unlock_now(settings, environments, spec)
    if status is None:
        print(
            f"govuk-imds: warning: {spec.name} is locked, and there is no terminal to ask for an MFA code on and no "
            f"mfa_process; run `govuk-imds unlock {spec.name}`",
            file=sys.stderr,
        )
        return 0
    return status


def unlock_now(settings: Settings, environments: Environments, spec: EnvironmentSpec) -> int | None:
    """Unlock ``spec``: its exit status, or ``None`` when there is no way to get a code here."""
    from .codes import on_demand_sources
    from .sessions import unlock

    sources = on_demand_sources(settings, spec)
    if sources is None:
        return None
    print(f"{spec.name} is locked; unlocking it first", file=sys.stderr)
    return unlock(settings, environments, [spec], sources, out=sys.stderr)


def _unlocked(settings: Settings, name: str) -> bool:
    try:
        line = settings.runtime.environment_state(name).read_bytes()[:200]
    except OSError:
        return False  # no file: locked
    end = unlocked_until(line)
    return end is not None and end > time.time()
