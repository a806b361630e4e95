"""Long-term key pairs in the OS keyring, and nowhere else.

The backend comes from an allowlist of secure keyrings (Secret Service on Linux, the macOS Keychain, the Windows
Credential Locker). keyring's own selection (``PYTHON_KEYRING_BACKEND``, keyringrc, its plaintext fallbacks) is
never consulted: this module never calls ``keyring.get_keyring()``. Our own config may name another backend
(``keyring_backend = "..."``); plaintext, weakly encrypted and pseudo backends (keyrings.alt's file keyrings,
``fail``, ``null``, ``chainer``) are refused even then, because a key in a file is what this tool exists to end.
Every call runs with a timeout, so a locked, missing or unresponsive keyring gives one clear line, never a hang.

This module must never print a secret, and must never pick a backend the user did not choose from the allowlist.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import sys
import threading
from collections.abc import Callable
from contextlib import closing
from functools import partial
from typing import Any, Protocol, TypeVar

from .credentials import LongTermKey
from .errors import ConfigError, InvalidInput, KeyringUnavailable

SERVICE_NAME = "govuk-imds"
#: Where the list of stored source profiles is kept: backends such as the macOS Keychain cannot enumerate entries.
INDEX_SERVICE_NAME = "govuk-imds-index"
INDEX_ENTRY = "source-profiles"
#: Seconds any one keyring call may take. Read at call time, so tests may shorten it.
TIMEOUT_SECONDS = 5.0

#: Tried in order when our config names no backend. Every one is an OS keyring that encrypts at rest.
ALLOWED_BACKENDS = {
    "linux": ["keyring.backends.SecretService.Keyring"],
    "darwin": ["keyring.backends.macOS.Keyring"],
    "win32": ["keyring.backends.Windows.WinVaultKeyring"],
}
#: Secure backends that are never picked on their own but are accepted without a warning when our config names one.
VETTED_BACKENDS = frozenset(
    {
        *(name for names in ALLOWED_BACKENDS.values() for name in names),
        "keyring.backends.libsecret.Keyring",  # the Secret Service again, through libsecret
        "keyring.backends.kwallet.DBusKeyring",
        "keyring.backends.kwallet.DBusKeyringKWallet4",
    }
)
#: Modules whose backends keep keys in files, or do not keep them at all, or hand the choice back to keyring.
REFUSED_MODULES = (
    "keyrings.alt",  # PlaintextKeyring, EncryptedKeyring (a password-derived file), the Windows registry...
    "keyrings.cryptfile",  # a file encrypted with a password typed at the prompt
    "keyring.backends.fail",
    "keyring.backends.null",
    "keyring.backends.chainer",  # keyring's own choice by priority, which is what we never want
)
_DOTTED_NAME = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+")

log = logging.getLogger(__name__)
T = TypeVar("T")


class SecretStore(Protocol):
    """Where source profiles' long-term keys live. Every implementation passes tests/keys/test_store_contract.py."""

    def get(self, source_profile: str) -> LongTermKey | None: ...
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
        return _dotted(type(self._backend))

    def get(self, source_profile: str) -> LongTermKey | None:
        stored = _with_timeout(lambda: self._backend.get_password(SERVICE_NAME, source_profile))
        if stored is None:
            return None
        try:
            return LongTermKey.from_json(json.loads(stored))
        except (ValueError, InvalidInput) as exc:
            raise KeyringUnavailable(
                f"the keyring entry for {source_profile!r} is damaged; run `govuk-imds add {source_profile}` again"
            ) from exc

    def put(self, source_profile: str, key: LongTermKey) -> None:
        document = json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key})
        _with_timeout(lambda: self._backend.set_password(SERVICE_NAME, source_profile, document))
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

        deleted = _with_timeout(delete)
        index = self._read_index()
        if source_profile in index:
            self._write_index([name for name in index if name != source_profile])
        return deleted

    def list_profiles(self) -> list[str]:
        """Profiles with an entry: our index, plus a search by attribute where the backend can (Secret Service)."""
        candidates = set(self._read_index()) | set(self._search())
        return sorted(name for name in candidates if self._has_entry(name))

    def _has_entry(self, source_profile: str) -> bool:
        return _with_timeout(lambda: self._backend.get_password(SERVICE_NAME, source_profile)) is not None

    def _read_index(self) -> list[str]:
        stored = _with_timeout(lambda: self._backend.get_password(INDEX_SERVICE_NAME, INDEX_ENTRY))
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
        _with_timeout(lambda: self._backend.set_password(INDEX_SERVICE_NAME, INDEX_ENTRY, document))

    def _search(self) -> list[str]:
        """Entries found by their ``service`` attribute, also those written by other tools (Secret Service only)."""
        preferred_collection = getattr(self._backend, "get_preferred_collection", None)
        if preferred_collection is None:
            return []

        def search() -> list[str]:
            collection = preferred_collection()
            with closing(collection.connection):
                items = collection.search_items({"service": SERVICE_NAME})
                found = [item.get_attributes().get("username") for item in items]
            return [name for name in found if isinstance(name, str)]

        return _with_timeout(search)


def open_keyring(configured_backend: str | None = None) -> KeyringStore:
    """The first usable backend from the platform's allowlist, or the one our own config names.

    ``PYTHON_KEYRING_BACKEND`` and keyringrc are never read. A configured backend that keeps keys in a file, or
    not at all, raises ``ConfigError``; one we have not vetted is used with a warning.
    """
    if configured_backend:
        _refuse_unsafe_name(configured_backend)
        candidates = [configured_backend]
    else:
        candidates = ALLOWED_BACKENDS.get(sys.platform, [])
    problems: list[str] = []
    for dotted in candidates:
        try:
            backend_class = _import_backend(dotted)
        except ConfigError:
            raise
        except Exception as exc:  # an ImportError, or whatever a backend module raises at import
            problems.append(f"{dotted} cannot be loaded ({exc})")
            continue
        if configured_backend:
            _refuse_unsafe_class(backend_class, configured_backend)
        try:
            priority = _with_timeout(partial(getattr, backend_class, "priority"))  # raises if unusable here
        except KeyringTimeout:
            problems.append(f"{dotted} did not answer within {TIMEOUT_SECONDS:g} s")
            continue
        except Exception as exc:  # keyring backends raise anything from RuntimeError to D-Bus errors
            problems.append(f"{dotted} is not usable here ({_reason(exc.__cause__ or exc)})")
            continue
        if priority is None or (priority <= 0 and not configured_backend):
            problems.append(f"{dotted} is not usable here")
            continue
        if configured_backend and configured_backend not in VETTED_BACKENDS:
            log.warning(
                "govuk-imds: warning: keeping keys in %s, named by keyring_backend in your config; govuk-imds "
                "has not checked that it encrypts them",
                configured_backend,
            )
        return KeyringStore(backend_class())
    if not problems:
        raise KeyringUnavailable(f"no secure keyring is supported on {sys.platform}; see docs/keys.md")
    hint = (
        "; on Linux start a Secret Service (gnome-keyring or KWallet, normally by logging in to a desktop session)"
        if sys.platform == "linux" and not configured_backend
        else ""
    )
    raise KeyringUnavailable(f"no secure keyring is available: {'; '.join(problems)}{hint}")


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _module_refused(module: str) -> bool:
    return any(module == refused or module.startswith(refused + ".") for refused in REFUSED_MODULES)


def _refuse_unsafe_name(dotted: str) -> None:
    if not _DOTTED_NAME.fullmatch(dotted):
        raise ConfigError(
            f"keyring_backend {dotted!r} in your govuk-imds config is not a dotted class name "
            "(for example keyring.backends.kwallet.DBusKeyring)"
        )
    if _module_refused(dotted.rpartition(".")[0]):
        raise ConfigError(
            f"keyring_backend {dotted!r} in your govuk-imds config keeps keys in a file or not at all; govuk-imds "
            "refuses it (see docs/keys.md): remove the setting to use the OS keyring"
        )


def _refuse_unsafe_class(backend_class: Any, dotted: str) -> None:
    from keyring.backend import KeyringBackend

    if not isinstance(backend_class, type) or not issubclass(backend_class, KeyringBackend):
        raise ConfigError(f"keyring_backend {dotted!r} in your govuk-imds config is not a keyring backend class")
    unsafe = [_dotted(base) for base in backend_class.__mro__ if _module_refused(base.__module__)]
    if unsafe:
        raise ConfigError(
            f"keyring_backend {dotted!r} in your govuk-imds config is built on {unsafe[0]}, which keeps keys in a "
            "file or not at all; govuk-imds refuses it (see docs/keys.md): remove the setting to use the OS keyring"
        )


def _import_backend(dotted: str) -> Any:
    module_name, _, class_name = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise ImportError(f"{module_name} has no {class_name}") from exc


def _reason(exc: BaseException) -> str:
    """The innermost readable cause: keyring wraps D-Bus errors in RuntimeError("Unable to initialize...")."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


class KeyringTimeout(KeyringUnavailable):
    """The keyring call did not return in time (it may still be running, in its daemon thread)."""


def _with_timeout(call: Callable[[], T]) -> T:
    """Run a keyring call in a daemon thread so a keyring that never answers cannot hang the CLI."""
    outcome: dict[str, Any] = {}
    timeout = TIMEOUT_SECONDS

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="keyring-call", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise KeyringTimeout(
            f"the keyring did not answer within {timeout:g} s; it may be locked behind a prompt nobody can see, "
            "or hung: unlock it (log in to the desktop, or run `gnome-keyring-daemon --unlock`) and try again"
        )
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, KeyringUnavailable):
            raise error
        from keyring.errors import KeyringError, KeyringLocked

        if isinstance(error, KeyringLocked):
            raise KeyringUnavailable(
                "the keyring is locked and no unlock prompt was answered; unlock it (log in to the desktop, or "
                "run `gnome-keyring-daemon --unlock`) and try again"
            ) from error
        if isinstance(error, KeyringError | OSError) or type(error).__module__.startswith(("secretstorage", "jeepney")):
            raise KeyringUnavailable(f"the keyring refused: {_reason(error)}; unlock it and try again") from error
        raise error
    return outcome["value"]  # type: ignore[no-any-return]
