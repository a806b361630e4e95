"""The one line of ``state/<environment>`` in the runtime dir: whether an environment is unlocked, and until when.

    unlocked 1764530000 2025-11-30T19:13:20Z     (the MFA session's end, in epoch seconds for shells, and RFC 3339)
    locked

The daemon writes it (``daemon/state_files``); prompt segments read it with their shell's builtins, and the CLI reads
it to know without a round trip whether ``exec`` must unlock first. A missing file means locked.
"""

from __future__ import annotations

from datetime import datetime

from .clock import rfc3339


def state_line(unlocked_until: datetime | None) -> bytes:
    if unlocked_until is None:
        return b"locked\n"
    return f"unlocked {int(unlocked_until.timestamp())} {rfc3339(unlocked_until)}\n".encode("ascii")


def unlocked_until(line: bytes) -> int | None:
    """The end (epoch seconds) a ``state_line`` of an unlocked environment names; ``None`` for anything else."""
    words = line.split()
    if len(words) >= 2 and words[0] == b"unlocked" and words[1].isdigit():
        return int(words[1])
    return None
