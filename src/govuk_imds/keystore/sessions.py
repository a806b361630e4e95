"""The MFA sessions the daemon keeps across its own restarts, in the OS keyring, and never in a file.

One keyring entry, service ``govuk-imds-mfa-session`` (never ``govuk-imds``, where long-term keys live), user
``held``: a JSON document with each held MFA session's temporary credentials, the lifetime it was made for, and the
environments unlocked with it (when, and until when on the local clock). Removing the last session removes the
entry. This store touches no other service name, and this module imports nothing that reads a long-term key: it is
the one keystore module the daemon uses (tests/test_layout.py). Every call runs with a timeout (``timeouts``).

This module must never print or log a secret.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol

from ..core.clock import parse_rfc3339, rfc3339
from ..core.credentials import MfaSession
from ..core.held import Device, HeldSession, KeptUnlock
from ..errors import InvalidInput, KeyringUnavailable
from .selection import choose_backend
from .timeouts import with_timeout

SERVICE_NAME = "govuk-imds-mfa-session"
ENTRY = "held"
_VERSION = 1


class SessionStore(Protocol):
    """Where the daemon keeps held MFA sessions. Every implementation passes tests/keystore/test_session_store.py."""

    def load(self) -> list[HeldSession]:
        """What was kept; raises ``KeyringUnavailable`` if the keyring cannot be read or the entry is damaged."""
        ...

    def save(self, sessions: Sequence[HeldSession]) -> None:
        """Keep exactly these (none: remove the entry)."""
        ...


class MemorySessionStore:
    """A store for tests of code that needs one; the product never picks it."""

    def __init__(self) -> None:
        self.document: str | None = None

    def load(self) -> list[HeldSession]:
        return [] if self.document is None else from_document(self.document)

    def save(self, sessions: Sequence[HeldSession]) -> None:
        self.document = to_document(sessions) if sessions else None


class KeyringSessionStore:
    """A ``SessionStore`` on the OS keyring chosen by ``selection`` (opened on first use, and again after a failure:
    a keyring locked at boot may be unlocked later)."""

    def __init__(self, configured_backend: str | None = None, *, backend: Any = None) -> None:
        self._configured = configured_backend
        self._backend = backend

    def _open(self) -> Any:
        if self._backend is None:
            self._backend = choose_backend(self._configured)
        return self._backend

    def load(self) -> list[HeldSession]:
        backend = self._open()
        stored = with_timeout(lambda: backend.get_password(SERVICE_NAME, ENTRY))
        return [] if stored is None else from_document(stored)

    def save(self, sessions: Sequence[HeldSession]) -> None:
        backend = self._open()
        if sessions:
            document = to_document(sessions)
            with_timeout(lambda: backend.set_password(SERVICE_NAME, ENTRY, document))
            return

        def delete() -> None:
            from keyring.errors import PasswordDeleteError

            with contextlib.suppress(PasswordDeleteError):  # already gone
                backend.delete_password(SERVICE_NAME, ENTRY)

        with_timeout(delete)


def to_document(sessions: Sequence[HeldSession]) -> str:
    return json.dumps(
        {
            "version": _VERSION,
            "sessions": [
                {
                    "source_profile": held.device.source_profile,
                    "mfa_serial": held.device.mfa_serial,
                    "credentials": held.credentials.to_wire(),
                    "granted_seconds": int(held.granted.total_seconds()),
                    "unlocks": [
                        {
                            "environment": unlock.environment,
                            "unlocked_at": rfc3339(unlock.unlocked_at),
                            "ends_at": rfc3339(unlock.ends_at),
                        }
                        for unlock in held.unlocks
                    ],
                }
                for held in sessions
            ],
        }
    )


def from_document(text: str) -> list[HeldSession]:
    """The kept sessions; ``KeyringUnavailable`` for an entry that is not ours or is damaged."""
    try:
        document = json.loads(text)
        if document.get("version") != _VERSION:
            raise ValueError("unknown version")
        return [
            HeldSession(
                Device(_text(item["source_profile"]), _text(item["mfa_serial"])),
                MfaSession.from_wire(item["credentials"]),
                timedelta(seconds=int(item["granted_seconds"])),
                tuple(
                    KeptUnlock(
                        _text(unlock["environment"]),
                        parse_rfc3339(_text(unlock["unlocked_at"])),
                        parse_rfc3339(_text(unlock["ends_at"])),
                    )
                    for unlock in item["unlocks"]
                ),
            )
            for item in document["sessions"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
        raise KeyringUnavailable(f"the keyring entry {SERVICE_NAME!r} is damaged") from exc


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value
