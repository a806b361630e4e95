"""Per-environment bearer tokens: one random token per environment, in a 0600 file clients re-read on every fetch.

Tokens are kept in memory for the request path and compared in constant time on bytes. Files are written
atomically and with no trailing newline (a CR or LF in a token breaks every SDK). A token does not change when its
environment is locked: `env` also puts it in ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` for clients that never read the
file, and those must keep working across lock and unlock (docs/design.md, "Tokens"). Existing token files are
reused when the daemon restarts, so shells that already hold them keep working.
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
        """Load the environment's token from its file, or create one if there is none usable. For a token already
        held, put its file back if it went missing or was changed: the same token, so copies of it keep working."""
        ensure_private_dir(self._paths.tokens_dir)
        path = self._paths.token_file(environment)
        try:
            token = read_private(path)
        except FileNotFoundError:
            token = b""
        held = self._tokens.get(environment)
        if held is not None:
            if not hmac.compare_digest(token, held):
                atomic_write(path, held)
            return
        if not TOKEN.fullmatch(token):
            token = new_token()
            atomic_write(path, token)
        self._tokens[environment] = token

    def rotate(self, environment: str) -> None:
        """Give the environment a fresh token: clients that re-read the file pick it up on their next fetch; those
        holding it in ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` are refused until their shell runs `env` again."""
        ensure_private_dir(self._paths.tokens_dir)
        token = new_token()
        atomic_write(self._paths.token_file(environment), token)
        self._tokens[environment] = token

    def matches(self, environment: str, presented: bytes) -> bool:
        expected = self._tokens.get(environment)
        if expected is None:
            return False
        return hmac.compare_digest(expected, presented)
