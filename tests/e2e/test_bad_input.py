"""Every bad input gets one line that says what happened and what to type next, and loses nothing."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.world import World, one_line


def test_unknown_environment(world: World) -> None:
    line = one_line(world.cli("env", "prod"))
    assert "unknown environment 'prod'" in line
    assert "integration, production, production-readonly, staging" in line


def test_profile_without_role_arn_names_file_profile_and_key(world: World) -> None:
    text = world.aws_config_file.read_text().replace(
        "role_arn = arn:aws:iam::410987654321:role/govuk-administrators\n", "")
    world.aws_config_file.write_text(text)
    line = one_line(world.cli("env", "production"))
    assert str(world.aws_config_file) in line
    assert "[profile govuk-production]" in line
    assert "role_arn" in line
    # the other environments are unaffected
    assert world.cli("env", "staging").returncode == 0


def test_profile_without_mfa_serial(world: World) -> None:
    text = world.aws_config_file.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("mfa_serial")]
    world.aws_config_file.write_text("\n".join(lines) + "\n")
    line = one_line(world.cli("unlock", "production", "--code", "123456"))
    assert "mfa_serial" in line and "govuk-production" in line


def test_malformed_settings_file(world: World) -> None:
    world.config_file.write_text("port = [nonsense\n")
    line = one_line(world.cli("status"))
    assert str(world.config_file) in line
    assert "not valid TOML" in line


def test_unknown_setting_is_named(world: World) -> None:
    world.config_file.write_text(world.config_file.read_text() + "rotation_margn = '20m'\n")
    line = one_line(world.cli("status"))
    assert "rotation_margn" in line


def test_malformed_aws_config(world: World) -> None:
    world.aws_config_file.write_text("role_arn = no section\n[profile govuk-x\n")
    line = one_line(world.cli("env", "production"))
    assert str(world.aws_config_file) in line


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 456"])
def test_code_that_is_not_six_digits_is_refused_before_any_sts_call(world: World, code: str) -> None:
    world.add_key()
    world.start()
    before = world.sts.count("GetSessionToken")
    line = one_line(world.cli("unlock", "production", "--code", code))
    assert "six digits" in line
    assert world.sts.count("GetSessionToken") == before


def fresh_code_for_production(world: World) -> None:
    """Production demands a new code even though staging's MFA session is held (otherwise no code is asked for)."""
    world.config_file.write_text(world.config_file.read_text() + "\n[environments.production]\nfresh_code = true\n")


def test_wrong_code_leaves_the_environment_locked_and_others_served(world: World) -> None:
    fresh_code_for_production(world)
    world.add_key()
    world.start()
    assert world.unlock("staging").returncode == 0
    valid = world.code()
    wrong = f"{(int(valid) + 1) % 1_000_000:06d}"
    line = one_line(world.cli("unlock", "production", "--code", wrong))
    assert "refused the MFA code" in line
    assert "wait for the next code" in line
    status = json.loads(world.cli("status", "--json").stdout)
    rows = {row["environment"]: row["state"] for row in status["environments"]}
    assert rows == {"integration": "locked", "production": "locked", "production-readonly": "locked",
                    "staging": "active"}
    assert wrong not in world.log()


def test_code_used_twice_says_to_wait_for_the_next_one(world: World) -> None:
    fresh_code_for_production(world)
    world.add_key()
    world.start()
    code = world.code()
    assert world.cli("unlock", "staging", "--code", code).returncode == 0
    line = one_line(world.cli("unlock", "production", "--code", code))
    assert "already used" in line
    assert "wait for the next code" in line


def test_code_from_stdin(world: World) -> None:
    world.add_key()
    world.start()
    result = world.cli("unlock", "integration", input=world.code() + "\n")
    assert result.returncode == 0, result.stderr


def test_no_key_stored_for_the_source_profile(world: World) -> None:
    world.start()
    line = one_line(world.cli("unlock", "production", "--code", "123456"))
    assert "govuk-imds add gds" in line


def test_daemon_not_running(world: World) -> None:
    for args in (["status"], ["lock", "production"], ["unlock", "production", "--code", "123456"]):
        line = one_line(world.cli(*args))
        assert "govuk-imds start" in line


def test_port_already_taken(world: World) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", world.port))
        squatter.listen()
        line = one_line(world.cli("start"))
    assert f"port {world.port}" in line
    assert "in use" in line


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        ("not json", "stdin is not JSON"),
        ('{"AccessKeyId": "AKIA123", "SecretAccessKey": "x"}', "20 characters"),
        ('{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "' + "a" * 40 + '"}', "temporary key"),
        ('{"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "short"}', "40 characters"),
        ("[]", "JSON object"),
    ],
)
def test_add_validates_the_key_before_storing_it(world: World, stdin: str, expected: str) -> None:
    line = one_line(world.cli("add", "gds", input=stdin))
    assert expected in line


def test_add_accepts_what_aws_iam_create_access_key_prints(world: World) -> None:
    printed = json.dumps({"AccessKey": {"UserName": "first.last", "AccessKeyId": world.key_id, "Status": "Active",
                                        "SecretAccessKey": world.secret, "CreateDate": "2026-11-25T15:00:00Z"}})
    added = world.cli("add", "gds", input=printed)
    assert added.returncode == 0, added.stderr
    assert world.secret not in added.stdout
    assert world.key_id not in added.stdout
    assert world.key_id[-4:] in added.stdout


def test_status_with_no_environments_says_how_to_define_one_and_reload_picks_it_up(world: World) -> None:
    defined = world.aws_config_file.read_text()
    world.aws_config_file.write_text("[profile someone-elses]\nregion = eu-west-2\n")
    world.start()
    empty = world.cli("status")
    assert empty.returncode == 0, empty.stderr
    assert (f"no environments yet: add a [profile govuk-<name>] with role_arn, mfa_serial and source_profile to "
            f"{world.aws_config_file}, then run `govuk-imds reload`") in empty.stdout
    world.aws_config_file.write_text(defined)
    assert world.cli("reload").returncode == 0
    assert "production" in world.cli("status").stdout
