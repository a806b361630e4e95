"""Times and spans written for a person: one rule for every command that prints one.

Machines get RFC 3339 (``core.clock.rfc3339``); people get their local clock time, with the date only when it is not
today, and spans in hours, minutes and seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .clock import parse_rfc3339


def local_time(timestamp: object, today: datetime | None = None) -> str:
    """``14:05:09`` today, ``2026-12-01 14:05`` on another day, ``-`` for none; text that is not a time is kept."""
    if not isinstance(timestamp, str) or not timestamp:
        return "-"
    try:
        moment = parse_rfc3339(timestamp).astimezone()
    except ValueError:
        return timestamp
    reference = (today or datetime.now()).astimezone()
    if moment.date() == reference.date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def span(duration: timedelta) -> str:
    """``2 h 5 min``, ``4 min 30 s``, ``12 s``: the size of a span, whatever its sign."""
    seconds = round(abs(duration).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"
