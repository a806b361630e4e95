"""`credential-process` and `profile`, for tools that read only ~/.aws/config profiles, through the real aws CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.world import ACCOUNTS, BIN, World


def aws_with_profile(world: World, profile: str) -> subprocess.CompletedProcess[str]:
    # The user's own environment (runtime dir, config), as an IDE or shell would pass it on, plus the profile.
    environment = dict(world.environment, AWS_PROFILE=profile, AWS_CONFIG_FILE=str(world.aws_config_file))
    return subprocess.run([str(BIN / "aws"), "sts", "get-caller-identity", "--endpoint-url", world.sts.url],
                          env=environment, capture_output=True, text=True, timeout=60, check=False)


def test_profile_stanza_drives_the_aws_cli_through_credential_process(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    stanza = world.cli("profile", "govuk-production")
    assert stanza.returncode == 0, stanza.stderr
    assert stanza.stdout.startswith("[profile imds-production]\ncredential_process = /")
    assert "region = eu-west-1" in stanza.stdout
    with world.aws_config_file.open("a") as config:
        config.write("\n" + stanza.stdout)
    answer = aws_with_profile(world, "imds-production")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["Arn"].startswith(f"arn:aws:sts::{ACCOUNTS['production']}:assumed-role/")

    assert world.cli("lock", "production").returncode == 0
    refused = aws_with_profile(world, "imds-production")
    assert refused.returncode != 0
    assert "govuk-imds unlock production" in refused.stderr


def test_credential_process_prints_version_1_json(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("staging").returncode == 0
    printed = world.cli("credential-process", "staging")
    assert printed.returncode == 0, printed.stderr
    document = json.loads(printed.stdout)
    assert document["Version"] == 1
    assert set(document) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert document["Expiration"].endswith("Z")


def test_credential_process_when_locked_or_stopped_says_what_to_type(world: World) -> None:
    world.start()
    locked = world.cli("credential-process", "integration")
    assert locked.returncode != 0
    assert locked.stdout == ""
    assert "govuk-imds unlock integration" in locked.stderr
    assert world.cli("stop").returncode == 0
    stopped = world.cli("credential-process", "integration")
    assert stopped.returncode != 0
    assert "govuk-imds start" in stopped.stderr


def test_credential_process_refuses_a_token_file_replaced_by_a_symlink(world: World, tmp_path: Path) -> None:
    # Someone swaps the token file for a link to another file: its content must never be sent as a token.
    world.start()
    planted = tmp_path / "not-a-token"
    planted.write_text("contents-of-someone-elses-file")
    token_file = world.runtime / "tokens" / "staging"
    token_file.unlink()
    token_file.symlink_to(planted)
    refused = world.cli("credential-process", "staging")
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert f"{token_file} is a symlink; remove it and try again" in refused.stderr
