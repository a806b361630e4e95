"""docs/migration.md, run: every govuk-imds equivalent of a `gds aws` use that exists today, exactly as the page
writes it (the console, `shell` and `unlock --duration` come with other issues)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

from govuk_imds.core.clock import parse_rfc3339
from tests.support.world import ACCOUNTS, BIN, World, status_rows


def caller(text: str) -> str:
    return str(json.loads(text)["Arn"])


def test_gds_aws_role_dash_dash_command_is_exec(served: World) -> None:
    done = served.cli("exec", "production", "--", str(BIN / "aws"), "sts", "get-caller-identity",
                      "--endpoint-url", served.sts.url, "--output", "json")
    assert done.returncode == 0, done.stderr
    assert f"arn:aws:sts::{ACCOUNTS['production']}:assumed-role/govuk-administrators/" in caller(done.stdout)


def test_gds_aws_dash_e_is_eval_env(served: World) -> None:
    script = (f'eval "$(govuk-imds env staging)"; '
              f'aws sts get-caller-identity --endpoint-url {served.sts.url} --output json')
    done = subprocess.run(["sh", "-c", script], env=served.environment, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert f":{ACCOUNTS['staging']}:assumed-role/" in caller(done.stdout)


def test_gds_aws_dash_s_is_exec_of_a_shell(served: World) -> None:
    shell = 'echo "$GOVUK_IMDS_ENVIRONMENT $AWS_CONTAINER_CREDENTIALS_FULL_URI"'
    done = served.cli("exec", "staging", "--", "sh", "-c", shell)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["staging", served.url("staging")]


def test_gds_aws_dash_d_is_status_and_the_account_list_is_accounts(served: World) -> None:
    shown = served.cli("status")
    assert shown.returncode == 0, shown.stderr
    production = next(line.split() for line in shown.stdout.splitlines() if line.startswith("production "))
    assert production[1:4] == ["active", ACCOUNTS["production"], "govuk-administrators"]
    listed = served.cli("accounts")
    assert listed.returncode == 0, listed.stderr
    assert "172025368201" in listed.stdout


def test_gds_aws_art_is_session_duration_in_the_config(world: World) -> None:
    world.config_file.write_text(world.config_file.read_text().replace("port =", 'session_duration = "2h"\nport ='))
    world.add_key()
    world.start()
    before = datetime.now(UTC)
    assert world.unlock("integration").returncode == 0
    ends = parse_rfc3339(str(status_rows(world)["integration"]["session_ends"]))
    assert before + timedelta(hours=2) - timedelta(seconds=5) <= ends <= datetime.now(UTC) + timedelta(hours=2)
