"""Per-environment bearer tokens: one random token per environment, in a 0600 file clients re-read on every fetch.

Tokens are kept in memory for the request path and compared in constant time on bytes. Files are written
atomically and with no trailing newline (a CR or LF in a token breaks every SDK). A token does not change when its
environment is locked: `env` also puts it in ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` for clients that never read the
file, and those must keep working across lock and unlock (docs/design.md, "Tokens").

A token outlives a daemon only when nobody else could have been sent it meanwhile (``start_serving_on``). While no
daemon listens, another local user can listen on the port and collect the token of every client that asks; a
daemon that bound the port itself cannot know whether that happened, so it starts with new tokens. One that
inherits the very socket its predecessor served on (held by systemd or launchd throughout) keeps them, and shells
holding a token keep working across the restart.
"""

from __future__ import annotations

import hmac
import secrets

from ..config.files import atomic_write, ensure_private_dir, read_private
from ..config.paths import RuntimePaths
from ..core.shapes import TOKEN
from ..errors import UnsafeRuntimeDir


def new_token() -> bytes:
    return secrets.token_urlsafe(32).encode("ascii")  # 32 random bytes, 43 URL-safe characters


class TokenStore:
    def __init__(self, paths: RuntimePaths) -> None:
        self._paths = paths
        self._tokens: dict[str, bytes] = {}

    def start_serving_on(self, listener: str | None) -> bool:
        """Called once at start with the socket the daemon serves on (``activation.identity``; ``None`` for one it
        bound itself); returns whether the previous daemon's tokens were kept.

        They are kept only if the previous daemon recorded the same socket: the port was then held without a gap.
        Otherwise every token file is removed, and each environment gets a new token from ``ensure``.
        """
        paths = self._paths
        ensure_private_dir(paths.tokens_dir)
        try:
            recorded: str | None = read_private(paths.listener_record).decode("ascii", "replace")
        except (FileNotFoundError, UnsafeRuntimeDir):
            recorded = None
        kept = listener is not None and recorded == listener
        if not kept:
            self._tokens.clear()
            for stale in paths.tokens_dir.iterdir():
                stale.unlink()
        if listener is None:
            paths.listener_record.unlink(missing_ok=True)
        else:
            atomic_write(paths.listener_record, listener.encode("ascii"))
        return kept

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

    def ensure_all(self, environments: list[str]) -> None:
        for environment in environments:
            self.ensure(environment)

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
