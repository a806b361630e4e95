"""A private, real Secret Service (gnome-keyring) for tests.

The project stores credentials through :mod:`keyring`, whose only backend on
Linux that we accept is the freedesktop Secret Service.  Tests must exercise
that real backend -- never a plaintext or in-memory stand-in -- without
touching the developer's own keyring and without a screen to answer prompts.

:func:`private_secret_service` starts, inside a temporary directory:

* a private D-Bus session bus (``dbus-daemon`` with a config of our own that
  listens on a Unix socket in the temporary runtime directory and has *no*
  service directories, so nothing can be auto-activated on it -- in
  particular not a second, uncontrolled gnome-keyring or a GUI prompter);
* ``gnome-keyring-daemon --foreground --unlock --components=secrets`` on that
  bus, with a password written to its stdin.  With a fresh data directory this
  creates the ``login`` collection, encrypted with that password, unlocked,
  and (as there is no ``keyrings/default`` file) it is what the ``default``
  alias resolves to.  So ``keyring.backends.SecretService.Keyring()`` can
  ``set_password`` without any prompt.

It yields the environment variables a client needs (see
:data:`CLIENT_ENV_VARS`) and, on exit, stops both daemons within a bounded
time, reaping them so that no process is left behind.

The Debian packages needed are listed in ``.ci/apt-packages.txt``; use
:func:`missing_parts` to find out whether they are installed.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Final

from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    MessageType,
    Properties,
    new_method_call,
)
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import (  # type: ignore[import-untyped]
    DBusConnection,
    open_dbus_connection,
)

__all__ = [
    "CLIENT_ENV_VARS",
    "REQUIRED_BINARIES",
    "install_hint",
    "missing_parts",
    "private_bus",
    "private_secret_service",
]

#: Executable name -> Debian package that ships it.
REQUIRED_BINARIES: Final[Mapping[str, str]] = {
    "dbus-daemon": "dbus-daemon",
    "gnome-keyring-daemon": "gnome-keyring",
}

#: The keys of the dict yielded by :func:`private_secret_service`.
#:
#: * ``DBUS_SESSION_BUS_ADDRESS`` -- the only one a Secret Service client
#:   (jeepney/secretstorage, libsecret) strictly needs: the private bus.
#: * ``XDG_RUNTIME_DIR`` -- the private 0700 runtime dir holding the bus socket
#:   (``bus``) and gnome-keyring's control socket (``keyring/control``).
#: * ``HOME``, ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME`` -- isolation, so a child
#:   reads no ``keyringrc.cfg`` of the developer and gnome-keyring's files
#:   (``XDG_DATA_HOME/keyrings``) are the temporary ones.
CLIENT_ENV_VARS: Final[tuple[str, ...]] = (
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_RUNTIME_DIR",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
)

#: Password of the temporary ``login`` keyring.  Not empty: an empty password
#: would make gnome-keyring store the keyring unencrypted.
KEYRING_PASSWORD: Final[str] = "govuk-imds-test-keyring"

_SECRETS_BUS_NAME: Final[str] = "org.freedesktop.secrets"
_LOGIN_COLLECTION: Final[str] = "/org/freedesktop/secrets/collection/login"
# sun_path holds 108 bytes with the NUL; keep a margin for the longest socket
# we create, "<runtime>/keyring/control".
_MAX_RUNTIME_DIR_LEN: Final[int] = 100 - len("/keyring/control")
_BUS_LOG: Final[str] = "dbus-daemon.log"
_KEYRING_LOG: Final[str] = "gnome-keyring.log"

# Environment variables of the calling process that must not leak into the
# daemons: they would point them at the developer's real session.
_SCRUBBED_VARS: Final[tuple[str, ...]] = (
    "DBUS_SESSION_BUS_ADDRESS",
    "DBUS_SESSION_BUS_PID",
    "DBUS_STARTER_ADDRESS",
    "DBUS_STARTER_BUS_TYPE",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "GNOME_KEYRING_CONTROL",
    "SSH_AUTH_SOCK",
    "PYTHON_KEYRING_BACKEND",
)


def missing_parts() -> list[str]:
    """Return the executables needed here that are not on ``PATH``.

    Each name maps to its Debian package through :data:`REQUIRED_BINARIES`;
    :func:`install_hint` turns the list into a command to run.
    """
    return [name for name in REQUIRED_BINARIES if shutil.which(name) is None]


def install_hint(missing: list[str]) -> str:
    """Say which Debian packages provide the executables in ``missing``."""
    packages = sorted({REQUIRED_BINARIES.get(name, name) for name in missing})
    return (
        f"missing {', '.join(missing)}; install with: "
        f"apt-get install -y {' '.join(packages)} (see .ci/apt-packages.txt)"
    )


def _escape_dbus_address_value(value: str) -> str:
    """Escape ``value`` for use inside a D-Bus address (``%XX`` for bytes)."""
    safe = frozenset(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/.\\*"
    )
    return "".join(
        chr(byte) if chr(byte) in safe else f"%{byte:02x}" for byte in value.encode()
    )


def _escape_xml(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def _bus_config(address: str) -> str:
    """A session-bus config with no service activation at all."""
    return f"""<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{_escape_xml(address)}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _log_tail(path: Path, limit: int = 2000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-limit:].strip() or "(empty log)"


def _read_first_line(
    proc: subprocess.Popen[bytes], stream: IO[bytes], deadline: float
) -> str:
    """Read one line from ``stream`` (a pipe) without blocking past ``deadline``."""
    fd = stream.fileno()
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for the bus address")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            proc.poll()
            raise RuntimeError(
                f"dbus-daemon exited (status {proc.returncode}) "
                "before printing its address"
            )
        data += chunk
    return data.split(b"\n", 1)[0].decode().strip()


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop ``proc`` and its process group: SIGTERM, then SIGKILL after ``grace``.

    The group is signalled only while its leader is not yet reaped, so its id
    cannot have been reused by an unrelated process.
    """
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        # Only a process stuck in the kernel outlives SIGKILL; do not hang on it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)


def _reply_body(conn: DBusConnection, msg: object) -> tuple[object, ...] | None:
    """Send ``msg``; return the reply body, or ``None`` for an error reply."""
    reply = conn.send_and_get_reply(msg, timeout=2.0)
    if reply.header.message_type == MessageType.error:
        return None
    body: tuple[object, ...] = tuple(reply.body)
    return body


def _secret_service_ready(conn: DBusConnection) -> bool:
    """Whether the ``login`` collection exists, is unlocked and is the default."""
    has_owner = _reply_body(conn, message_bus.NameHasOwner(_SECRETS_BUS_NAME))
    if not has_owner or has_owner[0] is not True:
        return False
    login = DBusAddress(
        _LOGIN_COLLECTION,
        bus_name=_SECRETS_BUS_NAME,
        interface="org.freedesktop.Secret.Collection",
    )
    locked = _reply_body(conn, Properties(login).get("Locked"))
    # A variant comes back as (signature, value).
    if not locked or locked[0] != ("b", False):
        return False
    service = DBusAddress(
        "/org/freedesktop/secrets",
        bus_name=_SECRETS_BUS_NAME,
        interface="org.freedesktop.Secret.Service",
    )
    alias = _reply_body(conn, new_method_call(service, "ReadAlias", "s", ("default",)))
    return alias is not None and alias[0] == _LOGIN_COLLECTION


def _wait_for_secret_service(
    address: str, keyring: subprocess.Popen[bytes], log: Path, deadline: float
) -> None:
    conn: DBusConnection = open_dbus_connection(bus=address, auth_timeout=2.0)
    try:
        while True:
            if _secret_service_ready(conn):
                return
            if keyring.poll() is not None:
                raise RuntimeError(
                    "gnome-keyring-daemon exited with status "
                    f"{keyring.returncode} before the login keyring was "
                    f"ready; its log ({log}):\n{_log_tail(log)}"
                )
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    "timed out waiting for gnome-keyring-daemon to provide an "
                    f"unlocked default 'login' collection; its log ({log}):\n"
                    f"{_log_tail(log)}"
                )
            time.sleep(0.02)
    finally:
        conn.close()


def _start_bus(
    tmp_dir: Path,
    runtime: Path,
    env: dict[str, str],
    deadline: float,
    started: list[subprocess.Popen[bytes]],
) -> str:
    """Start the private bus (added to ``started``); return its address."""
    listen = f"unix:path={_escape_dbus_address_value(str(runtime / 'bus'))}"
    bus_conf = tmp_dir / "dbus-session.conf"
    bus_conf.write_text(_bus_config(listen))
    bus_log = tmp_dir / _BUS_LOG
    with bus_log.open("wb") as log:
        bus = subprocess.Popen(
            [
                shutil.which("dbus-daemon") or "dbus-daemon",
                f"--config-file={bus_conf}",
                "--nofork",
                "--nopidfile",
                "--print-address=1",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=tmp_dir,
            start_new_session=True,
        )
    started.append(bus)
    assert bus.stdout is not None
    try:
        return _read_first_line(bus, bus.stdout, deadline)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(
            f"dbus-daemon did not start: {exc}; its log ({bus_log}):\n"
            f"{_log_tail(bus_log)}"
        ) from exc
    finally:
        bus.stdout.close()


def _start_keyring(
    tmp_dir: Path, env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Start gnome-keyring-daemon (added to ``started``) and give it the password.

    ``--unlock`` reads the password from stdin up to EOF, then unlocks the
    ``login`` keyring, creating it first if there is none.
    """
    with (tmp_dir / _KEYRING_LOG).open("wb") as log:
        keyring = subprocess.Popen(
            [
                shutil.which("gnome-keyring-daemon") or "gnome-keyring-daemon",
                "--foreground",
                "--unlock",
                "--components=secrets",
            ],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=env,
            cwd=tmp_dir,
            start_new_session=True,
        )
    started.append(keyring)
    assert keyring.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        keyring.stdin.write(KEYRING_PASSWORD.encode())
    with contextlib.suppress(BrokenPipeError):
        keyring.stdin.close()
    return keyring


@contextlib.contextmanager
def private_secret_service(
    tmp_dir: Path, *, timeout: float = 10.0, stop_grace: float = 2.0
) -> Iterator[dict[str, str]]:
    """Run a private D-Bus session bus and an unlocked gnome-keyring.

    ``tmp_dir`` must be an existing, empty-enough directory owned by the test
    (e.g. pytest's ``tmp_path``); ``home``, ``config``, ``data`` and ``run``
    (mode 0700) are made in it, plus the daemons' logs ``dbus-daemon.log``
    and ``gnome-keyring.log``.  Should ``tmp_dir`` be too deep for a Unix
    socket path, the runtime directory is a short private one under the
    system temp dir instead, removed on exit.

    Yields a new dict with exactly the variables in :data:`CLIENT_ENV_VARS`;
    merge it into a child's environment, or into ``os.environ`` (for
    in-process use: jeepney reads ``DBUS_SESSION_BUS_ADDRESS`` when a
    connection is opened).  The caller should also drop
    ``PYTHON_KEYRING_BACKEND`` if it wants keyring's own backend choice.

    Raises :class:`RuntimeError` naming the Debian package to install if a
    daemon is missing, or with the daemon's log if it fails to start within
    ``timeout`` seconds.  On exit each daemon gets SIGTERM, then SIGKILL after
    ``stop_grace`` seconds, and is reaped.
    """
    missing = missing_parts()
    if missing:
        raise RuntimeError(
            f"a private Secret Service cannot be started: {install_hint(missing)}"
        )

    tmp_dir = tmp_dir.resolve()
    home = tmp_dir / "home"
    config = tmp_dir / "config"
    data = tmp_dir / "data"
    for directory in (home, config, data):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    deadline = time.monotonic() + timeout
    started: list[subprocess.Popen[bytes]] = []
    own_runtime: Path | None = None
    try:
        runtime = tmp_dir / "run"
        if len(str(runtime)) > _MAX_RUNTIME_DIR_LEN:
            own_runtime = runtime = Path(tempfile.mkdtemp(prefix="imds-run-"))
        else:
            runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)

        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_VARS}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(config),
            XDG_DATA_HOME=str(data),
            XDG_RUNTIME_DIR=str(runtime),
            # Keep GSettings from starting dconf (it cannot be activated here).
            GSETTINGS_BACKEND="memory",
        )
        address = _start_bus(tmp_dir, runtime, env, deadline, started)
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        keyring = _start_keyring(tmp_dir, env, started)
        _wait_for_secret_service(address, keyring, tmp_dir / _KEYRING_LOG, deadline)

        yield {
            "DBUS_SESSION_BUS_ADDRESS": address,
            "XDG_RUNTIME_DIR": str(runtime),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(config),
            "XDG_DATA_HOME": str(data),
        }
    finally:
        # gnome-keyring first, so it does not log the bus vanishing.
        for proc in reversed(started):
            _stop(proc, stop_grace)
        if own_runtime is not None:
            shutil.rmtree(own_runtime, ignore_errors=True)


@contextlib.contextmanager
def private_bus(*, timeout: float = 10.0) -> Iterator[str]:
    """A private D-Bus bus alone (no keyring), with no service activation; yields its address. For stand-ins of
    other services (tests/support/desktop.py: logind, the screensaver)."""
    missing = [name for name in ("dbus-daemon",) if shutil.which(name) is None]
    if missing:
        raise RuntimeError(f"a private D-Bus bus cannot be started: {install_hint(missing)}")
    directory = Path(tempfile.mkdtemp(prefix="imds-bus-"))  # short: the socket's path is limited to ~100 bytes
    started: list[subprocess.Popen[bytes]] = []
    try:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_VARS}
        yield _start_bus(directory, directory, env, time.monotonic() + timeout, started)
    finally:
        for proc in started:
            _stop(proc, 2.0)
        shutil.rmtree(directory, ignore_errors=True)
