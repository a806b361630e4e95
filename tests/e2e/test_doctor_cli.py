"""`govuk-imds doctor` end to end: each condition made real (daemon, files, variables, STS's clock), then the
installed command's output and exit status checked."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from tests.support.date_server import DateServer
from tests.support.world import World, env_json, free_port

NOT_FOR_THE_CLI = ("boto3", "botocore.client", "botocore.session", "aiohttp", "keyring", "secretstorage")


def doctor(world: World, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = world.cli("doctor", *args, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def pointed(world: World, name: str, **extra: str) -> dict[str, str]:
    """The user's shell after `eval "$(govuk-imds env <name>)"`, plus ``extra`` variables."""
    environment = dict(world.environment)
    set_variables = env_json(world, name)["set"]
    assert isinstance(set_variables, dict)
    environment.update({str(key): str(value) for key, value in set_variables.items()})
    environment.update(extra)
    return environment


def unlocked(world: World, *names: str) -> World:
    world.add_key()
    world.start()
    answer = world.unlock(*names)
    assert answer.returncode == 0, answer.stderr + world.log()
    return world


def findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    document = json.loads(result.stdout)
    assert document["ok"] == (result.returncode == 0)
    return list(document["findings"])


def failing(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if not line.startswith("ok ")]


def point_sts_at(world: World, url: str) -> None:
    text = world.config_file.read_text()
    world.config_file.write_text(re.sub(r'endpoint_url = "[^"]*"', f'endpoint_url = "{url}"', text))


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# -- all is well ------------------------------------------------------------------------------------------------------


def test_all_is_well_exits_zero_and_says_what_was_checked(world: World) -> None:
    unlocked(world, "production")
    result = doctor(world, "production", env=pointed(world, "production"))
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[-1] == "all is well"
    assert all(line.startswith("ok   ") for line in lines[:-1]), result.stdout
    for expected in (
        "ok   no variable in this shell shadows the endpoint",
        "ok   this shell points AWS tools at production",
        f"ok   the daemon is running (pid {world.daemon_pid()}) and accepts connections on 127.0.0.1:{world.port}",
        "ok   token files for production are present and private (0600)",
        "ok   production: the endpoint serves credentials valid for ",
        "ok   the local clock agrees with STS within ",  # the real proxy in front of moto: its Date is right
    ):
        assert any(line.startswith(expected) for line in lines), (expected, result.stdout)


def test_json_lists_every_finding_for_scripts(world: World) -> None:
    unlocked(world, "staging")
    result = doctor(world, "govuk-staging", "--json", env=pointed(world, "staging"))
    assert result.returncode == 0, result.stdout
    document = json.loads(result.stdout)
    assert (document["ok"], document["problems"], document["warnings"]) == (True, 0, 0)
    checks = {finding["check"] for finding in document["findings"]}
    assert {"shadowing-variable", "shell-endpoint", "credentials-file", "profiles", "daemon", "token-file",
            "session", "endpoint", "clock"} <= checks
    assert all(set(finding) == {"check", "status", "message", "fix", "subject"} for finding in document["findings"])
    assert "SecretAccessKey" not in result.stdout and world.secret not in result.stdout


# -- the daemon -------------------------------------------------------------------------------------------------------


def test_a_daemon_that_is_not_running(world: World) -> None:
    result = doctor(world)
    assert result.returncode == 1
    assert "FAIL the daemon is not running; fix: govuk-imds start" in result.stdout.splitlines()
    as_json = doctor(world, "--json")
    assert as_json.returncode == 1
    [daemon] = [finding for finding in findings(as_json) if finding["check"] == "daemon"]
    assert daemon == {"check": "daemon", "status": "problem", "message": "the daemon is not running",
                      "fix": "govuk-imds start", "subject": None}


def test_another_program_on_the_port(world: World) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", world.port))
        squatter.listen()
        result = doctor(world)
    assert result.returncode == 1
    assert any(
        line.startswith(f"FAIL the daemon is not running, and another program holds 127.0.0.1:{world.port}; "
                        f"fix: lsof -nP -iTCP:{world.port} -sTCP:LISTEN")
        for line in result.stdout.splitlines()
    ), result.stdout


def test_a_daemon_that_does_not_answer(world: World) -> None:
    world.start()
    pid = world.daemon_pid()
    assert pid is not None
    with stopped(pid):
        result = doctor(world)
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if "control socket" in line]
    assert line.startswith("FAIL the daemon does not answer on its control socket: the daemon did not answer")
    assert line.endswith(f"; fix: kill {pid} && govuk-imds start")


def test_a_daemon_on_another_port_than_the_settings(world: World) -> None:
    world.start()
    other = free_port()
    world.config_file.write_text(world.config_file.read_text().replace(f"port = {world.port}", f"port = {other}"))
    result = doctor(world)
    assert result.returncode == 1
    assert any(
        line.startswith(f"FAIL the daemon (pid {world.daemon_pid()}) serves 127.0.0.1:{world.port}, but your "
                        f"settings say port {other}")
        and line.endswith("; fix: govuk-imds stop && govuk-imds start")
        for line in result.stdout.splitlines()
    ), result.stdout


# -- sessions ---------------------------------------------------------------------------------------------------------


def test_a_locked_environment_named_is_a_problem_and_unnamed_only_a_warning(world: World) -> None:
    world.start()
    named = doctor(world, "production", env=pointed(world, "production"))
    assert named.returncode == 1
    assert failing(named) == ["FAIL production is locked; fix: govuk-imds unlock production", "1 problem, 0 warnings"]

    everything = doctor(world)
    assert everything.returncode == 0, everything.stdout  # warnings alone: tools that need nothing locked still work
    assert failing(everything) == [
        "warn integration is locked; fix: govuk-imds unlock integration",
        "warn production is locked; fix: govuk-imds unlock production",
        "warn production-readonly is locked; fix: govuk-imds unlock production-readonly",
        "warn staging is locked; fix: govuk-imds unlock staging",
        "0 problems, 4 warnings",
    ]
    assert doctor(world, "--strict").returncode == 1


# -- the shell --------------------------------------------------------------------------------------------------------


def test_variables_that_shadow_the_endpoint(world: World) -> None:
    unlocked(world, "production")
    environment = pointed(world, "production", AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
                          AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", AWS_PROFILE="gds",
                          AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/v2/credentials/abc")
    result = doctor(world, "production", env=environment)
    assert result.returncode == 1
    assert failing(result) == [
        "FAIL $AWS_ACCESS_KEY_ID is set: AWS tools use the access key in it instead of asking govuk-imds; "
        "fix: unset AWS_ACCESS_KEY_ID",
        "FAIL $AWS_SECRET_ACCESS_KEY is set: AWS tools use the key pair in the environment instead of asking "
        "govuk-imds; fix: unset AWS_SECRET_ACCESS_KEY",
        "FAIL $AWS_PROFILE is set (gds): AWS tools use that profile instead of asking govuk-imds; "
        "fix: unset AWS_PROFILE",
        "FAIL $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set: AWS tools ask the ECS agent at 169.254.170.2 instead of "
        "govuk-imds (it beats the full URI); fix: unset AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "4 problems, 0 warnings",
    ]
    assert "wJalrXUtnFEMI" not in result.stdout + result.stderr
    assert "AKIAIOSFODNN7EXAMPLE" not in result.stdout + result.stderr

    # The fix the docs give: `govuk-imds env` clears them all in the shell.
    fixed = subprocess.run(["sh", "-c", 'eval "$(govuk-imds env production)" && govuk-imds doctor production'],
                           env=environment, capture_output=True, text=True, timeout=60, check=False)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fixed.stdout.splitlines()[-1] == "all is well"


def test_a_shell_pointed_at_an_old_port(world: World) -> None:
    unlocked(world, "production")
    environment = pointed(world, "production",
                          AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:9/v1/credentials/production")
    result = doctor(world, "production", env=environment)
    assert result.returncode == 1
    assert failing(result) == [
        "FAIL $AWS_CONTAINER_CREDENTIALS_FULL_URI is http://127.0.0.1:9/v1/credentials/production, not govuk-imds "
        f'on 127.0.0.1:{world.port}; fix: eval "$(govuk-imds env production)"',
        "1 problem, 0 warnings",
    ]


# -- the AWS files ----------------------------------------------------------------------------------------------------


def test_a_default_key_pair_in_the_credentials_file(world: World) -> None:
    unlocked(world, "production")
    path = world.home / ".aws" / "credentials"
    path.write_text("[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                    "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n")
    result = doctor(world, "production", env=pointed(world, "production"))
    assert result.returncode == 1
    assert failing(result) == [
        f"FAIL {path} has a key pair in [default]: AWS tools use it before asking govuk-imds, and it is a long-term "
        "key in plaintext; fix: govuk-imds import default",
        "1 problem, 0 warnings",
    ]
    assert "wJalrXUtnFEMI" not in result.stdout


def test_a_named_key_pair_in_the_shared_credentials_file_named_by_the_variable(world: World) -> None:
    unlocked(world, "production")
    (world.home / ".aws" / "credentials").write_text("[default]\naws_access_key_id = AKIA\n")  # not the one read
    elsewhere = world.home / "keys.ini"
    elsewhere.write_text("[default]\nregion = eu-west-1\n\n[gds]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                         "aws_secret_access_key = secret\n")
    environment = pointed(world, "production", AWS_SHARED_CREDENTIALS_FILE=str(elsewhere))
    result = doctor(world, "production", env=environment)
    assert result.returncode == 0, result.stdout  # a plaintext key elsewhere is advice: tools still get credentials
    assert failing(result) == [
        f"warn {elsewhere} has a plaintext key pair in [gds]; move it into the keyring; fix: govuk-imds import gds",
        "0 problems, 1 warning",
    ]
    assert doctor(world, "production", "--strict", env=environment).returncode == 1


def test_a_default_profile_with_a_role_in_the_aws_config(world: World) -> None:
    with world.aws_config_file.open("a") as handle:
        handle.write("\n[default]\nrole_arn = arn:aws:iam::210987654321:role/other\nsource_profile = gds\n")
    result = doctor(world, "--json")
    assert result.returncode == 1
    [finding] = [finding for finding in findings(result) if finding["check"] == "default-profile"]
    assert finding["status"] == "problem"
    assert finding["message"] == (
        f"[default] in {world.aws_config_file} has role_arn: AWS tools take credentials from it before asking "
        "govuk-imds"
    )


def test_a_profile_missing_a_field(world: World) -> None:
    with world.aws_config_file.open("a") as handle:
        handle.write("\n[profile govuk-broken]\nsource_profile = gds\nregion = eu-west-1\n")
    world.start()
    result = doctor(world)
    assert result.returncode == 1
    assert (
        f"FAIL {world.aws_config_file}: [profile govuk-broken] has no role_arn; "
        "fix: add `role_arn = arn:aws:iam::<account>:role/<role>`"
    ) in result.stdout.splitlines()
    # Asking about another environment, the broken profile is only a warning.
    unlocked(world, "production")
    other = doctor(world, "production", env=pointed(world, "production"))
    assert other.returncode == 0, other.stdout
    assert failing(other)[0].startswith(f"warn {world.aws_config_file}: [profile govuk-broken] has no role_arn")


def test_an_unknown_environment(world: World) -> None:
    result = doctor(world, "prod", "--json")
    assert result.returncode == 1
    [finding] = [finding for finding in findings(result) if finding["check"] == "profiles"]
    assert finding["message"] == ("unknown environment 'prod' (known: integration, production, production-readonly, "
                                  "staging)")
    assert finding["fix"].startswith("add a [profile govuk-prod] with role_arn")


# -- token files ------------------------------------------------------------------------------------------------------


def test_a_token_file_with_the_wrong_mode(world: World) -> None:
    unlocked(world, "production")
    path = world.token_file("production")
    path.chmod(0o644)
    result = doctor(world, "production", env=pointed(world, "production"))
    assert result.returncode == 1
    assert failing(result) == [
        f"FAIL production: {path} has mode 0644, not 0600: other users could read the token; fix: chmod 600 {path}",
        "1 problem, 0 warnings",
    ]
    path.chmod(0o600)
    assert doctor(world, "production", env=pointed(world, "production")).returncode == 0


def test_a_missing_token_file_and_its_fix(world: World) -> None:
    world.start()
    path = world.token_file("staging")
    token = path.read_bytes()
    path.unlink()
    result = doctor(world, "staging")
    assert result.returncode == 1
    assert (
        f"FAIL staging: no token file at {path}: tools cannot authenticate; fix: govuk-imds reload"
    ) in result.stdout.splitlines()
    assert world.cli("reload").returncode == 0  # the fix, as printed
    again = doctor(world, "staging")
    assert "ok   token files for staging are present and private (0600)" in again.stdout.splitlines()
    assert path.read_bytes() == token  # the same token: shells holding it in the variable keep working


def test_a_token_file_the_endpoint_does_not_accept(world: World) -> None:
    unlocked(world, "production")
    environment = pointed(world, "production")
    world.token_file("production").write_text("B" * 43)  # a token of the right shape, but not the daemon's
    result = doctor(world, "production", env=environment)
    assert result.returncode == 1
    [variable, line] = failing(result)[:-1]
    assert variable.startswith("FAIL $AWS_CONTAINER_AUTHORIZATION_TOKEN is not production's current token")
    assert line.startswith("FAIL production: the endpoint refused the token file's token (wrong token for 'production'")
    assert line.endswith("; fix: govuk-imds reload")
    assert world.cli("reload").returncode == 0
    assert doctor(world, "production", env=environment).returncode == 0


def test_a_shell_whose_token_variable_a_variable_only_client_would_send_in_vain(world: World) -> None:
    unlocked(world, "production")
    before = pointed(world, "production")
    environment = dict(before)
    del environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"]  # a shell from before `env` set it
    result = doctor(world, "production", env=environment)
    assert result.returncode == 1
    [line] = failing(result)[:-1]
    assert line.startswith("FAIL $AWS_CONTAINER_AUTHORIZATION_TOKEN is not set: tools that read only the variable "
                           "get a 401 (aws CLI v2 before 2.15.0, ")
    assert line.endswith('; fix: eval "$(govuk-imds env production)"')

    assert world.cli("lock", "production", "--new-tokens").returncode == 0  # the variable is now an old token
    assert world.unlock("production").returncode == 0
    result = doctor(world, "production", env=before)
    assert result.returncode == 1
    [line] = failing(result)[:-1]
    assert line.startswith("FAIL $AWS_CONTAINER_AUTHORIZATION_TOKEN is not production's current token")
    assert before["AWS_CONTAINER_AUTHORIZATION_TOKEN"] not in result.stdout + result.stderr
    assert world.token("production") not in result.stdout + result.stderr
    assert doctor(world, "production", env=pointed(world, "production")).returncode == 0


# -- the clock --------------------------------------------------------------------------------------------------------


def test_a_clock_two_minutes_off_from_sts_and_one_that_is_right(world: World) -> None:
    unlocked(world, "production")
    environment = pointed(world, "production")
    with DateServer(timedelta(minutes=2)) as ahead:
        point_sts_at(world, ahead.url)
        off = doctor(world, "production", env=environment)
    assert ahead.requests == 1
    assert off.returncode == 1
    assert failing(off) == [
        f"FAIL the local clock is 2 min 0 s behind STS ({ahead.url}): credentials look expired too early or too "
        "late, and AWS refuses requests signed more than 5 min off; fix: sudo timedatectl set-ntp true",
        "1 problem, 0 warnings",
    ]
    with DateServer(timedelta(minutes=-2)) as behind:
        point_sts_at(world, behind.url)
        slow = doctor(world, "production", env=environment)
    assert slow.returncode == 1
    assert failing(slow)[0].startswith(f"FAIL the local clock is 2 min 0 s ahead of STS ({behind.url})")
    with DateServer(timedelta(0)) as right:
        point_sts_at(world, right.url)
        fine = doctor(world, "production", env=environment)
    assert fine.returncode == 0, fine.stdout
    assert any(line.startswith("ok   the local clock agrees with STS within 0 s") for line in fine.stdout.splitlines())


def test_an_unreachable_sts_skips_the_clock_with_a_note(world: World) -> None:
    unlocked(world, "production")
    url = f"http://127.0.0.1:{free_port()}"
    point_sts_at(world, url)
    result = doctor(world, "production", env=pointed(world, "production"))
    assert result.returncode == 0, result.stdout
    [note, summary] = failing(result)
    assert note.startswith(f"warn could not read the time from STS at {url} (ConnectionRefusedError")
    assert note.endswith(f"the clock was not checked, and unlock and renewal need STS too; fix: curl -sI {url}")
    assert summary == "0 problems, 1 warning"


# -- light ------------------------------------------------------------------------------------------------------------


def test_doctor_imports_no_sdk_server_or_keyring(world: World) -> None:
    code = textwrap.dedent(
        """
        import contextlib, io, json, sys
        from govuk_imds.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["doctor"])
        print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], env=world.environment, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout.splitlines()[-1])
    assert document["code"] == 1  # no daemon
    assert "the daemon is not running" in document["out"]
    loaded = [name for name in document["modules"]
              if any(name == bad or name.startswith(bad + ".") for bad in NOT_FOR_THE_CLI)]
    assert loaded == []
