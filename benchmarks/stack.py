"""The real parts, started the way the tests start them: moto_server, the MFA-checking StsProxy, a private
gnome-keyring, a throwaway HOME with an AWS config, and the real `govuk-imds` CLI starting the real daemon.

The test suite's own helpers are reused by import (``tests.support``, the repository on ``sys.path``); nothing here
edits them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.sts_emulator import MotoServer, StsProxy, start_moto, stop_process  # noqa: E402
from tests.support.world import BIN, World, aws_config, make_world  # noqa: E402

__all__ = [
    "BIN",
    "Daemon",
    "MotoServer",
    "StsProxy",
    "World",
    "bench_world",
    "make_world",
    "moto_and_proxy",
    "pin",
    "rss_kib",
    "stop_process",
    "threads_of",
]

#: The daemon and every server under test run on this CPU, load generators on the other (2-core machine).
SERVER_CPU = 1
CLIENT_CPU = 0


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of ``pid`` (and threads it starts later) to one CPU; a no-op on a 1-CPU machine."""
    if cpu_count() < 2 or shutil.which("taskset") is None:
        return
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], capture_output=True, check=False)


def pinned(argv: list[str], cpu: int) -> list[str]:
    if cpu_count() < 2 or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(cpu), *argv]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def threads_of(pid: int) -> list[int]:
    return [int(name) for name in os.listdir(f"/proc/{pid}/task")]


@contextlib.contextmanager
def moto_and_proxy() -> Iterator[tuple[MotoServer, StsProxy]]:
    with start_moto() as moto, StsProxy(moto.url) as proxy:
        yield moto, proxy


@dataclass
class Daemon:
    """A World (from the test suite) plus what a benchmark needs to know about its running daemon."""

    world: World

    @property
    def pid(self) -> int:
        pid = self.world.daemon_pid()
        if pid is None:
            raise RuntimeError("the daemon is not running:\n" + self.world.log()[-2000:])
        return pid

    @property
    def port(self) -> int:
        return self.world.port

    def url(self, name: str) -> str:
        return self.world.url(name)

    def token(self, name: str) -> str:
        return self.world.token(name)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.world.cli(*args)

    def start(self) -> float:
        """`govuk-imds start` (returns on READY); the wall time it took, in seconds."""
        began = time.perf_counter()
        started = self.world.cli("start")
        elapsed = time.perf_counter() - began
        if started.returncode != 0:
            raise RuntimeError(f"govuk-imds start failed: {started.stderr}\n{self.world.log()[-2000:]}")
        pin(self.pid, SERVER_CPU)
        return elapsed

    def stop(self) -> None:
        pid = self.world.daemon_pid()
        stopped = self.world.cli("stop", timeout=30)
        if stopped.returncode != 0:
            raise RuntimeError(f"govuk-imds stop failed: {stopped.stderr}")
        if pid is not None:  # `stop` waits for the process to go; make sure before the next start
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.02)

    def unlock(self, *names: str) -> None:
        unlocked = self.world.unlock(*names)
        if unlocked.returncode != 0:
            raise RuntimeError(f"unlock {' '.join(names)} failed: {unlocked.stderr}\n{self.world.log()[-2000:]}")

    def fetch(self, name: str) -> tuple[int, dict[str, str], bytes]:
        """One GET as an SDK sends it; (status, headers, body)."""
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", f"/v1/credentials/{name}", headers={"Authorization": self.token(name)})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def credentials(self, name: str) -> dict[str, str]:
        status, _, body = self.fetch(name)
        if status != 200:
            raise RuntimeError(f"the daemon answered {status}: {body[:300]!r}")
        return dict(json.loads(body))


def environment_names(count: int) -> dict[str, str]:
    """``count`` environments with distinct accounts: env01 ... envNN."""
    return {f"env{index:02d}": f"5{index:011d}" for index in range(1, count + 1)}


@contextlib.contextmanager
def bench_world(
    moto: MotoServer,
    proxy: StsProxy,
    *,
    accounts: dict[str, str] | None = None,
    settings: str = "",
) -> Iterator[Daemon]:
    """A private user: keyring with the gds key, AWS config, govuk-imds config at INFO (the default a user has;
    the test suite runs at DEBUG) plus ``settings``. The daemon is not started."""
    tmp = Path(tempfile.mkdtemp(prefix="imds-bench-"))
    try:
        with make_world(tmp, proxy, moto) as world:
            if accounts is not None:
                world.aws_config_file.write_text(aws_config(accounts, world.mfa_serial))
            world.config_file.write_text(
                f'port = {world.port}\nlog_level = "INFO"\n{settings}\n'
                f'[sts]\nendpoint_url = "{proxy.url}"\nregion = "eu-west-1"\n'
            )
            world.add_key()
            yield Daemon(world)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
