"""The commands that hold a long-term key keep their memory to themselves (SECURITY.md, "The CLI holding the key").

Each command runs on a real terminal under `ulimit -c unlimited` (``prlimit --core=unlimited``) and is stopped at
its prompt. There its memory is read (as root with CAP_SYS_PTRACE can) to see whether the key is already in it; a
process of the same uid *without* CAP_SYS_PTRACE must not be able to read it (PR_SET_DUMPABLE 0, which also stops
ptrace attach); its core limit must read 0 (RLIMIT_CORE); and at SIGQUIT it must leave no core file.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.terminal import TAKE_TERMINAL
from tests.support.world import BIN, World, require


def memory_holds(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the readable memory of process ``pid`` (root reads any process's)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
        for line in maps:
            fields = line.split()
            if not fields[1].startswith("r") or line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(address, 16) for address in fields[0].split("-"))
            try:
                memory.seek(start)
                if needle in memory.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


def core_limit(pid: int) -> list[str]:
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    return next(line for line in limits if line.startswith("Max core file size")).split()[4:6]


class AtThePrompt:
    """The CLI on a pseudo-terminal, with core dumps allowed, run until ``prompt`` is on its screen."""

    def __init__(self, world: World, argv: list[str], answers: list[tuple[str, str]], prompt: str,
                 cwd: Path) -> None:
        self.terminal, child_side = pty.openpty()
        self.process = subprocess.Popen(
            [*WITHOUT_PTRACE, "prlimit", "--core=unlimited", sys.executable, "-c", TAKE_TERMINAL,
             str(BIN / "govuk-imds"), *argv],
            stdin=child_side, stdout=child_side, stderr=child_side, env=world.environment, cwd=cwd,
            start_new_session=True,
        )
        os.close(child_side)
        self.screen = b""
        for expected, answer in [*answers, (prompt, "")]:
            self._wait_for(expected.encode())
            if answer:
                os.write(self.terminal, answer.encode() + b"\n")

    def _wait_for(self, text: bytes) -> None:
        deadline = time.monotonic() + 30
        while text not in self.screen:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.process.kill()
                pytest.fail(f"never saw {text!r}; screen:\n{self.screen.decode(errors='replace')}")
            ready, _, _ = select.select([self.terminal], [], [], 0.1)
            if ready:
                try:
                    self.screen += os.read(self.terminal, 4096)
                except OSError:
                    continue

    def quit(self) -> int:
        self.process.send_signal(signal.SIGQUIT)
        code = self.process.wait(30)
        os.close(self.terminal)
        return code


@pytest.fixture
def core_dir(tmp_path: Path) -> Path:
    require(shutil.which("prlimit") is not None and shutil.which("setpriv") is not None,
            "prlimit and setpriv (Debian util-linux)")
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    require(not pattern.startswith("|") and "/" not in pattern, f"core files written to the cwd (core_pattern is "
                                                                f"{pattern!r})")
    directory = tmp_path / "cores"
    directory.mkdir()
    return directory


#: Runs a command without CAP_SYS_PTRACE, as every program of an ordinary user runs. The commands under test run
#: this way too: the kernel lets a process read another's memory (or attach to it) without that capability only
#: if the other holds no capability it lacks and is dumpable, so with both alike only PR_SET_DUMPABLE decides.
WITHOUT_PTRACE = ["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace"]


def readable_by_a_plain_process_of_the_same_uid(pid: int) -> bool:
    """Whether a process of the same uid without CAP_SYS_PTRACE (what any program of the user is) can open the
    memory of ``pid`` (itself run that way): the kernel allows it for a dumpable process, and refuses it (and
    ptrace) otherwise."""
    probe = subprocess.run(
        [*WITHOUT_PTRACE, "/usr/bin/python3", "-c", f"open('/proc/{pid}/mem', 'rb').close()"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert probe.returncode == 0 or "PermissionError" in probe.stderr, probe.stderr
    return probe.returncode == 0


def cores_in(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if path.name.startswith("core")]


@pytest.mark.parametrize("command", ["unlock", "rotate-key"])
def test_at_the_mfa_prompt_the_key_is_not_in_memory_and_no_core_can_be_written(
        world: World, core_dir: Path, command: str) -> None:
    world.add_key()
    world.start()
    argv = ["unlock", "production"] if command == "unlock" else ["rotate-key", "gds"]
    cli = AtThePrompt(world, argv, [], f"MFA code for {world.mfa_serial}:", core_dir)
    pid = cli.process.pid
    assert core_limit(pid) == ["0", "0"]  # RLIMIT_CORE, set by the command itself
    assert memory_holds(pid, world.mfa_serial.encode())  # the scan sees what the process holds...
    assert not memory_holds(pid, world.secret.encode())  # ...and the key is read only after the code
    assert not readable_by_a_plain_process_of_the_same_uid(pid)  # PR_SET_DUMPABLE 0
    assert cli.quit() == -signal.SIGQUIT
    assert cores_in(core_dir) == []


@pytest.mark.parametrize("command", ["add", "import"])
def test_the_commands_that_take_a_key_in_write_no_core_holding_it(
        world: World, core_dir: Path, command: str) -> None:
    if command == "add":
        answers = [("Access key id:", world.key_id)]
        prompt = "Secret access key:"
    else:
        credentials = world.home / ".aws" / "credentials"
        credentials.write_text(f"[gds]\naws_access_key_id = {world.key_id}\naws_secret_access_key = {world.secret}\n")
        answers, prompt = [], "[y/N]"
    cli = AtThePrompt(world, [command, "gds"], answers, prompt, core_dir)
    pid = cli.process.pid
    assert core_limit(pid) == ["0", "0"]
    assert memory_holds(pid, world.key_id.encode())  # the key (id) is in memory now: a core would hold it
    assert not readable_by_a_plain_process_of_the_same_uid(pid)
    assert cli.quit() == -signal.SIGQUIT
    assert cores_in(core_dir) == []


def test_the_daemon_keeps_its_memory_to_itself(world: World, core_dir: Path) -> None:
    """The daemon holds MFA sessions and role credentials: RLIMIT_CORE 0 and PR_SET_DUMPABLE 0, each tested alone."""
    world.add_key()
    started = subprocess.run([*WITHOUT_PTRACE, "prlimit", "--core=unlimited", str(BIN / "govuk-imds"), "start"],
                             env=world.environment, cwd=core_dir, capture_output=True, text=True, timeout=60,
                             check=False)
    assert started.returncode == 0, started.stderr
    assert world.unlock("production").returncode == 0
    pid = world.daemon_pid()
    assert pid is not None
    assert core_limit(pid) == ["0", "0"]
    assert not readable_by_a_plain_process_of_the_same_uid(pid)
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 20
    while alive(pid):
        assert time.monotonic() < deadline, "the daemon did not end on SIGQUIT"
        time.sleep(0.1)
    assert cores_in(core_dir) == []


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_the_probe_does_read_an_ordinary_process_of_the_same_uid(core_dir: Path) -> None:
    """Guard against a vacuous pass: the same probe reads a process that did not make itself undumpable."""
    ordinary = subprocess.Popen([*WITHOUT_PTRACE, "sleep", "30"])
    try:
        assert readable_by_a_plain_process_of_the_same_uid(ordinary.pid)
    finally:
        ordinary.kill()
        ordinary.wait()
