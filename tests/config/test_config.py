"""Settings (TOML + GOVUK_IMDS_* + flags) and environments (the user's real AWS config file, read by botocore)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from govuk_imds.config.aws_config import Environments, load_environments
from govuk_imds.config.settings import (
    DEFAULT_PORT,
    DEFAULT_ROTATION_MARGIN,
    DEFAULT_SESSION_DURATION,
    Settings,
    load_settings,
    parse_duration,
)
from govuk_imds.core.environment import EnvironmentSpec
from govuk_imds.errors import ConfigError, GovukImdsError, UnknownEnvironment

SERIAL = "arn:aws:iam::123456789012:mfa/first.last@digital.cabinet-office.gov.uk"
ACCOUNTS = {"integration": "210987654321", "staging": "310987654321", "production": "410987654321"}


def govuk_aws_config(accounts: dict[str, str] = ACCOUNTS, serial: str = SERIAL) -> str:
    """The AWS config exactly as GOV.UK's developer docs tell people to write it."""
    stanzas = [
        f"[profile govuk-{name}]\n"
        f"role_arn = arn:aws:iam::{account}:role/govuk-administrators\n"
        f"mfa_serial = {serial}\n"
        "source_profile = gds\n"
        "region = eu-west-1\n"
        for name, account in accounts.items()
    ]
    stanzas.append(f"[profile gds]\nmfa_serial = {serial}\nregion = eu-west-1\n")
    return "\n".join(stanzas)


class Home:
    """A throwaway HOME with a govuk-imds config.toml and an AWS config, both optional."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config_file = root / ".config" / "govuk-imds" / "config.toml"
        self.aws_config_file = root / ".aws" / "config"
        self.config_file.parent.mkdir(parents=True)
        self.aws_config_file.parent.mkdir(parents=True)

    def environ(self, **extra: str) -> dict[str, str]:
        return {
            "HOME": str(self.root),
            "XDG_CONFIG_HOME": str(self.root / ".config"),
            "GOVUK_IMDS_RUNTIME_DIR": str(self.root / "run"),
            **extra,
        }

    def settings(self, toml: str | None = None, environ: dict[str, str] | None = None, **flags: Any) -> Settings:
        if toml is not None:
            self.config_file.write_text(toml)
        return load_settings(environ if environ is not None else self.environ(), **flags)

    def environments(self, aws_config: str | bytes, toml: str | None = None) -> Environments:
        if isinstance(aws_config, bytes):
            self.aws_config_file.write_bytes(aws_config)
        else:
            self.aws_config_file.write_text(aws_config)
        return load_environments(self.settings(toml))


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


# -- settings: defaults and precedence -------------------------------------------------------------------------------


def test_defaults_without_a_config_file(home: Home) -> None:
    settings = home.settings()
    assert settings.config_file == home.config_file
    assert settings.port == DEFAULT_PORT == 9911
    assert settings.rotation_margin == DEFAULT_ROTATION_MARGIN == timedelta(minutes=30)
    assert settings.session_duration == DEFAULT_SESSION_DURATION == timedelta(hours=8)
    assert settings.log_level == "INFO"
    assert settings.profile_prefix == "govuk-"
    assert settings.sts_endpoint_url is None
    assert settings.iam_endpoint_url is None
    assert settings.aws_config_file == home.aws_config_file
    assert settings.runtime.root == home.root / "run"
    assert settings.endpoint_base == "http://127.0.0.1:9911/v1/credentials/"


@pytest.mark.parametrize(
    ("flag", "variable", "file", "expected"),
    [
        (None, None, None, 9911),
        (None, None, 9001, 9001),
        (None, "9002", 9001, 9002),
        (9003, "9002", 9001, 9003),
        (9003, None, None, 9003),
        (9003, None, 9001, 9003),
        (None, "", 9001, 9001),  # an empty variable counts as unset
    ],
)
def test_port_precedence_flag_then_environment_then_file_then_default(
    home: Home, flag: int | None, variable: str | None, file: int | None, expected: int
) -> None:
    toml = f"port = {file}\n" if file is not None else ""
    environ = home.environ(**({"GOVUK_IMDS_PORT": variable} if variable is not None else {}))
    settings = home.settings(toml, environ, port=flag)
    assert settings.port == expected
    assert settings.endpoint_base == f"http://127.0.0.1:{expected}/v1/credentials/"


@pytest.mark.parametrize(
    ("variable", "file", "expected"),
    [
        (None, None, "INFO"),
        (None, "warning", "WARNING"),
        ("debug", "WARNING", "DEBUG"),
        ("error", None, "ERROR"),
    ],
)
def test_log_level_precedence_environment_then_file_then_default(
    home: Home, variable: str | None, file: str | None, expected: str
) -> None:
    toml = f'log_level = "{file}"\n' if file is not None else ""
    environ = home.environ(**({"GOVUK_IMDS_LOG_LEVEL": variable} if variable is not None else {}))
    assert home.settings(toml, environ).log_level == expected


def test_config_file_flag_beats_govuk_imds_config_variable(home: Home, tmp_path: Path) -> None:
    from_variable = tmp_path / "variable.toml"
    from_variable.write_text("port = 1111\n")
    from_flag = tmp_path / "flag.toml"
    from_flag.write_text("port = 2222\n")
    environ = home.environ(GOVUK_IMDS_CONFIG=str(from_variable))
    assert load_settings(environ).port == 1111
    settings = load_settings(environ, config_file=str(from_flag))
    assert settings.port == 2222
    assert settings.config_file == from_flag


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS keeps config under ~/Library/Application Support")
def test_default_config_file_lives_under_xdg_config_home(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "govuk-imds").mkdir(parents=True)
    (xdg / "govuk-imds" / "config.toml").write_text("port = 4242\n")
    settings = load_settings({"HOME": str(tmp_path / "nowhere"), "XDG_CONFIG_HOME": str(xdg)})
    assert settings.config_file == xdg / "govuk-imds" / "config.toml"
    assert settings.port == 4242


def test_aws_config_file_variable_is_honoured(home: Home, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "config"
    settings = home.settings(environ=home.environ(AWS_CONFIG_FILE=str(elsewhere)))
    assert settings.aws_config_file == elsewhere


def test_sts_and_iam_tables_are_read(home: Home) -> None:
    settings = home.settings(
        '[sts]\nendpoint_url = "http://127.0.0.1:5000"\nregion = "eu-west-2"\n\n'
        '[iam]\nendpoint_url = "http://127.0.0.1:5001"\n'
    )
    assert settings.sts_endpoint_url == "http://127.0.0.1:5000"
    assert settings.sts_region == "eu-west-2"
    assert settings.iam_endpoint_url == "http://127.0.0.1:5001"


def test_the_signin_table_names_the_federation_endpoint(home: Home) -> None:
    assert home.settings().signin_endpoint_url is None
    settings = home.settings('[signin]\nendpoint_url = "http://127.0.0.1:5002"\n')
    assert settings.signin_endpoint_url == "http://127.0.0.1:5002"
    with pytest.raises(ConfigError, match=r"unknown setting signin\.region"):
        home.settings('[signin]\nregion = "eu-west-1"\n')


# -- durations ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("8h", timedelta(hours=8)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("900s", timedelta(seconds=900)),
        ("1h0m30s", timedelta(hours=1, seconds=30)),
        (" 45m ", timedelta(minutes=45)),
        ("2d", timedelta(days=2)),  # for `audit --since 2d`
        ("1d12h", timedelta(days=1, hours=12)),
        (900, timedelta(seconds=900)),
        (1, timedelta(seconds=1)),
    ],
)
def test_parse_duration_accepts(value: object, expected: timedelta) -> None:
    assert parse_duration(value, "here") == expected


@pytest.mark.parametrize(
    "value",
    ["", "30", "abc", "1w", "-5m", "0m", "0h0m0s", "30 m", "m", "h30", "1.5h", 0, -900, 1.5, True, False, None, [30]],
)
def test_parse_duration_refuses(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(value, "somefile.toml: rotation_margin")
    message = str(caught.value)
    assert message.startswith("somefile.toml: rotation_margin")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"15m"', timedelta(minutes=15)), ('"45m"', timedelta(minutes=45)), ("1200", timedelta(minutes=20))],
)
def test_rotation_margin_within_bounds(home: Home, value: str, expected: timedelta) -> None:
    assert home.settings(f"rotation_margin = {value}\n").rotation_margin == expected


@pytest.mark.parametrize("value", ['"14m59s"', '"10m"', "60", '"46m"', '"1h"'])
def test_rotation_margin_out_of_bounds_is_refused(home: Home, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings(f"rotation_margin = {value}\n")
    assert str(home.config_file) in str(caught.value)
    assert "rotation_margin" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"15m"', timedelta(minutes=15)), ('"36h"', timedelta(hours=36)), ('"4h"', timedelta(hours=4))],
)
def test_session_duration_within_bounds(home: Home, value: str, expected: timedelta) -> None:
    settings = home.settings(f"session_duration = {value}\n")
    assert settings.session_duration == expected
    assert settings.session_duration_for("production") == expected


@pytest.mark.parametrize("value", ['"14m"', '"36h1s"', '"48h"', "60", '"nope"'])
def test_session_duration_out_of_bounds_is_refused(home: Home, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings(f"session_duration = {value}\n")
    assert str(home.config_file) in str(caught.value)
    assert "session_duration" in str(caught.value)


# -- per-environment overrides -----------------------------------------------------------------------------------


def test_per_environment_session_duration_override(home: Home) -> None:
    settings = home.settings('session_duration = "10h"\n\n[environments.production]\nsession_duration = "4h"\n')
    assert settings.session_duration_for("production") == timedelta(hours=4)
    assert settings.session_duration_for("staging") == timedelta(hours=10)
    assert settings.session_duration_for("integration") == timedelta(hours=10)


def test_per_environment_override_out_of_bounds_names_the_table(home: Home) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings('[environments.production]\nsession_duration = "40h"\n')
    assert str(home.config_file) in str(caught.value)
    assert "environments.production.session_duration" in str(caught.value)


def test_environments_must_be_tables(home: Home) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings("[environments]\nproduction = 5\n")
    assert str(home.config_file) in str(caught.value)
    assert "production" in str(caught.value)


def test_unknown_key_in_environment_table_is_named(home: Home) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings('[environments.production]\nsession_durration = "4h"\n')
    assert str(home.config_file) in str(caught.value)
    assert "session_durration" in str(caught.value)


def test_override_under_prefixed_name_applies_to_the_environment(home: Home) -> None:
    settings = home.settings('[environments.govuk-production]\nsession_duration = "2h"\n')
    assert settings.session_duration_for("production") == timedelta(hours=2)


def test_fresh_code_is_per_environment_and_off_by_default(home: Home) -> None:
    settings = home.settings("[environments.govuk-production]\nfresh_code = true\n\n"
                             "[environments.staging]\nfresh_code = false\n")
    assert settings.fresh_code_for("production")
    assert not settings.fresh_code_for("staging")
    assert not settings.fresh_code_for("integration")


def test_fresh_code_must_be_true_or_false(home: Home) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings('[environments.production]\nfresh_code = "yes"\n')
    assert str(caught.value) == f"{home.config_file}: environments.production.fresh_code must be true or false"


def test_an_unknown_key_in_an_environment_table_lists_the_known_ones(home: Home) -> None:
    with pytest.raises(ConfigError, match="known: confirm, deny_callers, fresh_code, idle_lock, lock_on_screen_lock, "
                                         "session_duration"):
        home.settings("[environments.production]\nfresh = true\n")


# -- unknown keys, bad types, bad files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("prot = 9911\n", "prot"),
        ('rotation-margin = "30m"\n', "rotation-margin"),
        ('[sts]\nendpoint = "http://127.0.0.1:5000"\n', "sts.endpoint"),
        ('[iam]\nregion = "eu-west-1"\n', "iam.region"),
    ],
)
def test_unknown_keys_name_file_and_key(home: Home, toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings(toml)
    message = str(caught.value)
    assert str(home.config_file) in message
    assert key in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('port = "9911"\n', "port"),
        ("port = true\n", "port"),
        ("port = 70000\n", "port"),
        ("port = 0\n", "port"),
        ("log_level = 3\n", "log_level"),
        ('log_level = "verbose"\n', "log_level"),
        ("profile_prefix = 1\n", "profile_prefix"),
        ("sts = 5\n", "sts"),
        ("[sts]\nendpoint_url = 5\n", "endpoint_url"),
    ],
)
def test_wrong_values_name_file_and_key(home: Home, toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings(toml)
    assert str(home.config_file) in str(caught.value)
    assert key in str(caught.value)


@pytest.mark.parametrize("toml", ["port = \n", "port = 1\nport = 2\n", "[sts\n", "= 5\n", 'log_level = "DEBUG\n'])
def test_malformed_toml_is_a_config_error_naming_the_file(home: Home, toml: str) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings(toml)
    message = str(caught.value)
    assert message.startswith(str(home.config_file))
    assert "TOML" in message


def test_binary_garbage_in_toml_is_a_config_error(home: Home) -> None:
    home.config_file.write_bytes(b"\xff\xfe\x00port = 1\n")
    with pytest.raises(ConfigError) as caught:
        home.settings()
    assert str(home.config_file) in str(caught.value)


def test_config_file_that_is_a_directory_is_a_config_error(home: Home, tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(ConfigError) as caught:
        home.settings(config_file=str(directory))
    assert str(directory) in str(caught.value)


def test_non_numeric_port_variable_names_the_variable(home: Home) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings(environ=home.environ(GOVUK_IMDS_PORT="ninety"))
    assert "GOVUK_IMDS_PORT" in str(caught.value)


@pytest.mark.parametrize(("variable", "value"), [("GOVUK_IMDS_PORT", "70000"), ("GOVUK_IMDS_LOG_LEVEL", "loud")])
def test_bad_value_from_a_variable_names_the_variable(home: Home, variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        home.settings(environ=home.environ(**{variable: value}))
    assert variable in str(caught.value)


# -- environments from the AWS config ------------------------------------------------------------------------------


def test_govuk_aws_config_defines_each_environment(home: Home) -> None:
    environments = home.environments(govuk_aws_config())
    assert environments.names() == ["integration", "production", "staging"]
    assert not environments.problems
    spec = environments.resolve("production")
    assert spec == EnvironmentSpec(
        name="production",
        profile="govuk-production",
        role_arn="arn:aws:iam::410987654321:role/govuk-administrators",
        mfa_serial=SERIAL,
        source_profile="gds",
        region="eu-west-1",
        role_duration_seconds=3600,
        role_session_name="first.last@digital.cabinet-office.gov.uk",
    )
    assert spec.account_id == "410987654321"
    assert environments.source == home.aws_config_file


def test_prefixed_and_short_names_resolve_to_the_same_spec(home: Home) -> None:
    environments = home.environments(govuk_aws_config())
    assert environments.resolve("production") == environments.resolve("govuk-production")
    assert environments.canonical("govuk-production") == "production"
    assert environments.canonical("production") == "production"
    assert environments.resolve("govuk-staging").role_arn.endswith("310987654321:role/govuk-administrators")


def test_source_profile_is_not_an_environment(home: Home) -> None:
    environments = home.environments(govuk_aws_config())
    with pytest.raises(UnknownEnvironment):
        environments.resolve("gds")


def test_mfa_serial_and_region_are_inherited_from_the_source_profile(home: Home) -> None:
    environments = home.environments(
        "[profile govuk-production]\n"
        "role_arn = arn:aws:iam::410987654321:role/govuk-administrators\n"
        "source_profile = gds\n\n"
        f"[profile gds]\nmfa_serial = {SERIAL}\nregion = eu-west-2\n"
    )
    spec = environments.resolve("production")
    assert spec.mfa_serial == SERIAL
    assert spec.region == "eu-west-2"


def test_environment_mfa_serial_beats_the_source_profiles(home: Home) -> None:
    own = "arn:aws:iam::123456789012:mfa/someone.else"
    environments = home.environments(
        "[profile govuk-production]\n"
        "role_arn = arn:aws:iam::410987654321:role/govuk-administrators\n"
        f"mfa_serial = {own}\nsource_profile = gds\n\n"
        f"[profile gds]\nmfa_serial = {SERIAL}\n"
    )
    assert environments.resolve("production").mfa_serial == own


@pytest.mark.parametrize(
    ("serial", "session_name"),
    [
        (SERIAL, "first.last@digital.cabinet-office.gov.uk"),
        ("arn:aws:iam::123456789012:mfa/jane", "jane"),
        ("GAHT12345678", "GAHT12345678"),  # a hardware token's serial number
        ("arn:aws:iam::123456789012:mfa/" + "x" * 80, "x" * 64),
    ],
)
def test_role_session_name_defaults_to_the_mfa_device_name(home: Home, serial: str, session_name: str) -> None:
    environments = home.environments(govuk_aws_config({"production": "410987654321"}, serial))
    assert environments.resolve("production").role_session_name == session_name


def test_explicit_role_session_name_and_duration(home: Home) -> None:
    environments = home.environments(
        "[profile govuk-production]\n"
        "role_arn = arn:aws:iam::410987654321:role/govuk-administrators\n"
        f"mfa_serial = {SERIAL}\nsource_profile = gds\n"
        "role_session_name = first.last\nduration_seconds = 2700\n"
    )
    spec = environments.resolve("production")
    assert spec.role_session_name == "first.last"
    assert spec.role_duration_seconds == 2700
    assert spec.region is None


def test_a_role_session_too_short_to_serve_and_renew_is_refused(home: Home) -> None:
    environments = home.environments(
        "[profile govuk-production]\n"
        "role_arn = arn:aws:iam::410987654321:role/govuk-administrators\n"
        f"mfa_serial = {SERIAL}\nsource_profile = gds\nduration_seconds = 1800\n"
    )
    with pytest.raises(ConfigError, match=r"duration_seconds 1800 is too short.*at least 2700"):
        environments.resolve("production")


@pytest.mark.parametrize(
    ("drop", "key"),
    [("role_arn = ", "role_arn"), ("source_profile = ", "source_profile"), ("mfa_serial = ", "mfa_serial")],
)
def test_missing_key_names_file_profile_and_key(home: Home, drop: str, key: str) -> None:
    lines = [line for line in govuk_aws_config().splitlines() if not line.startswith(drop)]
    environments = home.environments("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        environments.resolve("production")
    message = str(caught.value)
    assert str(home.aws_config_file) in message
    assert "govuk-production" in message
    assert key in message
    assert "\n" not in message
    assert not isinstance(caught.value, UnknownEnvironment)
    # The long form reports the same problem.
    with pytest.raises(ConfigError):
        environments.resolve("govuk-production")


def test_one_bad_profile_does_not_spoil_the_others(home: Home) -> None:
    text = govuk_aws_config().replace(
        "role_arn = arn:aws:iam::410987654321:role/govuk-administrators", "role_arn = not-an-arn"
    )
    environments = home.environments(text)
    assert environments.resolve("staging").account_id == "310987654321"
    with pytest.raises(ConfigError) as caught:
        environments.resolve("production")
    assert "role_arn" in str(caught.value)
    assert "govuk-production" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("duration_seconds = soon", "duration_seconds"),
        ("duration_seconds = 899", "duration_seconds"),
        ("duration_seconds = 43201", "duration_seconds"),
        ("role_session_name = x", "role_session_name"),
        ("role_session_name = has space", "role_session_name"),
    ],
)
def test_bad_optional_values_name_profile_and_key(home: Home, line: str, key: str) -> None:
    text = govuk_aws_config().replace("source_profile = gds\n", f"source_profile = gds\n{line}\n")
    environments = home.environments(text)
    with pytest.raises(ConfigError) as caught:
        environments.resolve("production")
    assert str(home.aws_config_file) in str(caught.value)
    assert "govuk-production" in str(caught.value)
    assert key in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "role_arn = arn:aws:iam::410987654321:role/govuk-administrators\n[profile govuk-production]\n",  # no section
        "[profile govuk-production\nrole_arn = x\n",  # unclosed section header
        "this is not an ini file at all\n",
        "[profile govuk-production]\n   indented continuation with no key\n",
        "[profile govuk-production]\nregion = a\nregion = b\n",  # duplicate key
        b"\xff\xfe\x00\x01[profile govuk-production]\n\x80\x81",  # binary garbage
    ],
)
def test_malformed_aws_config_is_a_config_error(home: Home, text: str | bytes) -> None:
    with pytest.raises(ConfigError) as caught:
        home.environments(text)
    assert str(home.aws_config_file) in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("key", ["role_arn", "source_profile", "mfa_serial", "duration_seconds", "role_session_name"])
def test_nested_value_where_a_string_belongs_is_a_config_error(home: Home, key: str) -> None:
    values = {
        "role_arn": "arn:aws:iam::410987654321:role/govuk-administrators",
        "mfa_serial": SERIAL,
        "source_profile": "gds",
        "duration_seconds": "3600",
        "role_session_name": "first.last",
    }
    values[key] = "\n  nested = value"
    text = "[profile govuk-production]\n" + "".join(f"{name} = {value}\n" for name, value in values.items())
    try:
        environments = home.environments(text + f"\n[profile gds]\nmfa_serial = {SERIAL}\n")
    except ConfigError as error:  # refusing the whole file is fine too
        message = str(error)
    else:
        with pytest.raises(ConfigError) as caught:
            environments.resolve("production")
        message = str(caught.value)
    assert str(home.aws_config_file) in message
    assert key in message


def test_missing_aws_config_means_no_environments(home: Home) -> None:
    environments = load_environments(home.settings())
    assert environments.names() == []
    with pytest.raises(UnknownEnvironment) as caught:
        environments.resolve("production")
    assert "none is defined yet" in str(caught.value)


def test_unknown_environment_lists_the_known_ones(home: Home) -> None:
    environments = home.environments(govuk_aws_config())
    with pytest.raises(UnknownEnvironment) as caught:
        environments.resolve("prodution")
    error = caught.value
    assert isinstance(error, ConfigError)
    assert isinstance(error, GovukImdsError)
    assert error.name == "prodution"
    assert "integration, production, staging" in str(error)
    assert "govuk-prodution" in str(error)  # tells the user which profile to add


def test_other_sections_and_profiles_are_ignored(home: Home) -> None:
    text = (
        govuk_aws_config()
        + "\n[default]\nregion = eu-west-1\n\n[profile other]\nrole_arn = arn:aws:iam::111111111111:role/x\n"
        + "\n[sso-session corp]\nsso_region = eu-west-1\n"
    )
    assert home.environments(text).names() == ["integration", "production", "staging"]


def test_profile_prefix_is_configurable(home: Home) -> None:
    text = govuk_aws_config().replace("[profile govuk-", "[profile acme-")
    environments = home.environments(text, toml='profile_prefix = "acme-"\n')
    assert environments.names() == ["integration", "production", "staging"]
    assert environments.resolve("acme-production") == environments.resolve("production")
    assert environments.resolve("production").profile == "acme-production"


# -- EnvironmentSpec over the control socket -----------------------------------------------------------------------


def _spec() -> EnvironmentSpec:
    return EnvironmentSpec(
        name="production",
        profile="govuk-production",
        role_arn="arn:aws:iam::410987654321:role/govuk-administrators",
        mfa_serial=SERIAL,
        source_profile="gds",
        region="eu-west-1",
        role_duration_seconds=3600,
        role_session_name="first.last@digital.cabinet-office.gov.uk",
    )


def test_environment_spec_wire_round_trip_through_json() -> None:
    spec = _spec()
    wire = json.loads(json.dumps(spec.to_wire()))
    assert EnvironmentSpec.from_wire(wire) == spec
    no_region = EnvironmentSpec(**{**spec.to_wire(), "region": None})
    assert EnvironmentSpec.from_wire(json.loads(json.dumps(no_region.to_wire()))) == no_region


def test_environment_spec_from_wire_ignores_extra_keys() -> None:
    assert EnvironmentSpec.from_wire({**_spec().to_wire(), "extra": 1}) == _spec()


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        "production",
        42,
        {},
        {key: value for key, value in _spec().to_wire().items() if key != "role_arn"},
        {**_spec().to_wire(), "name": "../../etc/passwd"},
        {**_spec().to_wire(), "name": ""},
        {**_spec().to_wire(), "name": "prod\nuction"},
        {**_spec().to_wire(), "role_arn": "arn:aws:iam::41098765432:role/short-account"},
        {**_spec().to_wire(), "role_arn": "arn:aws:s3:::bucket"},
    ],
)
def test_environment_spec_from_wire_refuses_malformed_input(document: Any) -> None:
    with pytest.raises(ConfigError):
        EnvironmentSpec.from_wire(document)


@pytest.mark.parametrize(
    "change",
    [{"name": 5}, {"role_arn": None}, {"role_duration_seconds": "3600"}, {"mfa_serial": ["x"]}],
)
def test_environment_spec_from_wire_refuses_wrong_types(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EnvironmentSpec.from_wire({**_spec().to_wire(), **change})
