"""The offset between the local clock and AWS's, learned from STS's answers, and what it changes.

Every expiry STS writes (role credentials, MFA sessions) is on AWS's clock; a laptop's clock may be minutes or hours
off. The daemon learns ``offset = AWS's clock - the local clock`` from the ``Date`` header of each STS answer and
judges lifetimes with it: an expiry AWS wrote happens, on the local clock, at ``expiry - offset`` (``as_local``).
Spans measured on one clock (an unlock's ``session_duration``) need no correction. Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .timefmt import span

NO_OFFSET = timedelta(0)
#: An offset at least this large is worth telling a person about (`status`, `doctor`, one WARNING in the log), and
#: is applied to the ``Expiration`` served to clients, which judge expiry on the local clock. Below it the ``Date``
#: header's one-second resolution and the network's round trip are most of what is measured.
SKEW_TOLERANCE = timedelta(minutes=1)
#: A ``Date`` header names a whole second: the true time lies somewhere in that second, on average half-way.
_HALF_SECOND = timedelta(milliseconds=500)


def server_time(date_header: object) -> datetime | None:
    """AWS's time from an HTTP ``Date`` header (RFC 7231), or None if there is none or it is not a date."""
    if not isinstance(date_header, str) or not date_header:
        return None
    # Here, not at the top: email.utils costs every light command several ms, and only the daemon calls this.
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC) + _HALF_SECOND


def measured_offset(sent: datetime, received: datetime, server: datetime) -> timedelta:
    """AWS's clock minus the local clock, from one exchange: the server's time against the local time half-way
    between sending the request and receiving the answer."""
    return server - (sent + (received - sent) / 2)


def as_local(aws_moment: datetime, offset: timedelta) -> datetime:
    """The local clock's reading at the moment AWS's clock reads ``aws_moment``."""
    return aws_moment - offset


def worth_telling(offset: timedelta) -> bool:
    return abs(offset) >= SKEW_TOLERANCE


def for_clients(offset: timedelta) -> timedelta:
    """The offset applied to the ``Expiration`` handed to clients: none unless it is worth telling, so a correct
    clock gets STS's own value unchanged."""
    return offset if worth_telling(offset) else NO_OFFSET


def describe(offset: timedelta) -> str:
    """``35 min 0 s ahead of AWS`` / ``2 h 0 min behind AWS``: how the local clock stands against AWS's."""
    direction = "ahead of" if offset < NO_OFFSET else "behind"
    return f"{span(offset)} {direction} AWS"
