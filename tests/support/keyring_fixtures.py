"""Fixtures for the key tests: a private Secret Service used in-process, an IAM user in moto, settings that point
IAM and STS at the fault-injecting proxy, and a look at what moto itself holds (behind the proxy's back)."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from govuk_imds.aws.iam import Iam
from govuk_imds.config.paths import RuntimePaths
from govuk_imds.config.settings import Settings
from govuk_imds.core.credentials import LongTermKey
from govuk_imds.keystore import timeouts as keystore
from govuk_imds.keystore.backends import open_keyring
from govuk_imds.keystore.store import KeyringStore
from tests.support.secret_service import private_secret_service
from tests.support.sts_emulator import MotoServer, StsProxy, make_iam_user


@dataclass
class IamUser:
    name: str
    key: LongTermKey
    serial: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::123456789012:user/{self.name}"


@pytest.fixture
def keyring_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyring_parts: None) -> Iterator[dict[str, str]]:
    """A private gnome-keyring, and this process's environment pointed at it (jeepney reads it per connection)."""
    with private_secret_service(tmp_path / "keyring") as environment:
        monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        yield environment


@pytest.fixture
def keyring_store(keyring_env: dict[str, str]) -> KeyringStore:
    return open_keyring()


@pytest.fixture
def user(moto: MotoServer, sts: StsProxy) -> Iterator[IamUser]:
    key_id, secret, serial = make_iam_user(moto.url)
    sts.register_mfa_device(serial, access_key_id=key_id)
    yield IamUser(serial.rsplit("/", 1)[-1], LongTermKey(key_id, secret), serial)
    sts.clear_faults()


@pytest.fixture
def settings(tmp_path: Path, sts: StsProxy) -> Settings:
    return Settings(
        config_file=tmp_path / "config.toml",
        runtime=RuntimePaths(tmp_path / "run"),
        aws_config_file=tmp_path / "aws-config",
        sts_endpoint_url=sts.url,
        sts_region="eu-west-1",
        iam_endpoint_url=sts.url,
    )


@pytest.fixture
def admin(settings: Settings) -> Iam:
    return Iam(settings, connect_timeout=1, read_timeout=1)


@pytest.fixture
def moto_iam(moto: MotoServer) -> Any:
    """IAM straight from moto, not through the proxy: what AWS really holds, whatever faults are queued."""
    return boto3.client(
        "iam",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def aws_keys(moto_iam: Any) -> Callable[[IamUser], set[str]]:
    def keys(of: IamUser) -> set[str]:
        return {item["AccessKeyId"] for item in moto_iam.list_access_keys(UserName=of.name)["AccessKeyMetadata"]}

    return keys


@pytest.fixture
def short_keyring_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(keystore, "TIMEOUT_SECONDS", 1.0)
    return 1.0


def settle_keyring_threads() -> None:
    """Let keyring calls we gave up on finish, and collect what they leave behind now, inside the test.

    keyring's Secret Service backend does not close its D-Bus connection when a call fails (a locked collection, a
    bus that went away), so such tests leave unclosed sockets; they are marked to ignore that ResourceWarning, and
    collecting here keeps the warning from surfacing in a later, unmarked test.
    """
    for thread in threading.enumerate():
        if thread.name == "keyring-call":
            thread.join(timeout=5)
    gc.collect()


class MuteBus:
    """A Unix socket that looks like a D-Bus session bus and never answers.

    ``authenticate=False``: it accepts connections and says nothing at all. ``authenticate=True``: it completes the
    SASL handshake (so the client believes the bus is there), then ignores every message, like a bus whose Secret
    Service hangs.
    """

    def __init__(self, path: Path, *, authenticate: bool) -> None:
        self.path = path
        self.authenticate = authenticate
        self.connections: list[socket.socket] = []
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(str(path))
        self._server.listen(16)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"unix:path={self.path}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.connections.append(connection)
            if self.authenticate:
                threading.Thread(target=self._handshake, args=(connection,), daemon=True).start()

    def _handshake(self, connection: socket.socket) -> None:
        received = b""
        try:
            while b"\r\n" not in received:
                chunk = connection.recv(1024)
                if not chunk:
                    return
                received += chunk
            connection.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
        except OSError:
            return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() below; close() alone would not
        self._server.close()
        for connection in self.connections:  # the client threads still waiting get EOF and finish
            connection.close()
        self._thread.join(timeout=2)


@pytest.fixture
def mute_bus_factory(tmp_path: Path) -> Iterator[Callable[[bool], MuteBus]]:
    made: list[MuteBus] = []
    directory = Path(os.environ.get("TMPDIR", "/tmp"))  # Unix socket paths must stay short

    def make(authenticate: bool) -> MuteBus:
        path = directory / f"mute-bus-{os.getpid()}-{len(made)}-{id(made)}"
        path.unlink(missing_ok=True)
        bus = MuteBus(path, authenticate=authenticate)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()
        bus.path.unlink(missing_ok=True)
    settle_keyring_threads()
