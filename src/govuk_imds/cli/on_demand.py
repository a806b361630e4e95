"""Unlocking on demand: ``exec``, ``env``, ``shell`` and ``console`` on a locked environment unlock it first, then
go on. ``--no-unlock`` keeps the old behaviour for scripts.

Whether the environment is locked comes from the state file the daemon keeps for prompt segments (no round trip
to the daemon on the common, unlocked path). The unlock is ``govuk-imds unlock ENV`` in a process of its own, the
command a person would type: the held MFA session when it serves, else ``mfa_process`` or a prompt on the
terminal. So the process that goes on to run the person's command (or shell) never holds the long-term key, and
never needs ``unlock``'s hardening, which its command would inherit. The unlock's stdin is ``/dev/null`` (stdin is
the command's: ``... | govuk-imds exec production -- psql`` must not lose a line), its prompt goes to the terminal
and its words to stderr (``env``'s stdout is what the shell evals). With no way to ask (no mfa_process, no
terminal) the command goes on as before and says the environment is locked.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from ..config.settings import Settings
from ..core.environment import EnvironmentSpec
from ..core.state_line import unlocked_until

NO_UNLOCK_HELP = "do not unlock a locked environment first (for scripts: the command runs, and its tools are refused)"


def unlock_if_locked(settings: Settings, spec: EnvironmentSpec, *, wanted: bool) -> int:
    """0 once ``spec`` is unlocked (or when unlocking was not wanted, or cannot happen here); else the failed
    unlock's exit status (it has said why). ``wanted`` is false for ``--no-unlock``, and when no daemon listens
    (the caller has checked the runtime dir and asked the control socket; the command then says so itself)."""
    if not wanted:
        return 0
    if _unlocked(settings, spec.name):
        return 0
    status = unlock_now(settings, spec)
    if status is None:
        print(
            f"govuk-imds: warning: {spec.name} is locked, and there is no terminal to ask for an MFA code on and no "
            f"mfa_process; run `govuk-imds unlock {spec.name}`",
            file=sys.stderr,
        )
        return 0
    return status


def unlock_now(settings: Settings, spec: EnvironmentSpec) -> int | None:
    """Run ``govuk-imds unlock`` for ``spec``: its exit status, or ``None`` when there is no way to get a code."""
    from .codes import can_ask

    if not can_ask(settings, spec):
        return None
    print(f"{spec.name} is locked; unlocking it first", file=sys.stderr, flush=True)
    argv = [sys.executable, "-m", "govuk_imds", "--config", str(settings.config_file), "unlock", spec.name]
    unlock = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=2)  # what it says goes where ours does
    # Ctrl-C at its prompt reaches both processes (one foreground group): the unlock answers it, and says so.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return unlock.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def _unlocked(settings: Settings, name: str) -> bool:
    try:
        line = settings.runtime.environment_state(name).read_bytes()[:200]
    except OSError:
        return False  # no file: locked
    end = unlocked_until(line)
    return end is not None and end > time.time()
