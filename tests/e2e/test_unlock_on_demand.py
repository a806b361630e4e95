"""Unlocking on demand, as a person meets it at a real terminal (a pseudo-terminal, ``tests/support/terminal.py``):
``exec``, ``env`` and ``shell`` on a locked environment ask for the code there (or get it from ``mfa_process``),
unlock, and go on; ``env``'s stdout, which the shell evals, holds nothing of the prompt. ``--no-unlock`` keeps the
old behaviour, and with no way to ask (no terminal, no mfa_process) a command goes on and says it is locked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_codes import with_mfa_process
from tests.support.authenticator import Authenticator
from tests.support.federation_emulator import FederationEmulator
from tests.support.sts_emulator import StsProxy
from tests.support.terminal import Terminal, plain
from tests.support.world import BIN, World, one_line, status_rows

GOVUK_IMDS = str(BIN / "govuk-imds")


def whoami(world: World) -> str:
    return f"aws sts get-caller-identity --endpoint-url {world.sts.url} --output text --query Arn"


def role_of(world: World, name: str) -> str:
    from tests.support.world import ACCOUNTS

    return f"arn:aws:sts::{ACCOUNTS[name]}:assumed-role/govuk-administrators/"


def test_exec_asks_for_the_code_on_the_terminal_then_runs_the_command(world: World) -> None:
    world.add_key()
    world.start()
    argv = [GOVUK_IMDS, "exec", "production", "--", "sh", "-c", f'echo "in $GOVUK_IMDS_ENVIRONMENT"; {whoami(world)}']
    with Terminal(argv, world.environment) as terminal:
        terminal.expect("production is locked; unlocking it first")
        terminal.expect("an MFA code is needed: no MFA session is held for gds")
        terminal.expect(f"MFA code for {world.mfa_serial}: ")
        code = world.code()
        terminal.send(code + "\r")
        terminal.expect("production: unlocked until")
        terminal.expect("in production")
        terminal.expect(role_of(world, "production"))
    assert code not in terminal.screen.decode()  # typed without echo
    assert status_rows(world)["production"]["state"] == "active"


def test_env_asks_on_the_terminal_and_its_output_holds_only_the_variables(world: World, tmp_path: Path) -> None:
    world.add_key()
    world.start()
    captured = tmp_path / "evaled"
    with Terminal(["/bin/bash", "--norc", "--noprofile", "-i"], world.environment) as terminal:
        terminal.send(f'out="$(govuk-imds env production)"; printf "%s" "$out" > {captured}; eval "$out"; '
                      'echo "endpoint=[$AWS_CONTAINER_CREDENTIALS_FULL_URI]"\r')
        terminal.expect(f"MFA code for {world.mfa_serial}: ")
        code = world.code()
        terminal.send(code + "\r")
        terminal.expect(rf"endpoint=\[http://127\.0\.0\.1:{world.port}/v1/credentials/production\]")
        terminal.send(whoami(world) + "\r")
        terminal.expect(role_of(world, "production"))
    evaled = captured.read_text()
    assert evaled.startswith("unset AWS_ACCESS_KEY_ID ")
    assert all(line.startswith(("unset ", "export ")) for line in evaled.splitlines())
    assert "MFA" not in evaled and "locked" not in evaled and code not in evaled
    assert code not in terminal.screen.decode()


def test_exec_with_mfa_process_asks_nothing_and_says_to_touch_the_key(world: World,
                                                                      authenticator: Authenticator) -> None:
    with_mfa_process(world)
    authenticator.set("ykman", "touch")
    world.add_key()
    world.start()
    with Terminal([GOVUK_IMDS, "exec", "staging", "--", "sh", "-c", whoami(world)], world.environment) as terminal:
        terminal.expect("touch your YubiKey to unlock staging")
        terminal.expect(role_of(world, "staging"))
    assert "MFA code for" not in terminal.screen.decode()
    assert len(authenticator.calls("ykman")) == 1


def test_exec_needs_no_code_when_the_held_mfa_session_covers_it(world: World, authenticator: Authenticator) -> None:
    with_mfa_process(world)
    world.add_key()
    world.start()
    assert world.unlock("staging").returncode == 0
    done = world.cli("exec", "production", "--", "sh", "-c", whoami(world))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(role_of(world, "production"))
    assert "no MFA code needed: using the MFA session held for gds" in done.stderr
    assert "production: unlocked until" in done.stderr
    assert authenticator.calls("ykman") == []


def test_an_unlocked_environment_is_not_unlocked_again(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    calls = len(world.sts.calls)
    done = world.cli("exec", "production", "--", "true")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(world.sts.calls) == calls


@pytest.mark.parametrize("argv", [["exec", "--no-unlock", "production", "--", "sh", "-c", "echo ran"],
                                  ["exec", "production", "--no-unlock", "--", "sh", "-c", "echo ran"]])
def test_no_unlock_runs_the_command_as_before(world: World, argv: list[str]) -> None:
    world.add_key()
    world.start()
    with Terminal([GOVUK_IMDS, *argv], world.environment) as terminal:
        terminal.expect("ran")
    assert "MFA code" not in terminal.screen.decode()
    assert status_rows(world)["production"]["state"] == "locked"


def test_with_no_way_to_ask_env_and_exec_go_on_and_say_it_is_locked(world: World) -> None:
    world.add_key()
    world.start()
    warning = ("govuk-imds: warning: production is locked, and there is no terminal to ask for an MFA code on and "
               "no mfa_process; run `govuk-imds unlock production`")
    printed = world.cli("env", "production", input="")
    assert printed.returncode == 0
    assert printed.stdout.startswith("unset ")
    assert printed.stderr.strip() == warning
    ran = world.cli("exec", "production", "--", "echo", "ran", input="")
    assert (ran.returncode, ran.stdout, ran.stderr.strip()) == (0, "ran\n", warning)


def test_a_wrong_code_runs_nothing(world: World) -> None:
    world.add_key()
    world.start()
    marker = world.home / "ran"
    with Terminal([GOVUK_IMDS, "exec", "production", "--", "touch", str(marker)], world.environment) as terminal:
        terminal.expect("MFA code for")
        valid = world.code()
        terminal.send(f"{(int(valid) + 1) % 1_000_000:06d}\r")
        terminal.expect(r"govuk-imds: .*MFA code")
    assert not marker.exists()
    assert status_rows(world)["production"]["state"] == "locked"


def test_ctrl_c_at_the_prompt_runs_nothing_and_says_so_once(world: World) -> None:
    world.add_key()
    world.start()
    marker = world.home / "ran"
    with Terminal([GOVUK_IMDS, "exec", "production", "--", "touch", str(marker)], world.environment) as terminal:
        terminal.expect("MFA code for")
        terminal.send("\x03")
        assert terminal.wait() == 130
    assert plain(terminal.screen).count("interrupted") == 1
    assert not marker.exists()


def test_shell_starts_the_users_shell_and_exit_leaves_the_parent_untouched(world: World) -> None:
    world.add_key()
    world.start()
    # The shell's own startup file loads the prompt segment, which shows the environment it points at.
    (world.home / ".bashrc").write_text('eval "$(govuk-imds prompt bash)"\n')
    environment = {**world.environment, "SHELL": "/bin/bash"}
    with Terminal(["/bin/bash", "--norc", "--noprofile", "-i"], environment) as terminal:
        terminal.send("export OUTER=1; govuk-imds shell production\r")
        terminal.expect(f"MFA code for {world.mfa_serial}: ")
        terminal.send(world.code() + "\r")
        terminal.expect("govuk-imds: a new bash for production; `exit` comes back here")
        terminal.expect(r"\(production\)")
        terminal.send('echo "inside:$GOVUK_IMDS_ENVIRONMENT:$OUTER"; export INNER=1\r')
        terminal.expect("inside:production:1")
        terminal.send(whoami(world) + "\r")
        terminal.expect(role_of(world, "production"))
        terminal.send("exit\r")
        terminal.send('echo "outside:[$GOVUK_IMDS_ENVIRONMENT][$INNER][$AWS_CONTAINER_CREDENTIALS_FULL_URI]"\r')
        terminal.expect(r"outside:\[\]\[\]\[\]")


def test_shell_inside_a_shell_says_so(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production", "staging").returncode == 0
    environment = {**world.environment, "SHELL": "/bin/sh", "GOVUK_IMDS_ENVIRONMENT": "staging"}
    with Terminal([GOVUK_IMDS, "shell", "production"], environment) as terminal:
        terminal.expect(r"govuk-imds: a new sh for production \(inside the one for staging\)")
        terminal.send('echo "now:$GOVUK_IMDS_ENVIRONMENT"; exit\r')
        terminal.expect("now:production")
    assert "MFA code" not in plain(terminal.screen)


@pytest.fixture
def signin(sts: StsProxy) -> Iterator[FederationEmulator]:
    with FederationEmulator(sts) as emulator:
        yield emulator


def test_console_unlocks_on_demand_too(world: World, authenticator: Authenticator,
                                       signin: FederationEmulator) -> None:
    with_mfa_process(world)
    world.config_file.write_text(world.config_file.read_text() + f'\n[signin]\nendpoint_url = "{signin.url}"\n')
    world.add_key()
    world.start()
    printed = world.cli("console", "production", "--print")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith(signin.url)  # only the URL on stdout; the unlock spoke on stderr
    assert "production is locked; unlocking it first" in printed.stderr
    assert len(authenticator.calls("ykman")) == 1

    assert world.cli("lock", "production").returncode == 0
    refused = world.cli("console", "production", "--print", "--no-unlock")
    assert refused.returncode == 5
    assert one_line(refused) == "govuk-imds: environment 'production' is locked (locked by you); run `govuk-imds " \
                                "unlock production`"
