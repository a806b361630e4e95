"""Codes you never type: ``mfa_process`` (a stand-in ``ykman`` on PATH that prints real TOTPs for the emulator's
device) gives ``unlock`` and ``rotate-key`` their code, and the MFA-checking STS proxy verifies every one of them.
A command that prints nothing, letters, two lines, hangs or fails gets one line naming it and the fix, and no code
ever shows up in argv, output or the daemon's log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.authenticator import Authenticator
from tests.support.world import World, one_line, status_rows

YUBIKEY = "ykman oath accounts code --single gds-users"


def with_mfa_process(world: World, command: str = YUBIKEY, profile: str = "gds") -> None:
    """``mfa_process`` in the AWS config's source profile, where aws-vault reads it too."""
    text = world.aws_config_file.read_text()
    section = f"[profile {profile}]\n"
    world.aws_config_file.write_text(text.replace(section, f"{section}mfa_process = {command}\n"))


def in_config_toml(world: World, line: str) -> None:
    world.config_file.write_text(line + "\n" + world.config_file.read_text())


def no_code_leaked(world: World, authenticator: Authenticator, *texts: str) -> None:
    printed = authenticator.printed()
    assert printed
    for code in printed:
        for text in (*texts, world.log()):
            assert code not in text
        for call in authenticator.calls():
            assert code not in " ".join(call["argv"])


def test_unlock_takes_the_code_from_mfa_process_and_sts_accepts_it(world: World,
                                                                   authenticator: Authenticator) -> None:
    with_mfa_process(world)
    world.add_key()
    world.start()
    before = world.sts.count("GetSessionToken")

    unlocked = world.cli("unlock", "production", input="")  # stdin empty, not a terminal: mfa_process is next

    assert unlocked.returncode == 0, unlocked.stderr
    assert world.sts.count("GetSessionToken") == before + 1  # the proxy checked the code against the device
    assert status_rows(world)["production"]["state"] == "active"
    [call] = authenticator.calls("ykman")
    assert call["argv"] == ["oath", "accounts", "code", "--single", "gds-users"]  # no shell, words as written
    assert call["stdin"] == "devnull"  # a password prompt would fail rather than wait for ever
    no_code_leaked(world, authenticator, unlocked.stdout, unlocked.stderr)


def test_the_person_is_told_to_touch_the_key_when_ykman_asks(world: World, authenticator: Authenticator) -> None:
    with_mfa_process(world)
    authenticator.set("ykman", "touch")
    world.add_key()
    world.start()

    unlocked = world.cli("unlock", "production", input="")

    assert unlocked.returncode == 0, unlocked.stderr
    assert "touch your YubiKey to unlock production (mfa_process is waiting for it)" in unlocked.stderr
    assert "Touch your YubiKey..." not in unlocked.stderr  # ours, not ykman's raw stderr


def test_a_code_given_or_piped_comes_before_mfa_process(world: World, authenticator: Authenticator) -> None:
    with_mfa_process(world)
    world.add_key()
    world.start()
    assert world.cli("unlock", "production", "--code", world.code()).returncode == 0
    assert world.cli("lock", "--all").returncode == 0
    piped = world.cli("unlock", "staging", input=world.code() + "\n")
    assert piped.returncode == 0, piped.stderr
    assert authenticator.calls("ykman") == []


def test_config_toml_wins_over_the_aws_config_and_can_turn_it_off(world: World,
                                                                 authenticator: Authenticator) -> None:
    with_mfa_process(world, "does-not-exist --print-code")
    in_config_toml(world, f'mfa_process = "{YUBIKEY}"')
    world.add_key()
    world.start()
    assert world.cli("unlock", "production", input="").returncode == 0
    assert len(authenticator.calls("ykman")) == 1

    world.config_file.write_text(world.config_file.read_text().replace(f'mfa_process = "{YUBIKEY}"',
                                                                       'mfa_process = ""'))
    assert world.cli("lock", "--all").returncode == 0
    line = one_line(world.cli("unlock", "production", input=""))
    assert line == (
        "govuk-imds: no MFA code to use: stdin is empty; there is no terminal to ask on; run `govuk-imds unlock "
        'production` in a terminal, pass --code, pipe the code in, or set mfa_process (README: "MFA codes")'
    )
    assert len(authenticator.calls("ykman")) == 1


def test_mfa_process_in_the_environments_own_profile_counts_too(world: World,
                                                               authenticator: Authenticator) -> None:
    with_mfa_process(world, profile="govuk-staging")
    world.add_key()
    world.start()
    assert world.cli("unlock", "staging", input="").returncode == 0
    assert len(authenticator.calls("ykman")) == 1


def test_a_shell_written_by_the_user_is_run_and_a_pipe_without_one_is_refused(world: World,
                                                                               authenticator: Authenticator) -> None:
    with_mfa_process(world, f"sh -c '{YUBIKEY} | tr -d \" \"'")
    world.add_key()
    world.start()
    assert world.cli("unlock", "production", input="").returncode == 0

    world.aws_config_file.write_text(re.sub(r"mfa_process = .*", f"mfa_process = {YUBIKEY} | tr -d ' '",
                                            world.aws_config_file.read_text()))
    assert world.cli("lock", "--all").returncode == 0
    line = one_line(world.cli("unlock", "staging", input=""))
    assert line == (f"govuk-imds: {world.aws_config_file} [profile gds]: mfa_process uses the shell's '|', and "
                    "govuk-imds runs it without a shell; write it as `sh -c '...'` if you need one")


BROKEN = [
    ("empty", "printed nothing; it must print the six-digit code alone on stdout"),
    ("letters", "printed something that is not a six-digit code; it must print the six-digit code alone"),
    ("short", "printed 5 digits, not 6; it must print the six-digit code alone"),
    ("two-lines", "printed 2 lines; it must print the six-digit code alone"),
    ("fail", 'exited with status 1 (ERROR: No YubiKey detected!); plug in your YubiKey'),
    ("hang", "gave no code within 2 s and was stopped; touch your YubiKey when it flashes, or raise code_timeout in "
             "config.toml"),
]


@pytest.mark.parametrize(("behaviour", "said"), BROKEN, ids=[behaviour for behaviour, _ in BROKEN])
def test_a_broken_mfa_process_is_one_line_naming_it_and_the_fix(world: World, authenticator: Authenticator,
                                                                behaviour: str, said: str) -> None:
    with_mfa_process(world)
    in_config_toml(world, 'code_timeout = "2s"')
    authenticator.set("ykman", behaviour)
    world.add_key()
    world.start()
    before = world.sts.count("GetSessionToken")

    refused = world.cli("unlock", "production", input="")

    assert refused.returncode == 2
    assert one_line(refused) == (
        f"govuk-imds: mfa_process (ykman, set in {world.aws_config_file} [profile gds]) {said}, or type the code "
        "instead: `govuk-imds unlock production --no-mfa-process`"
    )
    assert world.sts.count("GetSessionToken") == before
    assert status_rows(world)["production"]["state"] == "locked"
    [call] = authenticator.calls("ykman")
    assert not _running(call["pid"])  # a hung command is stopped, not left behind
    for code in authenticator.printed():
        assert code not in refused.stdout + refused.stderr + world.log()


def test_ykman_without_single_is_told_to_add_it(world: World, authenticator: Authenticator) -> None:
    with_mfa_process(world, "ykman oath accounts code gds-users")
    authenticator.set("ykman", "name")
    world.add_key()
    world.start()
    line = one_line(world.cli("unlock", "production", input=""))
    assert ("printed something that is not a six-digit code; it must print the six-digit code alone (ykman: "
            "`ykman oath accounts code --single <account>`)") in line


def test_a_missing_program_says_so(world: World, authenticator: Authenticator) -> None:
    with_mfa_process(world, "no-such-ykman oath accounts code --single gds-users")
    world.add_key()
    world.start()
    line = one_line(world.cli("unlock", "production", input=""))
    assert line == (
        f"govuk-imds: mfa_process (no-such-ykman, set in {world.aws_config_file} [profile gds]) cannot be run (No "
        "such file or directory); install it or fix mfa_process, or type the code instead: `govuk-imds unlock "
        "production --no-mfa-process`"
    )


def test_no_mfa_process_skips_it(world: World, authenticator: Authenticator) -> None:
    with_mfa_process(world)
    world.add_key()
    world.start()
    unlocked = world.cli("unlock", "production", "--no-mfa-process", input=world.code() + "\n")
    assert unlocked.returncode == 0, unlocked.stderr
    assert authenticator.calls("ykman") == []


def test_letters_on_stdin_name_stdin_and_the_fix(world: World, authenticator: Authenticator) -> None:
    with_mfa_process(world)
    world.add_key()
    world.start()
    line = one_line(world.cli("unlock", "production", input="abcdef\n"))
    assert line == (
        "govuk-imds: stdin did not hold a six-digit MFA code; pipe in the code alone, e.g. `ykman oath accounts code "
        "--single gds-users | govuk-imds unlock production`"
    )
    assert authenticator.calls("ykman") == []  # a source that is there and fails is not passed over


def test_rotate_key_takes_its_code_from_mfa_process(world: World, authenticator: Authenticator,
                                                    moto_iam: Any) -> None:
    with world.config_file.open("a") as config:
        config.write(f'\n[iam]\nendpoint_url = "{world.sts.url}"\n')
    with_mfa_process(world)
    world.add_key()
    rotated = world.cli("rotate-key", "gds", input="")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("rotated the key for 'gds'")
    assert len(authenticator.calls("ykman")) == 1
    no_code_leaked(world, authenticator, rotated.stdout, rotated.stderr)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
