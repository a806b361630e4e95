"""Long-term key pairs in the OS keyring, and nowhere else.

The backend is picked from an allowlist of secure keyrings (Secret Service on Linux, the macOS Keychain, the
Windows Credential Locker). keyring's own selection (``PYTHON_KEYRING_BACKEND``, keyringrc, plaintext fallbacks)
is never consulted unless our config names a backend. Every call runs with a timeout, so a locked or missing
keyring gives one clear line instead of a hang.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypeVar

from .credentials import LongTermKey
from .errors import InvalidInput, KeyringUnavailable

SERVICE_NAME = "govuk-imds"
TIMEOUT_SECONDS = 5.0

ALLOWED_BACKENDS = {
    "linux": ["keyring.backends.SecretService.Keyring"],
    "darwin": ["keyring.backends.macOS.Keyring"],
    "win32": ["keyring.backends.Windows.WinVaultKeyring"],
}

T = TypeVar("T")


class SecretStore(Protocol):
    def get(self, source_profile: str) -> LongTermKey | None: ...
    def put(self, source_profile: str, key: LongTermKey) -> None: ...
    def delete(self, source_profile: str) -> bool: ...


class MemoryStore:
    """A store for tests of code that needs one; the product never picks it."""

    def __init__(self) -> None:
        self._keys: dict[str, LongTermKey] = {}

    def get(self, source_profile: str) -> LongTermKey | None:
        return self._keys.get(source_profile)

    def put(self, source_profile: str, key: LongTermKey) -> None:
        self._keys[source_profile] = key

    def delete(self, source_profile: str) -> bool:
        return self._keys.pop(source_profile, None) is not None


class KeyringStore:
    def __init__(self, backend: Any) -> None:
        self._backend = backend

    @property
    def backend_name(self) -> str:
        return f"{type(self._backend).__module__}.{type(self._backend).__qualname__}"

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

    def delete(self, source_profile: str) -> bool:
        from keyring.errors import PasswordDeleteError

        def delete() -> bool:
            try:
                self._backend.delete_password(SERVICE_NAME, source_profile)
            except PasswordDeleteError:
                return False
            return True

        return _with_timeout(delete)


def open_keyring(configured_backend: str | None = None) -> KeyringStore:
    """The first usable backend from the platform's allowlist, or the one our own config names."""
    candidates = [configured_backend] if configured_backend else ALLOWED_BACKENDS.get(sys.platform, [])
    problems: list[str] = []
    for dotted in candidates:
        module_name, _, class_name = dotted.rpartition(".")
        try:
            backend_class = getattr(importlib.import_module(module_name), class_name)
            priority = _with_timeout(partial(getattr, backend_class, "priority"))  # raises if unusable here
            if priority is None or (priority <= 0 and not configured_backend):
                raise RuntimeError("not usable on this system")
            return KeyringStore(backend_class())
        except KeyringUnavailable:
            raise
        except Exception as exc:  # keyring backends raise anything from ImportError to D-Bus errors
            problems.append(f"{dotted}: {exc}")
    detail = "; ".join(problems) or f"no secure keyring is supported on {sys.platform}"
    raise KeyringUnavailable(
        f"no secure keyring is available ({detail}); on Linux start a Secret Service such as gnome-keyring"
    )


def _with_timeout(call: Callable[[], T]) -> T:
    """Run a keyring call in a daemon thread so a keyring that never answers cannot hang the CLI."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="keyring-call", daemon=True)
    worker.start()
    worker.join(TIMEOUT_SECONDS)
    if worker.is_alive():
        raise KeyringUnavailable(
            f"the keyring did not answer within {TIMEOUT_SECONDS:.0f} s; unlock it (log in to the desktop, or "
            "run `gnome-keyring-daemon --unlock`) and try again"
        )
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, KeyringUnavailable):
            raise error
        from keyring.errors import KeyringError

        if isinstance(error, KeyringError) or type(error).__module__.startswith(("secretstorage", "jeepney")):
            raise KeyringUnavailable(f"the keyring refused: {error}; unlock it and try again") from error
        raise error
    return outcome["value"]  # type: ignore[no-any-return]
