"""What a person types at a terminal: prompts that do not echo secrets, through a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import time

from conftest import BIN, World, status_rows


def run_in_terminal(world: World, argv: list[str], answers: list[str], timeout: float = 30) -> tuple[int, str]:
    """Run the CLI with a pty as its controlling terminal, answering each prompt in turn."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: becomes the CLI
        os.execve(str(BIN / "govuk-imds"), ["govuk-imds", *argv], world.environment)  # noqa: S606
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if pending and seen.rstrip().endswith(b":"):
                os.write(terminal, pending.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_add_prompts_without_echo(world: World) -> None:
    code, screen = run_in_terminal(world, ["add", "gds"], [world.key_id, world.secret])
    assert code == 0, screen
    assert "Access key id:" in screen
    assert "Secret access key:" in screen
    assert world.secret not in screen
    assert world.key_id not in screen
    assert f"…{world.key_id[-4:]}" in screen


def test_unlock_prompts_for_the_code_without_echo(world: World) -> None:
    world.add_key()
    world.start()
    code_typed = world.code()
    code, screen = run_in_terminal(world, ["unlock", "staging"], [code_typed])
    assert code == 0, screen
    assert f"MFA code for {world.mfa_serial}:" in screen
    assert code_typed not in screen
    assert status_rows(world)["staging"]["state"] == "active"
