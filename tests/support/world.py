"""One user's machine for end-to-end tests: a HOME with an AWS config, a govuk-imds config pointing STS at the
emulator, a private keyring, a free port and a short runtime dir; ``World.cli(...)`` runs the installed command.

A missing part fails the run in CI (``CI`` set) and skips locally with what to install (``require``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .secret_service import private_secret_service
from .sts_emulator import MotoServer, StsProxy, make_iam_user

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BIN = Path(sys.executable).parent
ACCOUNTS = {"integration": "210987654321", "staging": "310987654321", "production": "410987654321"}
#: A second role in an account (GOV.UK engineers have several per environment): its own environment.
SECOND_ROLES = {"production-readonly": ("production", "govuk-readonly")}


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI: in CI every part must have been installed by .ci/run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing in CI: {what}")
    pytest.skip(f"missing: {what}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def aws_config(accounts: dict[str, str], mfa_serial: str) -> str:
    stanzas = []
    for name, account in accounts.items():
        stanzas.append(
            f"[profile govuk-{name}]\n"
            f"role_arn = arn:aws:iam::{account}:role/govuk-administrators\n"
            f"mfa_serial = {mfa_serial}\n"
            "source_profile = gds\n"
            "region = eu-west-1\n"
        )
    for name, (account_of, role) in SECOND_ROLES.items():
        if account_of in accounts:
            stanzas.append(
                f"[profile govuk-{name}]\n"
                f"role_arn = arn:aws:iam::{accounts[account_of]}:role/{role}\n"
                f"mfa_serial = {mfa_serial}\n"
                "source_profile = gds\n"
                "region = eu-west-1\n"
            )
    stanzas.append(f"[profile gds]\nmfa_serial = {mfa_serial}\nregion = eu-west-1\n")
    return "\n".join(stanzas)


@dataclass
class World:
    """One user's machine: HOME, configs, keyring and a daemon port, all private to a test."""

    home: Path
    runtime: Path
    port: int
    sts: StsProxy
    key_id: str
    secret: str
    mfa_serial: str
    environment: dict[str, str]

    @property
    def config_file(self) -> Path:
        return self.home / ".config" / "govuk-imds" / "config.toml"

    @property
    def aws_config_file(self) -> Path:
        return self.home / ".aws" / "config"

    def code(self) -> str:
        """A code STS accepts now, not yet handed out here (nor by a stand-in authenticator: ``authenticator``)."""
        from .authenticator import ledger_codes, record_code

        ledger = self.home / "authenticator"
        code = self.sts.unused_code(self.mfa_serial, exclude=ledger_codes(ledger))
        if ledger.is_dir():
            record_code(ledger, code)
        return code

    def cli(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The command as a script runs it: no terminal at all (a session of its own, so not even ``/dev/tty`` of
        whoever runs the tests), stdout and stderr captured."""
        return subprocess.run([str(BIN / "govuk-imds"), *args], input=input, capture_output=True, text=True,
                              env=env or self.environment, timeout=timeout, check=False, start_new_session=True)

    def add_key(self) -> None:
        added = self.cli("add", "gds", input=f'{{"AccessKeyId": "{self.key_id}", '
                                             f'"SecretAccessKey": "{self.secret}"}}')
        assert added.returncode == 0, added.stderr

    def start(self) -> None:
        started = self.cli("start")
        assert started.returncode == 0, started.stderr + self.log()

    def unlock(self, *names: str) -> subprocess.CompletedProcess[str]:
        return self.cli("unlock", *names, "--code", self.code())

    def token_file(self, name: str) -> Path:
        return self.runtime / "tokens" / name

    def token(self, name: str) -> str:
        return self.token_file(name).read_text()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/v1/credentials/{name}"

    def log(self) -> str:
        path = self.runtime / "daemon.log"
        return path.read_text() if path.exists() else ""

    def client_environment(self, name: str, shell_json: dict[str, object]) -> dict[str, str]:
        """A client's environment built only from what `govuk-imds env --json` printed."""
        base = {"PATH": self.environment["PATH"], "HOME": str(self.home), "TMPDIR": self.environment["TMPDIR"]}
        assert isinstance(shell_json["set"], dict)
        base.update({str(key): str(value) for key, value in shell_json["set"].items()})
        return base

    def daemon_pid(self) -> int | None:
        state = self.runtime / "state.json"
        if not state.exists():
            return None
        import json

        return int(json.loads(state.read_text())["pid"])


def env_json(world: World, name: str) -> dict[str, object]:
    printed = world.cli("env", name, "--json")
    assert printed.returncode == 0, printed.stderr
    return json.loads(printed.stdout)  # type: ignore[no-any-return]


def aws_whoami(world: World, name: str) -> subprocess.CompletedProcess[str]:
    environment = world.client_environment(name, env_json(world, name))
    return subprocess.run(
        [str(BIN / "aws"), "sts", "get-caller-identity", "--endpoint-url", world.sts.url, "--output", "json"],
        env=environment, capture_output=True, text=True, timeout=60, check=False,
    )



@contextlib.contextmanager
def make_world(tmp_path: Path, sts: StsProxy, moto: MotoServer) -> Iterator[World]:
    """Each world has its own keyring (a private gnome-keyring starts in ~50 ms), so no key leaks between tests."""
    with private_secret_service(tmp_path / "keyring") as secret_service, _world(tmp_path, sts, moto,
                                                                                secret_service) as state:
        yield state


@contextlib.contextmanager
def _world(tmp_path: Path, sts: StsProxy, moto: MotoServer, secret_service: dict[str, str]) -> Iterator[World]:
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".config" / "govuk-imds").mkdir(parents=True)
    (home / "tmp").mkdir(mode=0o700)
    runtime = Path(tempfile.mkdtemp(prefix="imds-"))  # short: Unix socket paths are limited to ~100 bytes
    key_id, secret, serial = make_iam_user(moto.url)
    sts.register_mfa_device(serial, access_key_id=key_id)
    port = free_port()
    (home / ".aws" / "config").write_text(aws_config(ACCOUNTS, serial))
    (home / ".config" / "govuk-imds" / "config.toml").write_text(
        f'port = {port}\nlog_level = "DEBUG"\n\n[sts]\nendpoint_url = "{sts.url}"\nregion = "eu-west-1"\n'
    )
    environment = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        # The world's own temporary dir: a test that looks for leaked secrets searches what its processes wrote,
        # not everything anyone on the machine writes to /tmp.
        "TMPDIR": str(home / "tmp"),
        "GOVUK_IMDS_RUNTIME_DIR": str(runtime),
        "LANG": "C.UTF-8",
        **{key: value for key, value in secret_service.items() if key != "HOME"},
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    state = World(home, runtime, port, sts, key_id, secret, serial, environment)
    try:
        yield state
    finally:
        sts.clear_faults()
        sts.role_lifetime = None
        sts.session_lifetime = None
        sts.clock_offset = 0.0
        sts.refuse_unsigned = False
        sts.canary = None
        pid = state.daemon_pid()
        state.cli("stop", timeout=15)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(runtime, ignore_errors=True)


def status_rows(world: World) -> dict[str, dict[str, object]]:
    answer = world.cli("status", "--json")
    assert answer.returncode == 0, answer.stderr
    return {row["environment"]: row for row in json.loads(answer.stdout)["environments"]}


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command printed (it failed, and said so in one line, without a traceback)."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("govuk-imds: ")
    return lines[0]


def audit_file(world: World) -> Path:
    """The daemon's audit record: the default state dir under the world's HOME."""
    return world.home / ".local" / "state" / "govuk-imds" / "audit.jsonl"


def audit_records(world: World, match: Callable[[dict[str, Any]], bool], within: float = 5) -> list[dict[str, Any]]:
    """The audit records that ``match``, waiting up to ``within`` seconds for the first (the daemon writes them from
    a thread of their own, a moment after the answer)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        path = audit_file(world)
        if path.exists():
            found = [record for line in path.read_text().splitlines() if match(record := json.loads(line))]
        if found:
            break
        time.sleep(0.02)
    return found


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")
