"""Where ``mfa_process`` comes from (config.toml over the AWS config; the environment's profile over its source
profile) and how it is split into words without a shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from govuk_imds.codes.configured import ConfiguredCommand, configured_command
from govuk_imds.config.settings import load_settings
from govuk_imds.errors import ConfigError


def settings_with(tmp_path: Path, toml: str = "", aws: str = ""):  # type: ignore[no-untyped-def]
    (tmp_path / "config.toml").write_text(toml)
    (tmp_path / "aws-config").write_text(aws)
    return load_settings({"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
                          "GOVUK_IMDS_RUNTIME_DIR": str(tmp_path / "run")}, config_file=str(tmp_path / "config.toml"))


AWS = ("[profile govuk-production]\nmfa_process = from-environment\n\n"
       "[profile gds]\nmfa_process = ykman oath accounts code --single gds-users\n")


def test_the_environments_profile_then_its_source_profile(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, aws=AWS)
    production = configured_command(settings, ["govuk-production", "gds"])
    assert production is not None
    assert production.argv() == ["from-environment"]
    assert production.where == f"{tmp_path}/aws-config [profile govuk-production]"
    staging = configured_command(settings, ["govuk-staging", "gds"])
    assert staging is not None and staging.argv()[:2] == ["ykman", "oath"]
    assert configured_command(settings, ["govuk-staging", "other"]) is None


def test_config_toml_wins_and_an_empty_one_turns_it_off(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, toml='mfa_process = "my-totp --account \'gds users\'"\n', aws=AWS)
    command = configured_command(settings, ["govuk-production", "gds"])
    assert command is not None
    assert command.argv() == ["my-totp", "--account", "gds users"]
    assert command.where == f"{tmp_path}/config.toml"
    assert configured_command(settings_with(tmp_path, toml='mfa_process = ""\n', aws=AWS), ["gds"]) is None


def test_a_home_relative_program_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert ConfiguredCommand("~/bin/totp now", "x").argv() == ["/home/someone/bin/totp", "now"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ykman oath accounts code gds-users | tail -1", "mfa_process uses the shell's '|'"),
        ("get-code && echo", "mfa_process uses the shell's '&&'"),
        ("get-code > /tmp/code", "mfa_process uses the shell's '>'"),
        ("ykman 'unclosed", "mfa_process cannot be split into words (No closing quotation); check its quotes"),
        ("   ", "mfa_process is empty"),
    ],
)
def test_what_needs_a_shell_or_cannot_be_split_is_refused_naming_the_file(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ConfiguredCommand(text, "/home/u/.aws/config [profile gds]").argv()
    assert str(refused.value).startswith(f"/home/u/.aws/config [profile gds]: {message}")


def test_quoted_operators_and_a_shell_the_user_wrote_are_fine() -> None:
    assert ConfiguredCommand("sh -c 'ykman oath accounts code gds-users | tail -1'", "x").argv() == [
        "sh", "-c", "ykman oath accounts code gds-users | tail -1"]
    assert ConfiguredCommand("get-code --label 'a|b'", "x").argv() == ["get-code", "--label", "a|b"]


def test_its_text_is_never_shown_whole() -> None:
    command = ConfiguredCommand("oathtool --totp -b JBSWY3DPEHPK3PXP", "x")
    assert "JBSWY3DPEHPK3PXP" not in repr(command)
    assert command.program == "oathtool"


def test_config_toml_checks_its_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mfa_process must be a str"):
        settings_with(tmp_path, toml="mfa_process = 1\n")
    with pytest.raises(ConfigError, match='prompt must be "notify", "gui" or "off"'):
        settings_with(tmp_path, toml='prompt = "dialog"\n')
    with pytest.raises(ConfigError, match="code_timeout must be between 1s and 10m"):
        settings_with(tmp_path, toml='code_timeout = "1h"\n')
    settings = settings_with(tmp_path, toml='prompt = "gui"\ncode_timeout = "45s"\n')
    assert (settings.prompt, settings.code_timeout.total_seconds()) == ("gui", 45)
