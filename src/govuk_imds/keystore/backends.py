"""The long-term key store on the OS keyring that ``selection`` chooses: what the CLI's key commands open.

The daemon never imports this module (tests/test_layout.py): it holds MFA sessions through ``sessions`` only.
"""

from __future__ import annotations

from .selection import choose_backend
from .store import KeyringStore


def open_keyring(configured_backend: str | None = None) -> KeyringStore:
    """The long-term key store on the first usable backend from the platform's allowlist, or on the one our own
    config names (``selection.choose_backend``)."""
    return KeyringStore(choose_backend(configured_backend))
