"""Logging for the daemon: one line per event, with secrets redacted whatever the level.

botocore logs request and response bodies (credentials, the MFA TokenCode) at DEBUG, so the libraries' loggers
are pinned to WARNING whatever the root level is, and every line passes a redacting formatter as a last guard:
key ids keep only their last four characters, long secret-looking strings and six-digit codes are removed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
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


# In a command line, a secret is also what follows an option or a name that says it is one (``--password x``,
# ``--secret-access-key=x``, ``AWS_SECRET_ACCESS_KEY=x``), an ``Authorization:`` header, or a URL's user info;
# those are removed whatever their length, on top of what ``redact`` removes.
_SECRET_NAME = r"[\w.-]*(?:secret|token|passw|pwd|credential|auth|api[_-]?key|access[_-]?key|code)[\w.-]*"  # noqa: S105
_SECRET_OPTION = re.compile(rf"-{{1,2}}{_SECRET_NAME}", re.IGNORECASE)
# A bare word like ``aws configure set aws_secret_access_key <value>``: only unmistakable names.
_SECRET_WORD = re.compile(r"[\w.-]*(?:secret|session_token|password)[\w.-]*", re.IGNORECASE)
_SECRET_ASSIGNMENT = re.compile(rf"((?:-{{1,2}})?{_SECRET_NAME}[=:])\s*\S.*", re.IGNORECASE)
# A quick look first: the assignment pattern backtracks on long words, and most arguments name no secret.
_SECRET_HINT = re.compile(r"secret|token|passw|pwd|credential|auth|key|code", re.IGNORECASE)
_URL_USER_INFO = re.compile(r"(://)[^/@\s]+@")


def redact_argv(argv: Sequence[str], keep: Callable[[str], bool] = lambda argument: False) -> list[str]:
    """A command line with anything that looks like a secret removed (``redact``, plus the rules above).

    ``keep`` spares arguments known not to be secrets, such as the absolute path of an existing file: a long
    script path would otherwise look like a token to ``redact``.
    """
    redacted: list[str] = []
    secret_follows = False
    for argument in argv:
        if secret_follows:
            redacted.append("[redacted]")
            secret_follows = False
            continue
        if _SECRET_OPTION.fullmatch(argument) or _SECRET_WORD.fullmatch(argument):
            secret_follows = True
            redacted.append(argument)
            continue
        cleaned = _SECRET_ASSIGNMENT.sub(r"\1[redacted]", argument) if _SECRET_HINT.search(argument) else argument
        cleaned = redact(_URL_USER_INFO.sub(r"\1[redacted]@", cleaned))
        redacted.append(argument if cleaned != argument and keep(argument) else cleaned)
    return redacted


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
