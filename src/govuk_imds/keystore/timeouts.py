"""Every keyring call runs with a timeout, so a locked, missing or hung keyring gives one clear line, never a hang.

The call runs in a daemon thread; if it does not return in time the caller gets ``KeyringTimeout`` (the call may
still be running). keyring's and its backends' own errors become ``KeyringUnavailable`` with the innermost reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import KeyringTimeout, KeyringUnavailable

#: Seconds any one keyring call may take. Read at call time, so tests may shorten it.
TIMEOUT_SECONDS = 5.0

T = TypeVar("T")


def reason(exc: BaseException) -> str:
    """The innermost readable cause: keyring wraps D-Bus errors in RuntimeError("Unable to initialize...")."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def with_timeout(call: Callable[[], T]) -> T:
    """Run a keyring call in a daemon thread so a keyring that never answers cannot hang the CLI."""
    outcome: dict[str, Any] = {}
    timeout = TIMEOUT_SECONDS  # looked up now, not at import: tests shorten it

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
            raise KeyringUnavailable(f"the keyring refused: {reason(error)}; unlock it and try again") from error
        raise error
    return outcome["value"]  # type: ignore[no-any-return]
