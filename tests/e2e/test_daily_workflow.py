"""The whole daily workflow with real processes: add, start, unlock, env, the aws CLI and boto3, lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support.world import ACCOUNTS, World, aws_whoami, env_json

BOTO3_SCRIPT = textwrap.dedent(
    """
    import boto3
    print(boto3.client("sts", endpoint_url=__import__("os").environ["STS_URL"]).get_caller_identity()["Arn"])
    """
)


def test_unlocked_environment_serves_its_role_to_aws_cli_and_boto3(world: World) -> None:
    world.add_key()
    world.start()
    unlocked = world.unlock("production")
    assert unlocked.returncode == 0, unlocked.stderr + world.log()
    assert "production: unlocked until" in unlocked.stdout

    answer = aws_whoami(world, "production")
    assert answer.returncode == 0, answer.stderr + world.log()
    arn = json.loads(answer.stdout)["Arn"]
    assert arn.startswith(f"arn:aws:sts::{ACCOUNTS['production']}:assumed-role/govuk-administrators/")

    environment = world.client_environment("production", env_json(world, "production"))
    environment["STS_URL"] = world.sts.url
    script = subprocess.run([sys.executable, "-c", BOTO3_SCRIPT], env=environment, capture_output=True, text=True,
                            timeout=60, check=False)
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == arn


def test_one_code_unlocks_several_environments_each_with_its_own_account(world: World) -> None:
    world.add_key()
    world.start()
    before = world.sts.count("GetSessionToken")
    unlocked = world.unlock("integration", "govuk-staging")
    assert unlocked.returncode == 0, unlocked.stderr
    assert world.sts.count("GetSessionToken") == before + 1
    for name in ("integration", "staging"):
        answer = aws_whoami(world, name)
        assert answer.returncode == 0, answer.stderr
        assert f"arn:aws:sts::{ACCOUNTS[name]}:assumed-role/" in answer.stdout


def test_after_lock_the_same_command_fails_with_the_unlock_hint(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    assert aws_whoami(world, "production").returncode == 0

    locked = world.cli("lock", "production")
    assert locked.returncode == 0, locked.stderr
    answer = aws_whoami(world, "production")
    assert answer.returncode != 0
    assert "govuk-imds unlock production" in answer.stderr


def test_status_shows_active_and_locked_environments(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("staging").returncode == 0
    status = world.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["environment"]: row for row in json.loads(status.stdout)["environments"]}
    assert rows["staging"]["state"] == "active"
    assert rows["staging"]["session_ends"].endswith("Z")
    assert rows["staging"]["credentials_expire"].endswith("Z")
    assert rows["production"]["state"] == "locked"
    assert rows["production"]["credentials_expire"] is None

    assert aws_whoami(world, "staging").returncode == 0
    rows = {row["environment"]: row for row in json.loads(world.cli("status", "--json").stdout)["environments"]}
    assert rows["staging"]["last_served"] is not None

    table = world.cli("status")
    assert table.returncode == 0
    assert "staging" in table.stdout and "active" in table.stdout and "locked" in table.stdout


def test_exec_runs_the_command_with_the_endpoint_and_returns_its_status(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("integration").returncode == 0
    environment = dict(world.environment, AWS_ACCESS_KEY_ID="AKIASHADOWSHADOW1234", AWS_PROFILE="other")
    ran = world.cli("exec", "integration", "--", "aws", "sts", "get-caller-identity", "--endpoint-url",
                    world.sts.url, env=environment)
    assert ran.returncode == 0, ran.stderr
    assert f"arn:aws:sts::{ACCOUNTS['integration']}:assumed-role/" in ran.stdout

    failed = world.cli("exec", "integration", "--", "sh", "-c", "exit 7")
    assert failed.returncode == 7


def test_start_is_idempotent_and_stop_stops(world: World) -> None:
    world.start()
    again = world.cli("start")
    assert again.returncode == 0
    assert "already running" in again.stdout
    stopped = world.cli("stop")
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert not (world.runtime / "control.sock").exists()
    assert world.cli("status").returncode != 0
