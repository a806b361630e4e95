"""Per-environment bearer tokens: one random token per environment, in a 0600 file clients re-read on every fetch.

Tokens are kept in memory for the request path and compared in constant time on bytes. Files are written
atomically and with no trailing newline (a CR or LF in a token breaks every SDK). Existing token files are reused
when the daemon restarts, so shells that already point at them keep working.
"""

from __future__ import annotations

import hmac
import secrets

from ..config.files import atomic_write, ensure_private_dir, read_private
from ..config.paths import RuntimePaths
from ..core.shapes import TOKEN


def new_token() -> bytes:
    return secrets.token_urlsafe(32).encode("ascii")  # 32 random bytes, 43 URL-safe characters


class TokenStore:
    def __init__(self, paths: RuntimePaths) -> None:
        self._paths = paths
        self._tokens: dict[str, bytes] = {}

    def ensure(self, environment: str) -> None:
        """Load the environment's token from its file, or create one if there is none usable."""
        if environment in self._tokens:
            return
        ensure_private_dir(self._paths.tokens_dir)
        path = self._paths.token_file(environment)
        try:
            token = read_private(path)
        except FileNotFoundError:
            token = b""
        if not TOKEN.fullmatch(token):
            token = new_token()
            atomic_write(path, token)
        self._tokens[environment] = token

    def rotate(self, environment: str) -> None:
        """Give the environment a fresh token; clients pick it up on their next fetch."""
        ensure_private_dir(self._paths.tokens_dir)
        token = new_token()
        atomic_write(self._paths.token_file(environment), token)
        self._tokens[environment] = token

    def matches(self, environment: str, presented: bytes) -> bool:
        expected = self._tokens.get(environment)
        if expected is None:
            return False
        return hmac.compare_digest(expected, presented)
