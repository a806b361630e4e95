"""Choosing the keyring backend: the OS keyring from an allowlist, and nothing else.

It hands back a backend, not a store: the long-term key store (``backends.open_keyring``) and the daemon's MFA
session store (``sessions``) each wrap it, so the daemon chooses a keyring without importing a way to read a key.

The backend comes from an allowlist of secure keyrings (Secret Service on Linux, the macOS Keychain, the Windows
Credential Locker). keyring's own selection (``PYTHON_KEYRING_BACKEND``, keyringrc, its plaintext fallbacks) is
never consulted: this module never calls ``keyring.get_keyring()``. Our own config may name another backend
(``keyring_backend = "..."``); plaintext, weakly encrypted and pseudo backends (keyrings.alt's file keyrings,
``fail``, ``null``, ``chainer``) are refused even then, because a key in a file is what this tool exists to end.
Even probing a backend runs with a timeout (``timeouts``), so a locked or missing keyring gives one clear line.

This module must never print a secret, and must never pick a backend the user did not choose from the allowlist.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from functools import partial
from typing import Any

from ..errors import ConfigError, KeyringTimeout, KeyringUnavailable
from . import timeouts
from .timeouts import reason, with_timeout

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


def choose_backend(configured_backend: str | None = None) -> Any:
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
            priority = with_timeout(partial(getattr, backend_class, "priority"))  # raises if unusable here
        except KeyringTimeout:
            problems.append(f"{dotted} did not answer within {timeouts.TIMEOUT_SECONDS:g} s")
            continue
        except Exception as exc:  # keyring backends raise anything from RuntimeError to D-Bus errors
            problems.append(f"{dotted} is not usable here ({reason(exc.__cause__ or exc)})")
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
        return backend_class()
    if not problems:
        raise KeyringUnavailable(f"no secure keyring is supported on {sys.platform}; see docs/keys.md")
    hint = (
        "; on Linux start a Secret Service (gnome-keyring or KWallet, normally by logging in to a desktop session)"
        if sys.platform == "linux" and not configured_backend
        else ""
    )
    raise KeyringUnavailable(f"no secure keyring is available: {'; '.join(problems)}{hint}")


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
    unsafe = [dotted_name(base) for base in backend_class.__mro__ if _module_refused(base.__module__)]
    if unsafe:
        raise ConfigError(
            f"keyring_backend {dotted!r} in your govuk-imds config is built on {unsafe[0]}, which keeps keys in a "
            "file or not at all; govuk-imds refuses it (see docs/keys.md): remove the setting to use the OS keyring"
        )


def dotted_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_backend(dotted: str) -> Any:
    module_name, _, class_name = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise ImportError(f"{module_name} has no {class_name}") from exc
