"""Where long-term key pairs are kept: the ``SecretStore`` contract and its two implementations.

``KeyringStore`` keeps each source profile's key pair as one keyring entry (service ``govuk-imds``, user = the source
profile), plus an index entry, because backends such as the macOS Keychain cannot enumerate. Every call goes through
``timeouts.with_timeout``. ``MemoryStore`` is for tests of code that needs a store. Every implementation passes the
contract tests in tests/keystore/test_store_contract.py.

This module must never print or log a secret.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from typing import Any, Protocol

from ..core.credentials import LongTermKey
from ..errors import InvalidInput, KeyringUnavailable
from .selection import dotted_name
from .timeouts import with_timeout

SERVICE_NAME = "govuk-imds"
#: Where the list of stored source profiles is kept: backends such as the macOS Keychain cannot enumerate entries.
INDEX_SERVICE_NAME = "govuk-imds-index"
INDEX_ENTRY = "source-profiles"

log = logging.getLogger(__name__)


class SecretStore(Protocol):
    """Where source profiles' long-term keys live. Every implementation passes tests/keystore/test_store_contract.py."""

    def get(self, source_profile: str) -> LongTermKey | None: ...
    def holds(self, source_profile: str) -> bool:
        """Whether a key is stored, without reading the secret where the backend allows: the CLI asks this before
        the MFA prompt and reads the key itself only once it needs it."""
        ...

    def put(self, source_profile: str, key: LongTermKey) -> None: ...
    def delete(self, source_profile: str) -> bool: ...
    def list_profiles(self) -> list[str]: ...


class MemoryStore:
    """A store for tests of code that needs one; the product never picks it."""

    backend_name = "memory"

    def __init__(self) -> None:
        self._keys: dict[str, LongTermKey] = {}

    def get(self, source_profile: str) -> LongTermKey | None:
        return self._keys.get(source_profile)

    def holds(self, source_profile: str) -> bool:
        return source_profile in self._keys

    def put(self, source_profile: str, key: LongTermKey) -> None:
        self._keys[source_profile] = key

    def delete(self, source_profile: str) -> bool:
        return self._keys.pop(source_profile, None) is not None

    def list_profiles(self) -> list[str]:
        return sorted(self._keys)


class KeyringStore:
    """A ``SecretStore`` on one keyring backend. Entries: service ``govuk-imds``, user = the source profile."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    @property
    def backend_name(self) -> str:
        return dotted_name(type(self._backend))

    def get(self, source_profile: str) -> LongTermKey | None:
        stored = with_timeout(lambda: self._backend.get_password(SERVICE_NAME, source_profile))
        if stored is None:
            return None
        try:
            return LongTermKey.from_json(json.loads(stored))
        except (ValueError, InvalidInput) as exc:
            raise KeyringUnavailable(
                f"the keyring entry for {source_profile!r} is damaged; run `govuk-imds add {source_profile}` again"
            ) from exc

    def holds(self, source_profile: str) -> bool:
        """The Secret Service finds entries by their attributes without handing over a secret; elsewhere our index
        says, and only an entry missing from the index (written by an older version) costs a read."""
        if self._search({"username": source_profile}) or source_profile in self._read_index():
            return True
        return self.get(source_profile) is not None

    def put(self, source_profile: str, key: LongTermKey) -> None:
        document = json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key})
        with_timeout(lambda: self._backend.set_password(SERVICE_NAME, source_profile, document))
        index = self._read_index()
        if source_profile not in index:
            self._write_index([*index, source_profile])

    def delete(self, source_profile: str) -> bool:
        from keyring.errors import PasswordDeleteError

        def delete() -> bool:
            try:
                self._backend.delete_password(SERVICE_NAME, source_profile)
            except PasswordDeleteError:
                return False
            return True

        deleted = with_timeout(delete)
        index = self._read_index()
        if source_profile in index:
            self._write_index([name for name in index if name != source_profile])
        return deleted

    def list_profiles(self) -> list[str]:
        """Profiles with an entry: our index, plus a search by attribute where the backend can (Secret Service)."""
        candidates = set(self._read_index()) | set(self._search())
        return sorted(name for name in candidates if self._has_entry(name))

    def _has_entry(self, source_profile: str) -> bool:
        return with_timeout(lambda: self._backend.get_password(SERVICE_NAME, source_profile)) is not None

    def _read_index(self) -> list[str]:
        stored = with_timeout(lambda: self._backend.get_password(INDEX_SERVICE_NAME, INDEX_ENTRY))
        if stored is None:
            return []
        try:
            names = json.loads(stored)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            log.warning("govuk-imds: the keyring's list of source profiles is damaged; it will be rebuilt")
            return []
        return names

    def _write_index(self, names: list[str]) -> None:
        document = json.dumps(sorted(set(names)))
        with_timeout(lambda: self._backend.set_password(INDEX_SERVICE_NAME, INDEX_ENTRY, document))

    def _search(self, attributes: dict[str, str] | None = None) -> list[str]:
        """Entries found by their ``service`` attribute (and ``attributes``), also those written by other tools
        (Secret Service only); no secret is read."""
        preferred_collection = getattr(self._backend, "get_preferred_collection", None)
        if preferred_collection is None:
            return []

        def search() -> list[str]:
            collection = preferred_collection()
            with closing(collection.connection):
                items = collection.search_items({"service": SERVICE_NAME, **(attributes or {})})
                found = [item.get_attributes().get("username") for item in items]
            return [name for name in found if isinstance(name, str)]

        return with_timeout(search)
