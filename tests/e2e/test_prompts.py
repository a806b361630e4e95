"""What a person types at a terminal: prompts that do not echo secrets, through a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tests.support.terminal import TAKE_TERMINAL
from tests.support.world import BIN, World, status_rows


def run_in_terminal(world: World, argv: list[str], dialogue: list[tuple[str, str]],
                    timeout: float = 30) -> tuple[int, str]:
    """Run the CLI on a pty as its controlling terminal; answer each (prompt, answer) once its prompt appears.

    An answer is written only after its own prompt is on the screen: getpass turns echo off and flushes pending
    input *before* it writes the prompt, so an answer sent earlier (on the newline that ends the previous prompt,
    say) would be thrown away, or echoed. A CLI still running at the deadline is killed, so a broken prompt fails
    this test with the screen instead of hanging the suite.
    """
    terminal, child_side = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", TAKE_TERMINAL, str(BIN / "govuk-imds"), *argv],
        stdin=child_side, stdout=child_side, stderr=child_side, env=world.environment, start_new_session=True,
    )
    os.close(child_side)  # the child holds the only copy now, so its exit ends our reads with EIO
    seen = b""
    answered_up_to = 0  # the screen before this offset has been answered already
    pending = list(dialogue)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: every process on the child's side has closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if pending:
                prompt, answer = pending[0]
                found = seen.find(prompt.encode(), answered_up_to)
                if found >= 0:
                    pending.pop(0)
                    answered_up_to = found + len(prompt)
                    os.write(terminal, answer.encode() + b"\n")
        code = child.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        screen = seen.decode(errors="replace")
        pytest.fail(f"the CLI was still running after {timeout:g} s (unanswered: {pending}); screen:\n{screen}")
    finally:
        os.close(terminal)
    return code, seen.decode(errors="replace")


def test_add_prompts_without_echo(world: World) -> None:
    code, screen = run_in_terminal(world, ["add", "gds"], [("Access key id:", world.key_id),
                                                           ("Secret access key:", world.secret)])
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
    code, screen = run_in_terminal(world, ["unlock", "staging"], [(f"MFA code for {world.mfa_serial}:", code_typed)])
    assert code == 0, screen
    assert f"MFA code for {world.mfa_serial}:" in screen
    assert code_typed not in screen
    assert status_rows(world)["staging"]["state"] == "active"
