"""What shadows the endpoint, client by client, and that `env` and `exec` clear it.

Rules shown (ecs-protocol.md): every SDK consults access keys, a profile and web identity before the container
provider, so with any of them set our endpoint is never asked; ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` beats
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and sends clients to 169.254.170.2 instead; `env` and `exec` therefore clear
all of them. A ``[default]`` key pair in ``~/.aws/credentials`` still wins after `env` (no variable hides it without
hiding every other profile too), so `env` and `exec` say so on stderr, with the fix.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support.world import ACCOUNTS, World, env_json

from .clients import (
    Outcome,
    aws,
    aws_command,
    boto3_command,
    client_env,
    daemon_answers,
    guarded,
    node_command,
    run_together,
)

ROLE = f"arn:aws:sts::{ACCOUNTS['production']}:assumed-role/govuk-administrators/"
RELATIVE_URI = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v1/credentials/production"}
USER = ":user/"  # the gds user's own identity: its long-term key was used as it is


def test_relative_uri_beats_full_uri_and_sends_every_client_to_the_ecs_address(served: World,
                                                                             js_sdk: Path) -> None:
    environment = client_env(served, "production", **RELATIVE_URI)
    outcomes = run_together({"boto3": (boto3_command(served.sts.url), environment),
                             "js-default": (node_command(served.sts.url), environment),
                             "aws": (aws_command(served.sts.url), environment)})
    cli = outcomes["aws"]

    boto3 = outcomes["boto3"]
    assert not boto3.last["ok"]
    assert '"http://169.254.170.2/v1/credentials/production"' in boto3.last["message"]
    assert "BLOCKED name lookup of 169.254.170.2:80" in boto3.stderr  # where it went instead of 127.0.0.1
    assert cli.returncode != 0
    assert "BLOCKED name lookup of 169.254.170.2:80" in cli.stderr
    js = outcomes["js-default"].last
    assert not js["ok"]
    assert set(js["blocked"]) == {"169.254.170.2:80"}  # fromHttp four times, then fromContainerMetadata
    assert len(js["blocked"]) == 5
    assert daemon_answers(js) == []  # our endpoint was never asked

    unset = env_json(served, "production")["unset"]
    assert isinstance(unset, list)
    assert "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in unset


@pytest.mark.parametrize(
    ("shadow", "botocore_method", "js_says"),
    [
        pytest.param("keys", "env", None, id="access-keys"),
        pytest.param("profile", None, "Profile govuk-production requires multi-factor authentication", id="profile"),
    ],
)
def test_variables_that_shadow_the_endpoint_win_over_it_in_every_client(
        served: World, js_sdk: Path, shadow: str, botocore_method: str | None, js_says: str | None) -> None:
    extra = ({"AWS_ACCESS_KEY_ID": served.key_id, "AWS_SECRET_ACCESS_KEY": served.secret} if shadow == "keys"
             else {"AWS_PROFILE": "govuk-production"})
    environment = client_env(served, "production", **extra)
    outcomes = run_together({"boto3": (boto3_command(served.sts.url), environment),
                             "js-default": (node_command(served.sts.url), environment)})
    cli = aws(served, environment)

    boto3, js = outcomes["boto3"].last, outcomes["js-default"].last
    assert daemon_answers(js) == []
    if shadow == "keys":  # the long-term key is used as it is: the user, not the environment's role
        assert USER in boto3["arn"]
        assert boto3["method"] == botocore_method
        assert USER in js["arn"]
        assert USER in json.loads(cli.stdout)["Arn"]
    else:  # the profile's own role_arn/source_profile/mfa_serial are tried instead, and fail
        assert not boto3["ok"]
        assert boto3["message"] == 'The source profile "gds" must have credentials.'
        assert boto3["failed_fetches"] == []
        assert not js["ok"]
        assert js_says is not None and js_says in js["message"]
        assert cli.returncode != 0
        assert 'The source profile "gds" must have credentials.' in cli.stderr


def test_a_default_key_pair_in_the_credentials_file_still_wins_after_env_which_says_so(
        served: World, js_sdk: Path, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {served.key_id}\naws_secret_access_key = {served.secret}\n")
    pointed = {**served.environment, "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    for command in (["env", "production"], ["exec", "production", "--", "true"]):
        printed = served.cli(*command, env=pointed)
        assert printed.returncode == 0, printed.stderr
        assert f"warning: {credentials} has a key pair in [default]" in printed.stderr
        assert "fix: govuk-imds import default" in printed.stderr
        assert served.secret not in printed.stderr
    assert "has a key pair" not in served.cli("env", "production").stderr  # the usual file holds none

    environment = client_env(served, "production", AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    outcomes = run_together({"boto3": (boto3_command(served.sts.url), environment),
                             "js-default": (node_command(served.sts.url), environment)})

    boto3, js = outcomes["boto3"].last, outcomes["js-default"].last
    assert USER in boto3["arn"]
    assert boto3["method"] == "shared-credentials-file"
    assert USER in js["arn"]
    assert daemon_answers(js) == []


def everything_that_shadows(world: World, tmp_path: Path) -> dict[str, str]:
    web_identity = tmp_path / "web-identity-token"
    web_identity.write_text("eyJhbGciOi.not-a-real-token.x")
    return {
        "AWS_ACCESS_KEY_ID": world.key_id,
        "AWS_SECRET_ACCESS_KEY": world.secret,
        "AWS_SESSION_TOKEN": "stale-session-token",
        "AWS_SECURITY_TOKEN": "stale-session-token",
        "AWS_PROFILE": "govuk-production",
        "AWS_DEFAULT_PROFILE": "govuk-staging",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "stale-token",
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(web_identity),
        "AWS_ROLE_ARN": f"arn:aws:iam::{ACCOUNTS['staging']}:role/somewhere-else",
        **RELATIVE_URI,
    }


def test_exec_clears_everything_that_shadows_for_every_client(served: World, js_sdk: Path,
                                                              tmp_path: Path) -> None:
    parent = guarded({**served.environment, **everything_that_shadows(served, tmp_path)})
    commands = {
        "aws": aws_command(served.sts.url),
        "boto3": boto3_command(served.sts.url),
        "js-default": node_command(served.sts.url),
        "js-http": node_command(served.sts.url, "http"),
    }
    for client, command in commands.items():
        ran = served.cli("exec", "production", "--", *command, env=parent)
        assert ran.returncode == 0, f"{client}: {ran.stdout}\n{ran.stderr}"
        if client == "aws":
            assert json.loads(ran.stdout)["Arn"].startswith(ROLE)
            continue
        result = Outcome(ran).last
        assert result["arn"].startswith(ROLE), client
        assert result.get("blocked", []) == [], client
        assert "BLOCKED" not in ran.stderr, client


def test_eval_env_in_a_shell_clears_everything_that_shadows(served: World, js_sdk: Path, tmp_path: Path) -> None:
    script = "\n".join([
        'eval "$(govuk-imds env production)" || exit 9',
        f"aws sts get-caller-identity --endpoint-url {shlex.quote(served.sts.url)} --query Arn --output text",
        shlex.join(boto3_command(served.sts.url)),
        shlex.join(node_command(served.sts.url)),
    ])
    parent = guarded({**served.environment, **everything_that_shadows(served, tmp_path)})
    ran = subprocess.run(["bash", "-e", "-c", script], env=parent, capture_output=True, text=True, timeout=60,
                         check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    cli_arn = ran.stdout.splitlines()[0]
    boto3_answer, js_answer = Outcome(ran).answers
    assert cli_arn.startswith(ROLE)
    assert boto3_answer["arn"].startswith(ROLE)
    assert boto3_answer["method"] == "container-role"
    assert js_answer["arn"].startswith(ROLE)
    assert "BLOCKED" not in ran.stderr
