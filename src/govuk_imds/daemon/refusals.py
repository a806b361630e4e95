"""What the endpoint turned away, counted and logged as one summary line per minute instead of one line each.

Three sources feed it: the request handler's refusals (a wrong Host, a browser header, a bad token...), requests
aiohttp's own parser rejects before our handler runs (a malformed request line, a second Host: aiohttp answers 400
and would log a traceback each), and connections the acceptor could not take or had to shed (out of descriptors,
the connection cap). A flood of any of them costs the log one line a minute.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

log = logging.getLogger(__name__)

REFUSAL_LOG_INTERVAL = 60.0
#: aiohttp's logger for requests it answers itself; "Error handling request" is how it reports a parser rejection.
AIOHTTP_SERVER_LOGGER = "aiohttp.server"
_AIOHTTP_REJECTION = "Error handling request"


class Refusals:
    """Counts refusals by code and logs one summary line per interval."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._last_logged = time.monotonic()

    def add(self, code: str) -> None:
        self._counts[code] += 1
        now = time.monotonic()
        if now - self._last_logged >= REFUSAL_LOG_INTERVAL:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self._counts:
            summary = ", ".join(f"{code} {count}" for code, count in sorted(self._counts.items()))
            log.warning("refused %d requests in the last interval: %s", sum(self._counts.values()), summary)
            self._counts.clear()
        self._last_logged = time.monotonic() if now is None else now

    def absorb_aiohttp_rejections(self) -> None:
        """Count the requests aiohttp's parser rejects (it answers them 400 itself) instead of logging each one
        with a traceback; drop everything else that logger says (premature disconnections and the like)."""
        logger = logging.getLogger(AIOHTTP_SERVER_LOGGER)
        logger.setLevel(logging.DEBUG)  # a rejection on a fresh connection is reported at DEBUG
        logger.addFilter(self._count_rejection)

    def _count_rejection(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(_AIOHTTP_REJECTION):
            self.add("MalformedRequest")
        return False
