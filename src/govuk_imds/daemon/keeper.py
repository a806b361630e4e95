"""Keeping the held MFA sessions across a restart of the daemon, in the OS keyring, without ever depending on it.

A keyring the daemon cannot reach (locked at boot, blocked by a sandbox, none installed, hung) never stops the
daemon: the sessions are then simply not kept, the reason is logged once at WARNING and shown by `status`, and every
later change tries again (a keyring locked at boot may be unlocked later). Keyring calls run in a worker thread, each
with the keystore's own timeout, one after another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ..core.held import HeldSession
from ..keystore.sessions import SessionStore

log = logging.getLogger(__name__)


class SessionKeeper:
    """The service's ``Keeper`` on a ``SessionStore``; ``problem`` says why sessions are not being kept, if they
    are not."""

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self._writing = asyncio.Lock()
        self.problem: str | None = None

    async def load(self) -> list[HeldSession] | None:
        """What an earlier daemon kept; None (and ``problem`` set) if the keyring could not be read."""
        try:
            kept = await asyncio.to_thread(self._store.load)
        except Exception as exc:  # whatever a keyring backend raises, the daemon goes on without it
            self._failed(exc)
            return None
        self._succeeded()
        return kept

    async def keep(self, sessions: Sequence[HeldSession]) -> None:
        async with self._writing:
            try:
                await asyncio.to_thread(self._store.save, list(sessions))
            except Exception as exc:  # as above: never let the keyring stop an unlock, a lock or the daemon
                self._failed(exc)
                return
            self._succeeded()

    def _failed(self, exc: Exception) -> None:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self.problem is None:
            log.warning("MFA sessions are not kept across a restart of the daemon: %s", reason)
        self.problem = reason

    def _succeeded(self) -> None:
        if self.problem is not None:
            log.info("MFA sessions are kept in the keyring again")
        self.problem = None
