"""Tests for the private Secret Service used by the test suite.

They run the real keyring Secret Service backend against a private
gnome-keyring.  Without the Debian packages they skip locally, saying what to
install, but fail under CI (``CI=true``), where the packages must be present.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keyring.backends import SecretService

from .secret_service import (
    CLIENT_ENV_VARS,
    install_hint,
    missing_parts,
    private_secret_service,
)

SERVICE = "govuk-imds-test"
USERNAME = "someone@example.org"
# Under the 2 s after which private_secret_service falls back to SIGKILL.
STOP_WITHOUT_SIGKILL_SECONDS = 1.5


def _require_parts() -> None:
    missing = missing_parts()
    if not missing:
        return
    message = install_hint(missing)
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI must have a Secret Service: {message}")
    pytest.skip(message)


@pytest.fixture
def secret_service_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    _require_parts()
    with private_secret_service(tmp_path) as env:
        yield env


def _child_env(service_env: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_PID")
    }
    env.update(service_env)
    return env


def _processes_with_env(marker: str) -> dict[int, str]:
    """Processes (not this one) whose initial environment contains ``marker``."""
    needle = marker.encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if needle in environ:
                found[int(entry.name)] = (entry / "comm").read_text().strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


_CHILD_SCRIPT = """
import json, sys
import keyring
from keyring.backends import SecretService

service, username, secret = sys.argv[1:4]
backend = SecretService.Keyring()
backend.set_password(service, username, secret)
got = backend.get_password(service, username)
backend.delete_password(service, username)
after = backend.get_password(service, username)
print(json.dumps({
    "got": got,
    "after_delete": after,
    "default_backend": type(keyring.get_keyring()).__module__,
}))
"""


def test_round_trip_in_subprocess(secret_service_env: dict[str, str]) -> None:
    assert set(secret_service_env) == set(CLIENT_ENV_VARS)
    secret = "s3cr3t-\N{POUND SIGN}-subprocess"
    result = subprocess.run(
        [sys.executable, "-c", _CHILD_SCRIPT, SERVICE, USERNAME, secret],
        env=_child_env(secret_service_env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["got"] == secret
    assert report["after_delete"] is None
    # With no keyring config and no PYTHON_KEYRING_BACKEND, keyring picks
    # the Secret Service on its own.
    assert report["default_backend"] == "keyring.backends.SecretService"


def test_round_trip_in_process(
    secret_service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    for name, value in secret_service_env.items():
        monkeypatch.setenv(name, value)

    # keyring's backends are not annotated; treat this one as Any.
    keyring_class: Any = SecretService.Keyring
    backend = keyring_class()
    secret = "s3cr3t-in-process"
    backend.set_password(SERVICE, USERNAME, secret)
    try:
        assert backend.get_password(SERVICE, USERNAME) == secret
    finally:
        backend.delete_password(SERVICE, USERNAME)
    assert backend.get_password(SERVICE, USERNAME) is None


def test_daemons_are_gone_after_exit(tmp_path: Path) -> None:
    _require_parts()
    with private_secret_service(tmp_path) as env:
        marker = f"XDG_RUNTIME_DIR={env['XDG_RUNTIME_DIR']}"
        bus_socket = str(Path(env["XDG_RUNTIME_DIR"]) / "bus")
        assert Path(bus_socket).is_socket()
        daemons = _processes_with_env(marker)
        assert sorted(daemons.values()) == ["dbus-daemon", "gnome-keyring-d"]
        started_exit = time.monotonic()
    # SIGTERM was enough: no wait for the SIGKILL fallback.
    assert time.monotonic() - started_exit < STOP_WITHOUT_SIGKILL_SECONDS
    # Reaped, not zombies: a reused pid would not carry the marker.
    assert _processes_with_env(marker) == {}
    with (
        socket.socket(socket.AF_UNIX) as sock,
        pytest.raises((FileNotFoundError, ConnectionRefusedError)),
    ):
        sock.connect(bus_socket)


def test_missing_binaries_are_named_with_their_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert missing_parts() == ["dbus-daemon", "gnome-keyring-daemon"]
    with (
        pytest.raises(
            RuntimeError, match=r"apt-get install -y dbus-daemon gnome-keyring"
        ),
        private_secret_service(tmp_path),
    ):
        pass
