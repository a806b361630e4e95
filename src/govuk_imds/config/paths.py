"""Where govuk-imds keeps its files: the runtime dir's contents, the config file and the state dir (the audit record).

The runtime dir holds the control socket, the token files, a small state file (pid, port), one line per
environment saying whether it is unlocked (for prompt segments) and the background daemon's log. How those files
are written and read safely is ``files``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .locations import APP, runtime_dir


@dataclass(frozen=True)
class RuntimePaths:
    root: Path

    @property
    def control_socket(self) -> Path:
        return self.root / "control.sock"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def tokens_dir(self) -> Path:
        return self.root / "tokens"

    @property
    def log_file(self) -> Path:
        return self.root / "daemon.log"

    @property
    def listener_record(self) -> Path:
        """Which listening socket the last daemon served on (``daemon.tokens`` keeps tokens only on the same one)."""
        return self.root / "listener"

    def token_file(self, environment: str) -> Path:
        return self.tokens_dir / environment

    @property
    def states_dir(self) -> Path:
        return self.root / "state"

    def environment_state(self, environment: str) -> Path:
        """``unlocked <epoch> <RFC 3339>`` or ``locked``: what prompt segments read (``daemon/state_files.py``)."""
        return self.states_dir / environment


def default_runtime_dir(environ: Mapping[str, str]) -> Path:
    return Path(runtime_dir(environ))


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """Where govuk-imds keeps what must outlive a reboot but is not configuration: the audit record.

    ``$GOVUK_IMDS_STATE_DIR`` if set; on Linux ``$XDG_STATE_HOME/govuk-imds`` (``~/.local/state/govuk-imds``), the
    XDG place for logs and history; on macOS ``~/Library/Logs/govuk-imds``, where Console.app shows logs.
    """
    explicit = environ.get("GOVUK_IMDS_STATE_DIR")
    if explicit:
        return Path(explicit)
    home = Path(environ.get("HOME", "~")).expanduser()
    if sys.platform == "darwin":
        return home / "Library" / "Logs" / APP
    return Path(environ.get("XDG_STATE_HOME") or home / ".local" / "state") / APP


def default_config_file(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("GOVUK_IMDS_CONFIG")
    if explicit:
        return Path(explicit)
    if sys.platform == "darwin":
        base = Path(environ.get("HOME", "~")).expanduser() / "Library" / "Application Support"
    else:
        base = Path(environ.get("XDG_CONFIG_HOME") or Path(environ.get("HOME", "~")).expanduser() / ".config")
    return base / APP / "config.toml"
