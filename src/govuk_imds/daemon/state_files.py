"""One small file per environment, ``state/<environment>`` in the runtime dir, saying whether it is unlocked.

Prompt segments and status lines read it with their shell's own builtins, so a prompt never starts Python. The
service calls ``changed`` whenever an environment is unlocked or locked; the daemon clears the directory when it
starts and stops, and a missing file means locked. One line (``core/state_line``), written atomically with mode 0600.
Nothing secret is in it. Writing it must never break an unlock or a lock: a failure is logged and forgotten.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ..config.files import atomic_write, ensure_private_dir
from ..config.paths import RuntimePaths
from ..core.state_line import state_line
from ..errors import GovukImdsError

log = logging.getLogger(__name__)


class StateFiles:
    def __init__(self, paths: RuntimePaths) -> None:
        self._paths = paths

    def changed(self, environment: str, unlocked_until: datetime | None) -> None:
        """The service's callback: ``unlocked_until`` is the MFA session's end, or ``None`` when locked."""
        try:
            ensure_private_dir(self._paths.states_dir)
            atomic_write(self._paths.environment_state(environment), state_line(unlocked_until))
        except (OSError, GovukImdsError) as exc:
            log.warning("could not record %s's state for prompts: %s", environment, exc)

    def clear(self) -> None:
        """Forget every environment's state (the daemon starts with nothing unlocked, and stops so)."""
        directory = self._paths.states_dir
        try:
            entries = list(directory.iterdir()) if directory.is_dir() and not directory.is_symlink() else []
            for entry in entries:
                entry.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not clear the prompt state files: %s", exc)
