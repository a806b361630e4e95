"""Day one and every day, end to end: `init` reading the MFA device from IAM (moto), `status` naming each
environment's account and role, and the prompt segment in a real bash."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.support.terminal import Terminal
from tests.support.world import ACCOUNTS, BIN, World, require


def test_status_shows_each_environments_account_and_role(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("staging").returncode == 0
    shown = world.cli("status")
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()[1:]
    assert header.split()[:4] == ["ENVIRONMENT", "STATE", "ACCOUNT", "ROLE"]
    by_name = {row.split()[0]: row.split() for row in rows if row.strip()}
    assert by_name["staging"][1:4] == ["active", ACCOUNTS["staging"], "govuk-administrators"]
    assert by_name["production"][1:4] == ["locked", ACCOUNTS["production"], "govuk-administrators"]


# -- the prompt segment, in a real bash ----------------------------------------------------------------------------

# What the terminal receives: readline drops the \001 and \002 that mark the colour codes as taking no room.
YELLOW, RED, RESET = "\x1b[33m", "\x1b[1;31m", "\x1b[0m"


def prompt_shell(world: World, environment: str, tmp_path: Path) -> Terminal:
    """``govuk-imds exec <environment> -- bash -i`` with the snippet loaded the way the README says."""
    rc = tmp_path / f"bashrc-{environment}"
    rc.write_text("PS1='$ '\neval \"$(govuk-imds prompt bash)\"\n")
    return Terminal([str(BIN / "govuk-imds"), "exec", environment, "--", "bash", "--noprofile", "--rcfile", str(rc),
                     "-i"], {**world.environment, "TERM": "xterm"})


def test_the_bash_prompt_shows_the_environment_and_changes_after_lock(world: World, tmp_path: Path) -> None:
    require(shutil.which("bash") is not None, "bash")
    world.add_key()
    world.start()
    assert world.unlock("staging", "production").returncode == 0
    with prompt_shell(world, "staging", tmp_path) as staging:
        staging.expect(re.escape(f"{YELLOW}(staging){RESET} $ "))
        staging.send("govuk-imds lock staging\r")
        staging.expect(r"locked: staging")
        staging.expect(re.escape(f"{YELLOW}(staging locked){RESET} $ "))
        staging.send(f"govuk-imds unlock staging --code {world.code()}\r")
        staging.expect(r"staging: unlocked until")
        staging.expect(re.escape(f"{YELLOW}(staging){RESET} $ "))
        # With no program to be found, the prompt still knows: it is drawn with bash's builtins alone.
        staging.send("PATH=/nowhere; echo DONE:$((2+3))\r")
        staging.expect("DONE:5")
        staging.expect(re.escape(f"{YELLOW}(staging){RESET} $ "))
        staging.send("exit\r")
    with prompt_shell(world, "production", tmp_path) as production:
        production.expect(re.escape(f"{RED}(production){RESET} $ "))
        production.send("exit\r")


def test_a_shell_that_points_nowhere_has_no_segment(world: World, tmp_path: Path) -> None:
    rc = tmp_path / "bashrc"
    rc.write_text("PS1='plain$ '\neval \"$(govuk-imds prompt bash)\"\necho \"PS1=[$PS1]\"\n")
    with Terminal(["/bin/bash", "--noprofile", "--rcfile", str(rc), "-i"], {**world.environment, "TERM": "xterm"}) \
            as shell:
        shell.expect(re.escape("PS1=[${__govuk_imds_ps1}plain$ ]"))
        shell.expect(r"\n(\x1b\[\?2004h)?plain\$ ")  # the segment is empty: nothing before the prompt
        shell.send("exit\r")


# -- init reads the MFA device from IAM ----------------------------------------------------------------------------


def test_init_reads_the_mfa_device_from_iam_with_the_stored_key(world: World) -> None:
    """GetCallerIdentity says whose the key is, ListMFADevices (moto, through the proxy) names the device."""
    world.add_key()
    world.config_file.write_text(world.config_file.read_text() + f'\n[iam]\nendpoint_url = "{world.sts.url}"\n')
    world.aws_config_file.unlink()
    done = world.cli("init", "--from-iam", "--role", "govuk-users", "--environment", "test")
    assert done.returncode == 0, done.stderr
    assert world.sts.count("ListMFADevices") >= 1
    written = world.aws_config_file.read_text()
    assert f"mfa_serial = {world.mfa_serial}\n" in written  # the device moto holds for this user
    user = world.mfa_serial.rsplit("/", 1)[-1]
    assert f"arn:aws:iam::123456789012:user/{user}" in done.stdout
    # The environment works end to end: unlock with a code for that device.
    world.start()
    unlocked = world.cli("unlock", "test", "--code", world.code())
    assert unlocked.returncode == 0, unlocked.stderr


def test_init_from_iam_without_a_stored_key_says_how_to_store_one(world: World) -> None:
    done = world.cli("init", "--from-iam", "--role", "govuk-users")
    assert done.returncode == 3
    assert done.stderr.strip() == (
        "govuk-imds: no access key is stored for source profile 'gds'; run `govuk-imds add gds`"
    )


# -- init asks on a terminal ---------------------------------------------------------------------------------------


def test_init_asks_for_the_role_and_the_email_on_a_terminal(world: World) -> None:
    world.aws_config_file.unlink()
    with Terminal([str(BIN / "govuk-imds"), "init", "--environment", "staging"], world.environment) as terminal:
        terminal.expect(r"Which GOV\.UK role do you have\?")
        terminal.expect(r"2\. govuk-powerusers +everyone else who has production access")
        terminal.expect(r"Role \[1-3 or a name; several with spaces, the first is the default\]: ")
        terminal.send("2 govuk-users\r")
        terminal.expect(r"Your GDS email \(first\.last@digital\.cabinet-office\.gov\.uk\): ")
        terminal.send("First.Last@digital.cabinet-office.gov.uk\r")
        terminal.expect(r"added to \S+: govuk-staging, govuk-staging-users, gds")
        terminal.expect(r"Next:")
    written = world.aws_config_file.read_text()
    assert "role_arn = arn:aws:iam::696911096973:role/govuk-powerusers\n" in written
    assert "[profile govuk-staging-users]\nrole_arn = arn:aws:iam::696911096973:role/govuk-users\n" in written
    assert "mfa_serial = arn:aws:iam::622626885786:mfa/first.last@digital.cabinet-office.gov.uk\n" in written
