"""Shared fixtures: real parts on loopback (the parts themselves live in ``tests/support``).

* ``moto`` / ``sts``: moto_server as STS and IAM, behind ``StsProxy`` which checks MFA codes like AWS does.
* ``keyring_parts``: a private gnome-keyring on a private D-Bus session bus can be started.
* ``world``: one user's machine (``support.world.World``); ``authenticator``: stand-in ykman and zenity on its
  PATH; ``served``: a daemon shared by a module's tests, with
  production and staging unlocked; ``fast_rotation``: role credentials that need renewing every few seconds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.authenticator import Authenticator
from tests.support.secret_service import install_hint, missing_parts
from tests.support.sts_emulator import MotoServer, StsProxy, start_moto
from tests.support.world import BIN, World, make_world, require

#: The keyring and IAM fixtures of the key and key-store tests.
pytest_plugins = ["tests.support.keyring_fixtures"]

@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    require(shutil.which("moto_server", path=f"{BIN}:{os.environ.get('PATH', '')}") is not None,
            "moto_server (pip install 'moto[server]')")
    with start_moto() as server:
        yield server


@pytest.fixture(scope="session")
def sts(moto: MotoServer) -> Iterator[StsProxy]:
    with StsProxy(moto.url) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def keyring_parts() -> None:
    missing = missing_parts()
    require(not missing, install_hint(missing))


@pytest.fixture
def world(tmp_path: Path, sts: StsProxy, moto: MotoServer, keyring_parts: None) -> Iterator[World]:
    with make_world(tmp_path, sts, moto) as state:
        yield state


@pytest.fixture
def authenticator(world: World) -> Authenticator:
    """Stand-in ``ykman`` and ``zenity`` first on the world's PATH, holding the emulator's MFA device secret."""
    stand_ins = Authenticator(world.home / "authenticator", world.sts.secret(world.mfa_serial))
    world.environment["PATH"] = f"{stand_ins.bin}:{world.environment['PATH']}"
    return stand_ins


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sts: StsProxy, moto: MotoServer,
           keyring_parts: None) -> Iterator[World]:
    """A daemon shared by a module's tests, started with production and staging unlocked."""
    with make_world(tmp_path_factory.mktemp("served"), sts, moto) as state:
        state.add_key()
        state.start()
        unlocked = state.unlock("production", "staging")
        assert unlocked.returncode == 0, unlocked.stderr
        yield state


@pytest.fixture
def fast_rotation(world: World) -> Iterator[World]:
    """Role credentials that need renewing every few seconds: 16 min 6 s of life against a 16 min margin."""
    world.config_file.write_text(world.config_file.read_text().replace("port =", 'rotation_margin = "16m"\nport ='))
    world.sts.role_lifetime = 16 * 60 + 6
    try:
        yield world
    finally:
        world.sts.role_lifetime = None


