"""Fixtures for the conformance suite: the AWS SDK for JavaScript v3, installed from npm with the lock file.

This directory is a package so that this file does not replace the top-level ``conftest`` module that the other
test directories import (pytest would import both as ``conftest`` otherwise).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.world import require

from .clients import JS


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """Two test runs in one checkout must not run `npm ci` into the same node_modules at once."""
    name = hashlib.sha256(str(JS).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"govuk-imds-npm-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _installed() -> bool:
    # npm writes node_modules/.package-lock.json last: missing means never (or never completely) installed.
    marker = JS / "node_modules" / ".package-lock.json"
    return marker.exists() and marker.stat().st_mtime >= (JS / "package-lock.json").stat().st_mtime


@pytest.fixture(scope="session")
def js_sdk() -> Path:
    """node plus the pinned npm packages in tests/conformance/js/node_modules (`npm ci` when missing or stale)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    require(node is not None and npm is not None,
            "Node.js and npm for the JS SDK conformance tests (Debian/Ubuntu: apt-get install nodejs npm)")
    assert npm is not None
    with _install_lock():
        if not _installed():
            installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True,
                                       text=True, timeout=600, check=False)
            assert installed.returncode == 0, f"npm ci failed in {JS}:\n{installed.stdout}\n{installed.stderr}"
            assert _installed(), f"npm ci in {JS} left no node_modules/.package-lock.json"
    return JS
