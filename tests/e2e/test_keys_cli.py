"""The key commands as a person runs them: the installed `govuk-imds` in a subprocess, a private keyring, moto's IAM
and STS behind the proxy. These need `cli/keys.py`'s commands registered in the CLI."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from govuk_imds.core.credentials import redact
from tests.support.world import World

DEFAULT = "[default]\naws_access_key_id = AKIADEFAULTDEFAULT01\naws_secret_access_key = " + "d" * 40 + "\n"
LEGACY = "# kept for the old deploy scripts\n[legacy]\nregion = eu-west-2\n"


@pytest.fixture
def keys_world(world: World) -> World:
    """The world, with IAM pointed at the proxy too (the `[iam]` table only emulators need)."""
    with world.config_file.open("a") as config:
        config.write(f'\n[iam]\nendpoint_url = "{world.sts.url}"\n')
    return world


def iam_keys(world: World, moto_iam: Any) -> set[str]:
    """The key ids moto itself holds for the world's user."""
    listed = moto_iam.list_access_keys(UserName=user_name(world))["AccessKeyMetadata"]
    return {item["AccessKeyId"] for item in listed}


def user_name(world: World) -> str:
    return world.mfa_serial.rsplit("/", 1)[-1]


def one_line(result: subprocess.CompletedProcess[str], stream: str = "stdout") -> str:
    text: str = getattr(result, stream)
    lines = text.strip().splitlines()
    assert len(lines) == 1, (result.stdout, result.stderr)
    return lines[0]


def no_secret_in(world: World, *results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert world.secret not in result.stdout + result.stderr
        assert world.key_id not in result.stdout + result.stderr


def test_import_moves_the_key_and_the_daemon_uses_it(keys_world: World, moto_iam: Any) -> None:
    world = keys_world
    credentials = world.home / ".aws" / "credentials"
    gds = f"[gds]\naws_access_key_id = {world.key_id}\naws_secret_access_key = {world.secret}\n"
    credentials.write_text(f"{DEFAULT}\n{gds}\n{LEGACY}")
    credentials.chmod(0o600)

    imported = world.cli("import", "gds", "--yes", input="")
    assert imported.returncode == 0, imported.stderr
    line = one_line(imported)
    assert line.startswith(f"stored key LongTermKey({redact(world.key_id)}) for 'gds' (arn:aws:iam::123456789012:user/")
    assert line.endswith(f"in keyring.backends.SecretService.Keyring; removed [gds] from {credentials}")
    assert credentials.read_text() == f"{DEFAULT}\n{LEGACY}"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert iam_keys(world, moto_iam) == {world.key_id}

    listed = world.cli("keys")
    assert listed.returncode == 0, listed.stderr
    assert one_line(listed).startswith(f"gds  {redact(world.key_id)}  {user_name(world)}  Active  created ")
    no_secret_in(world, imported, listed)

    world.start()
    unlocked = world.unlock("production")
    assert unlocked.returncode == 0, unlocked.stderr


def test_import_reads_the_file_aws_shared_credentials_file_names(keys_world: World, tmp_path: Path) -> None:
    world = keys_world
    elsewhere = tmp_path / "elsewhere-credentials"
    elsewhere.write_text(f"[gds]\naws_access_key_id = {world.key_id}\naws_secret_access_key = {world.secret}\n")
    imported = world.cli(
        "import", "gds", "--yes", input="", env={**world.environment, "AWS_SHARED_CREDENTIALS_FILE": str(elsewhere)}
    )
    assert imported.returncode == 0, imported.stderr
    assert elsewhere.read_text() == ""


def test_import_without_a_terminal_asks_for_yes_and_changes_nothing(keys_world: World) -> None:
    world = keys_world
    credentials = world.home / ".aws" / "credentials"
    credentials.write_text(f"[gds]\naws_access_key_id = {world.key_id}\naws_secret_access_key = {world.secret}\n")
    before = credentials.read_bytes()
    refused = world.cli("import", "gds", input="")
    assert refused.returncode == 2
    assert one_line(refused, "stderr") == (
        "govuk-imds: this command asks for confirmation and there is no terminal to ask on; pass --yes"
    )
    assert credentials.read_bytes() == before
    assert one_line(world.cli("keys")).startswith("no keys are stored")


def test_rotate_key_replaces_the_key_and_the_new_one_unlocks(keys_world: World, moto_iam: Any) -> None:
    world = keys_world
    world.add_key()
    rotated = world.cli("rotate-key", "gds", "--code", world.code())
    assert rotated.returncode == 0, rotated.stderr
    [new] = iam_keys(world, moto_iam)
    assert new != world.key_id
    assert one_line(rotated) == (
        f"rotated the key for 'gds' ({user_name(world)}): LongTermKey({redact(new)}) is in "
        f"keyring.backends.SecretService.Keyring and works; LongTermKey({redact(world.key_id)}) is deleted in AWS"
    )
    assert one_line(world.cli("keys")).startswith(f"gds  {redact(new)}  ")
    # The emulator ties the MFA device to a key, not to the user (AWS would not need this).
    world.sts.register_mfa_device(world.mfa_serial, access_key_id=new)
    world.start()
    unlocked = world.unlock("staging")
    assert unlocked.returncode == 0, unlocked.stderr


def test_rotate_key_reads_the_code_from_stdin(keys_world: World, moto_iam: Any) -> None:
    world = keys_world
    world.add_key()
    rotated = world.cli("rotate-key", "gds", input=f"{world.code()}\n")
    assert rotated.returncode == 0, rotated.stderr
    assert world.key_id not in iam_keys(world, moto_iam)


def test_rotate_key_refuses_a_malformed_code_before_calling_aws(keys_world: World, moto_iam: Any) -> None:
    world = keys_world
    world.add_key()
    calls = len(world.sts.calls)
    refused = world.cli("rotate-key", "gds", "--code", "12345")
    assert refused.returncode == 2
    assert "six digits" in one_line(refused, "stderr")
    assert len(world.sts.calls) == calls
    assert iam_keys(world, moto_iam) == {world.key_id}


def test_rotate_key_failing_midway_says_what_aws_holds(keys_world: World, moto_iam: Any) -> None:
    world = keys_world
    world.add_key()
    world.sts.fail_next("DeleteAccessKey", "access_denied")
    try:
        rotated = world.cli("rotate-key", "gds", "--code", world.code())
    finally:
        world.sts.clear_faults()
    assert rotated.returncode == 9
    line = one_line(rotated, "stderr")
    assert line.startswith("govuk-imds: rotated: the keyring holds the new key LongTermKey(")
    assert f"deleting the old key LongTermKey({redact(world.key_id)}) failed" in line
    held = iam_keys(world, moto_iam)
    assert len(held) == 2 and world.key_id in held
    [new] = held - {world.key_id}
    assert one_line(world.cli("keys")).startswith(f"gds  {redact(new)}  ")
    no_secret_in(world, rotated)


def test_rotate_key_stops_on_two_keys(keys_world: World, moto_iam: Any) -> None:
    world = keys_world
    world.add_key()
    moto_iam.create_access_key(UserName=user_name(world))
    stopped = world.cli("rotate-key", "gds", "--code", world.code())
    assert stopped.returncode == 9
    assert "already has two access keys" in one_line(stopped, "stderr")
    assert len(iam_keys(world, moto_iam)) == 2


def test_keys_warns_about_old_keys_and_ignores_python_keyring_backend(keys_world: World) -> None:
    world = keys_world
    world.add_key()
    hostile = {**world.environment, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    fresh = world.cli("keys", env=hostile)
    assert fresh.returncode == 0, fresh.stderr
    assert "warning" not in fresh.stdout
    old = world.cli("keys", "--max-age-days", "0", env=hostile)
    lines = old.stdout.strip().splitlines()
    assert len(lines) == 2, old.stdout
    assert lines[0].startswith(f"gds  {redact(world.key_id)}  {user_name(world)}  Active  created ")
    assert lines[0].endswith("(0 days ago)")
    assert lines[1].startswith("warning: the key for gds is older than 0 days")
    assert lines[1].endswith("run `govuk-imds rotate-key gds`")


def test_keys_without_iam_still_lists_the_key(keys_world: World) -> None:
    world = keys_world
    world.add_key()
    text = world.config_file.read_text()
    world.config_file.write_text(
        text.replace(f'[iam]\nendpoint_url = "{world.sts.url}"', '[iam]\nendpoint_url = "http://127.0.0.1:9"')
    )
    listed = world.cli("keys")
    assert listed.returncode == 0, listed.stderr
    line = one_line(listed)
    assert line == (
        f"gds  {redact(world.key_id)}  {user_name(world)}  age unknown: IAM would not list the keys "
        "(IAM could not be reached for ListAccessKeys (EndpointConnectionError))"
    )


def test_remove_asks_then_deletes(keys_world: World, moto_iam: Any) -> None:
    world = keys_world
    world.add_key()
    refused = world.cli("remove", "gds", input="")
    assert refused.returncode == 2
    assert "pass --yes" in one_line(refused, "stderr")
    assert one_line(world.cli("keys")).startswith("gds  ")

    removed = world.cli("remove", "gds", "--yes", input="")
    assert removed.returncode == 0, removed.stderr
    assert one_line(removed).startswith(f"removed key LongTermKey({redact(world.key_id)}) for 'gds' from keyring.")
    assert "still active in AWS" in removed.stdout
    assert one_line(world.cli("keys")).startswith("no keys are stored")
    assert iam_keys(world, moto_iam) == {world.key_id}  # the keyring only; AWS keeps the key

    again = world.cli("remove", "gds", "--yes", input="")
    assert again.returncode == 0
    assert one_line(again) == "no key is stored for 'gds'; nothing to remove"


@pytest.mark.parametrize("command", [["import", "../gds", "--yes"], ["rotate-key", "g ds"], ["remove", "", "--yes"]])
def test_bad_profile_names_are_one_line(keys_world: World, command: list[str]) -> None:
    refused = keys_world.cli(*command, input="")
    assert refused.returncode == 2
    assert "is not a profile name" in one_line(refused, "stderr")
