"""Reading the guard-rails of one ``[environments.<name>]`` table (``core/guards.py`` says what each one does).

Each key is optional; a wrong type or shape is one ``ConfigError`` naming the file, the table and the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from ..core.guards import Guards
from ..core.shapes import shown
from ..errors import ConfigError

GUARD_KEYS = frozenset({"confirm", "deny_callers", "lock_on_screen_lock", "idle_lock"})
#: A program's name as a process shows it: no directory, no spaces.
_PROGRAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_SHORTEST_IDLE_LOCK = timedelta(minutes=1)


def read_guards(table: Mapping[str, Any], where: str, parse_duration: Callable[[object, str], timedelta]) -> Guards:
    """The guard-rails in ``table`` (``where`` is ``<file>: environments.<name>``); defaults for absent keys."""
    idle_lock = None
    if "idle_lock" in table:
        idle_lock = parse_duration(table["idle_lock"], f"{where}.idle_lock")
        if idle_lock < _SHORTEST_IDLE_LOCK:
            raise ConfigError(f"{where}.idle_lock must be at least 1m")
    return Guards(
        confirm=_flag(table, "confirm", where),
        deny_callers=_programs(table.get("deny_callers", []), f"{where}.deny_callers"),
        lock_on_screen_lock=_flag(table, "lock_on_screen_lock", where),
        idle_lock=idle_lock,
    )


def _flag(table: Mapping[str, Any], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be true or false, not {shown(value)}")
    return value


def _programs(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f'{where} must be a list of program names, like ["npm", "pip"]')
    for item in value:
        if not isinstance(item, str) or not _PROGRAM.fullmatch(item):
            raise ConfigError(f"{where}: {shown(item)} is not a program name (a name like npm, no directory or spaces)")
    return tuple(dict.fromkeys(value))
