"""Logging for the daemon: one line per event, with secrets redacted whatever the level.

botocore logs request and response bodies (credentials, the MFA TokenCode) at DEBUG, so the libraries' loggers
are pinned to WARNING whatever the root level is, and every line passes a redacting formatter as a last guard:
key ids keep only their last four characters, long secret-looking strings and six-digit codes are removed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TextIO

NOISY_LIBRARIES = (
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "aiohttp",
    "aiocache",
    "asyncio",
    "keyring",
    "secretstorage",
)
_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12}([A-Z0-9]{4})\b")
_LONG_SECRET = re.compile(r"[A-Za-z0-9/+=_-]{32,}")
# Six digits standing alone (an MFA code), even next to punctuation, but not inside longer numbers or versions.
_SIX_DIGITS = re.compile(r"(?<![\d.,])\d{6}(?!\d|[.,:-]\d)")


def redact(text: str) -> str:
    text = _KEY_ID.sub(lambda match: f"…{match.group(1)}", text)
    text = _LONG_SECRET.sub("[redacted]", text)
    return _SIX_DIGITS.sub("[redacted]", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str, stream: TextIO, environ: Mapping[str, str]) -> None:
    """Set up the root logger; under systemd (``JOURNAL_STREAM``) leave time stamps to the journal."""
    if environ.get("JOURNAL_STREAM"):
        layout = "%(levelname)s %(name)s: %(message)s"
    else:
        layout = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(layout))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    # aiohttp logs a traceback for every malformed request its parser rejects: a flood of them would flood the
    # log. Our own middleware logs real handler errors, so this logger has nothing else worth keeping.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
