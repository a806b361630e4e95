"""Which keyring backend is used: the allowlist only, never keyring's own choice, never a file; and a keyring that
is missing, locked or hung gives one clear error within the timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import null

from govuk_imds.core.credentials import LongTermKey
from govuk_imds.errors import ConfigError, KeyringUnavailable
from govuk_imds.keystore import timeouts as keystore
from govuk_imds.keystore.backends import open_keyring
from govuk_imds.keystore.store import SERVICE_NAME, KeyringStore
from tests.support.keyring_fixtures import MuteBus, settle_keyring_threads
from tests.support.world import BIN, World

LEAKY = pytest.mark.filterwarnings("ignore::ResourceWarning")  # see settle_keyring_threads

KEY = LongTermKey.parse("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


class SneakyPlaintext(null.Keyring):
    """A third-party backend built on a refused one: refused by its ancestry, not its name."""

    priority = 1


class UnvettedKeyring(KeyringBackend):
    """A third-party backend govuk-imds knows nothing about: allowed when named, with a warning."""

    priority = 1
    entries: dict[tuple[str, str], str] = {}  # noqa: RUF012 - shared on purpose: one "keyring" per process

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username))


def _keyringrc(directory: str, backend: str) -> None:
    config = Path(directory) / "python_keyring"
    config.mkdir(parents=True, exist_ok=True)
    (config / "keyringrc.cfg").write_text(f"[backend]\ndefault-keyring={backend}\n")


# -- selection ----------------------------------------------------------------------------------------------------


def test_keyrings_own_choice_is_ignored(keyring_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    _keyringrc(keyring_env["XDG_CONFIG_HOME"], "keyring.backends.fail.Keyring")
    from keyring.core import load_config, load_env

    # keyring itself would obey both overrides...
    assert type(load_env()).__module__ == "keyring.backends.null"
    assert type(load_config()).__module__ == "keyring.backends.fail"
    # ...we do not.
    store = open_keyring()
    assert store.backend_name == "keyring.backends.SecretService.Keyring"
    store.put("gds", KEY)
    from keyring.backends.SecretService import Keyring

    assert Keyring().get_password(SERVICE_NAME, "gds") is not None


def test_the_cli_ignores_python_keyring_backend(world: World) -> None:
    hostile = {**world.environment, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    _keyringrc(world.environment["XDG_CONFIG_HOME"], "keyring.backends.fail.Keyring")
    document = f'{{"AccessKeyId": "{world.key_id}", "SecretAccessKey": "{world.secret}"}}'
    added = world.cli("add", "gds", input=document, env=hostile)
    assert added.returncode == 0, added.stderr
    assert "in keyring.backends.SecretService.Keyring" in added.stdout
    # It really is in the Secret Service: read it back with keyring's backend in a separate process.
    check = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "from keyring.backends.SecretService import Keyring; print(Keyring().get_password('govuk-imds', 'gds'))",
        ],
        env=world.environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert world.key_id in check.stdout


@pytest.mark.parametrize(
    "backend",
    [
        "keyrings.alt.file.PlaintextKeyring",
        "keyrings.alt.file.EncryptedKeyring",
        "keyrings.alt.Windows.RegistryKeyring",
        "keyrings.cryptfile.cryptfile.CryptFileKeyring",
        "keyring.backends.fail.Keyring",
        "keyring.backends.null.Keyring",
        "keyring.backends.chainer.ChainerBackend",
    ],
)
def test_file_and_pseudo_backends_are_refused_even_when_named(backend: str) -> None:
    with pytest.raises(ConfigError, match=r"keeps keys in a file or not at all; govuk-imds refuses it"):
        open_keyring(backend)


def test_a_backend_built_on_a_refused_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"built on keyring\.backends\.null\.Keyring"):
        open_keyring(f"{__name__}.SneakyPlaintext")


@pytest.mark.parametrize(
    ("backend", "error", "message"),
    [
        ("not a class name", ConfigError, "is not a dotted class name"),
        ("os.path", ConfigError, "is not a keyring backend class"),
        ("no_such_module.Keyring", KeyringUnavailable, r"no_such_module\.Keyring cannot be loaded"),
        ("keyring.backends.SecretService.NoSuchClass", KeyringUnavailable, "has no NoSuchClass"),
    ],
)
def test_a_bad_configured_backend_is_one_clear_error(backend: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        open_keyring(backend)


def test_a_vetted_backend_named_in_config_is_used_quietly(
    keyring_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    store = open_keyring("keyring.backends.SecretService.Keyring")
    store.put("gds", KEY)
    assert store.get("gds") == KEY
    assert "warning" not in caplog.text


def test_an_unvetted_backend_named_in_config_is_used_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    store = open_keyring(f"{__name__}.UnvettedKeyring")
    assert store.backend_name == f"{__name__}.UnvettedKeyring"
    store.put("gds", KEY)
    assert store.get("gds") == KEY
    assert "has not checked that it encrypts them" in caplog.text


# -- missing, locked, hung ----------------------------------------------------------------------------------------


def _timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(KeyringUnavailable) as caught:
        call()
    return caught.value, time.monotonic() - started


def test_no_session_bus_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus-here")
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    error, took = _timed(open_keyring)
    assert took < 3
    message = str(error)
    assert "\n" not in message
    assert message.startswith("no secure keyring is available: keyring.backends.SecretService.Keyring is not usable")
    assert "start a Secret Service (gnome-keyring or KWallet" in message


@LEAKY
def test_a_bus_that_never_answers_is_refused_quickly(
    monkeypatch: pytest.MonkeyPatch, mute_bus_factory: Callable[[bool], MuteBus]
) -> None:
    bus = mute_bus_factory(False)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
    error, took = _timed(open_keyring)
    assert took < keystore.TIMEOUT_SECONDS + 1
    assert "SecretService.Keyring is not usable here" in str(error)
    assert bus.connections  # it really was asked


@LEAKY
def test_a_bus_that_hangs_after_the_handshake_times_out(
    monkeypatch: pytest.MonkeyPatch, mute_bus_factory: Callable[[bool], MuteBus], short_keyring_timeout: float
) -> None:
    bus = mute_bus_factory(True)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
    error, took = _timed(open_keyring)
    assert short_keyring_timeout <= took < short_keyring_timeout + 1.5
    assert "SecretService.Keyring did not answer within 1 s" in str(error)


@LEAKY
def test_a_locked_keyring_is_one_clear_line(keyring_store: KeyringStore) -> None:
    import secretstorage

    keyring_store.put("gds", KEY)
    connection = secretstorage.dbus_init()
    try:
        secretstorage.get_default_collection(connection).lock()
    finally:
        connection.close()
    for call in (lambda: keyring_store.get("gds"), lambda: keyring_store.put("gds", KEY)):
        error, took = _timed(call)
        assert took < 2
        assert str(error).startswith("the keyring is locked and no unlock prompt was answered")
    del error
    settle_keyring_threads()


@pytest.fixture
def frozen_keyring(keyring_env: dict[str, str]) -> Iterator[Callable[[], None]]:
    """Stop (SIGSTOP) the private gnome-keyring-daemon: the bus still answers, the Secret Service never does."""
    marker = f"XDG_RUNTIME_DIR={keyring_env['XDG_RUNTIME_DIR']}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip().startswith("gnome-keyring") and marker in (
                entry / "environ"
            ).read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    assert len(pids) == 1, pids

    def freeze() -> None:
        os.kill(pids[0], signal.SIGSTOP)

    yield freeze
    os.kill(pids[0], signal.SIGCONT)
    settle_keyring_threads()


@LEAKY
def test_a_hung_keyring_times_out_instead_of_hanging(
    keyring_store: KeyringStore, frozen_keyring: Callable[[], None], short_keyring_timeout: float
) -> None:
    keyring_store.put("gds", KEY)
    frozen_keyring()
    for call in (lambda: keyring_store.get("gds"), lambda: keyring_store.put("gds", KEY), keyring_store.list_profiles):
        error, took = _timed(call)
        assert short_keyring_timeout <= took < short_keyring_timeout + 1.5
        assert "did not answer within 1 s" in str(error)


@LEAKY
def test_the_cli_gives_up_on_a_hung_bus_within_the_timeout(
    world: World, mute_bus_factory: Callable[[bool], MuteBus]
) -> None:
    """The real command, the real 5 s timeout: one line on stderr, exit 3, no hang."""
    bus = mute_bus_factory(True)
    environment = {**world.environment, "DBUS_SESSION_BUS_ADDRESS": bus.address}
    document = f'{{"AccessKeyId": "{world.key_id}", "SecretAccessKey": "{world.secret}"}}'
    started = time.monotonic()
    added = world.cli("add", "gds", input=document, env=environment, timeout=30)
    took = time.monotonic() - started
    assert added.returncode == 3
    assert took < keystore.TIMEOUT_SECONDS + 3
    lines = added.stderr.strip().splitlines()
    assert len(lines) == 1, added.stderr
    assert lines[0].startswith("govuk-imds: no secure keyring is available")
    assert "did not answer within 5 s" in lines[0]
