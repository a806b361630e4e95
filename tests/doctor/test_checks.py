"""Each doctor check on its own: the condition is created in files, sockets or a mapping, and the finding read back."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from govuk_imds.aws.endpoints import sts_url
from govuk_imds.config.aws_config import credentials_file, load_environments
from govuk_imds.config.paths import RuntimePaths
from govuk_imds.config.settings import Settings, load_settings
from govuk_imds.core.clock import SystemClock
from govuk_imds.core.shellenv import SHADOWING_VARIABLES
from govuk_imds.doctor import diagnose as doctor
from govuk_imds.doctor.checks import (
    check_clock,
    check_credentials_file,
    check_daemon,
    check_daemon_clock,
    check_default_profile,
    check_endpoint,
    check_profiles,
    check_runtime_dir,
    check_sessions,
    check_shell_endpoint,
    check_token_files,
    check_variables,
)
from govuk_imds.doctor.findings import Finding, Status, exit_status, render_json, render_text
from govuk_imds.doctor.probes import ClockReading, DaemonProbe, fetch_credentials, probe_daemon, read_sts_date
from govuk_imds.endpoint_client import EndpointAnswer
from tests.support.clock import FakeClock
from tests.support.date_server import DateServer

SERIAL = "arn:aws:iam::123456789012:mfa/first.last@digital.cabinet-office.gov.uk"
NOW = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)
GOOD_TOKEN = b"A" * 43


def profile(name: str, account: str = "410987654321", **extra: str) -> str:
    lines = [f"[profile govuk-{name}]", f"role_arn = arn:aws:iam::{account}:role/govuk-administrators",
             f"mfa_serial = {SERIAL}", "source_profile = gds", "region = eu-west-1"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


GDS = f"[profile gds]\nmfa_serial = {SERIAL}\nregion = eu-west-1\n"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(profile("production") + "\n" + profile("staging", "310987654321") + GDS)
    return home


def make_settings(home: Path, tmp_path: Path, **environ: str) -> Settings:
    config = tmp_path / "govuk-imds.toml"
    config.write_text(f'port = 9911\n[sts]\nendpoint_url = "http://127.0.0.1:{closed_port()}"\n')
    return load_settings({"HOME": str(home), "GOVUK_IMDS_CONFIG": str(config),
                          "GOVUK_IMDS_RUNTIME_DIR": str(tmp_path / "run"), **environ})


@pytest.fixture
def settings(home: Path, tmp_path: Path) -> Settings:
    return make_settings(home, tmp_path)


def statuses(findings: list[Finding]) -> list[Status]:
    return [finding.status for finding in findings]


# -- variables ------------------------------------------------------------------------------------------------------

SHADOWING = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
]


def test_a_clean_environment_has_nothing_shadowing() -> None:
    findings = check_variables({"PATH": "/usr/bin", "AWS_REGION": "eu-west-1", "AWS_PROFILE": ""})
    assert statuses(findings) == [Status.OK]
    assert findings[0].message == "no variable in this shell shadows the endpoint"


@pytest.mark.parametrize("name", SHADOWING)
def test_each_shadowing_variable_is_a_problem_with_its_unset(name: str) -> None:
    assert name in SHADOWING_VARIABLES
    [finding] = check_variables({name: "s3cr3t-value-0123456789"})
    assert finding.status is Status.PROBLEM
    assert finding.check == "shadowing-variable"
    assert finding.subject == name
    assert finding.message.startswith(f"${name} is set")
    assert finding.fix == f"unset {name}"
    assert exit_status([finding]) == 1


def test_the_token_variable_is_not_a_shadowing_variable_but_the_shell_endpoint_checks_it() -> None:
    # `env` sets it: clients that read only the variable need it (check_token_variable compares it with the token).
    assert check_variables({"AWS_CONTAINER_AUTHORIZATION_TOKEN": "A" * 43}) == check_variables({})


@pytest.mark.parametrize("name", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
def test_secret_values_are_never_repeated(name: str) -> None:
    [finding] = check_variables({name: "wJalrXUtnFEMI/K7MDENG"})
    assert "wJalrXUtnFEMI" not in json.dumps(finding.to_json())


def test_a_profile_variable_names_the_profile_and_why_it_matters() -> None:
    [finding] = check_variables({"AWS_PROFILE": "gds"})
    assert finding.message == "$AWS_PROFILE is set (gds): AWS tools use that profile instead of asking govuk-imds"


def test_relative_uri_is_explained_as_beating_the_full_uri() -> None:
    [finding] = check_variables({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"})
    assert "169.254.170.2" in finding.message
    assert "beats the full URI" in finding.message


def test_leftovers_that_shadow_nothing_alone_are_warnings() -> None:
    findings = check_variables({"AWS_ROLE_ARN": "arn:aws:iam::1:role/x", "AWS_CREDENTIAL_EXPIRATION": "x"})
    assert statuses(findings) == [Status.WARNING, Status.WARNING]
    assert {finding.fix for finding in findings} == {"unset AWS_ROLE_ARN", "unset AWS_CREDENTIAL_EXPIRATION"}
    assert exit_status(findings) == 0
    assert exit_status(findings, strict=True) == 1


# -- the shell's endpoint variables ----------------------------------------------------------------------------------


def pointed(settings: Settings, name: str) -> dict[str, str]:
    """A shell after `eval "$(govuk-imds env NAME)"`; the token file is written when there is none."""
    token_file = settings.runtime.token_file(name)
    if not token_file.exists():
        token_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        token_file.write_bytes(GOOD_TOKEN)
        token_file.chmod(0o600)
    return {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": settings.endpoint_base + name,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": token_file.read_text(),
    }


def test_a_shell_pointed_at_the_environment_is_ok(settings: Settings) -> None:
    pointing, variable = check_shell_endpoint(pointed(settings, "production"), settings, "production")
    assert pointing.status is Status.OK
    assert pointing.message == "this shell points AWS tools at production"
    assert variable.status is Status.OK
    assert variable.message == "$AWS_CONTAINER_AUTHORIZATION_TOKEN holds production's current token"


def test_a_shell_without_the_token_variable_fails_the_clients_that_read_only_it(settings: Settings) -> None:
    environ = pointed(settings, "production")
    del environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    _, variable = check_shell_endpoint(environ, settings, "production")
    assert variable.status is Status.PROBLEM
    assert variable.check == "token-variable"
    assert variable.message.startswith("$AWS_CONTAINER_AUTHORIZATION_TOKEN is not set: tools that read only the "
                                       "variable get a 401 (aws CLI v2 before 2.15.0, ")
    assert "fromContainerMetadata" in variable.message
    assert variable.fix == 'eval "$(govuk-imds env production)"'
    assert exit_status([variable]) == 1


@pytest.mark.parametrize("stale", ["B" * 43, "A" * 42, "", "é" * 43])
def test_a_token_variable_that_is_not_the_current_token_is_a_problem_that_never_shows_it(
        settings: Settings, stale: str) -> None:
    environ = {**pointed(settings, "production"), "AWS_CONTAINER_AUTHORIZATION_TOKEN": stale}
    _, variable = check_shell_endpoint(environ, settings, None)
    assert variable.status is Status.PROBLEM
    if stale:
        assert variable.message.startswith("$AWS_CONTAINER_AUTHORIZATION_TOKEN is not production's current token")
        assert "Java and the JS SDK v2 read it first" in variable.message
    assert variable.fix == 'eval "$(govuk-imds env production)"'
    rendered = json.dumps(variable.to_json())
    assert GOOD_TOKEN.decode() not in rendered
    assert not stale or stale not in rendered


def test_without_a_readable_token_file_the_variable_is_left_to_the_token_file_check(settings: Settings) -> None:
    environ = pointed(settings, "production")
    settings.runtime.token_file("production").unlink()
    [pointing] = check_shell_endpoint(environ, settings, None)
    assert pointing.status is Status.OK


def test_a_shell_not_pointed_anywhere_is_fine_unless_an_environment_was_asked_about(settings: Settings) -> None:
    [general] = check_shell_endpoint({}, settings, None)
    assert general.status is Status.OK
    [asked] = check_shell_endpoint({}, settings, "production")
    assert asked.status is Status.WARNING
    assert asked.fix == 'eval "$(govuk-imds env production)"'


def test_a_shell_pointed_at_another_port_is_a_problem(settings: Settings) -> None:
    environ = pointed(settings, "production")
    environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:9999/v1/credentials/production"
    [finding] = check_shell_endpoint(environ, settings, None)
    assert finding.status is Status.PROBLEM
    assert "not govuk-imds on 127.0.0.1:9911" in finding.message
    assert finding.fix == 'eval "$(govuk-imds env production)"'


def test_a_shell_without_or_with_the_wrong_token_file_is_a_problem(settings: Settings) -> None:
    environ = pointed(settings, "production")
    del environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
    [missing] = check_shell_endpoint(environ, settings, None)
    assert missing.status is Status.PROBLEM
    assert "tools send no token" in missing.message
    environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = "/tmp/elsewhere"
    [wrong] = check_shell_endpoint(environ, settings, None)
    assert wrong.status is Status.PROBLEM
    assert "/tmp/elsewhere" in wrong.message


def test_a_shell_pointed_at_another_environment_is_a_warning(settings: Settings) -> None:
    [finding] = check_shell_endpoint(pointed(settings, "staging"), settings, "production")
    assert finding.status is Status.WARNING
    assert finding.message == "this shell points AWS tools at staging, not production"


# -- ~/.aws/credentials and ~/.aws/config -------------------------------------------------------------------------


def test_the_credentials_file_is_found_where_the_sdks_look(tmp_path: Path) -> None:
    assert credentials_file({"HOME": "/home/x"}) == Path("/home/x/.aws/credentials")
    assert credentials_file({"HOME": "/home/x", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "c")}) == tmp_path / "c"


def test_no_credentials_file_is_ok(tmp_path: Path) -> None:
    [finding] = check_credentials_file(tmp_path / "absent")
    assert finding.status is Status.OK


def test_a_default_key_pair_shadows_the_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI\n")
    [finding] = check_credentials_file(path)
    assert finding.status is Status.PROBLEM
    assert finding.message == (
        f"{path} has a key pair in [default]: AWS tools use it before asking govuk-imds, "
        "and it is a long-term key in plaintext"
    )
    assert finding.fix == "govuk-imds import default"
    assert "AKIAEXAMPLE" not in finding.message and "wJalr" not in finding.message


def test_a_key_pair_in_another_section_should_be_imported(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("[default]\nregion = eu-west-1\n\n[gds]\naws_access_key_id = AKIAEXAMPLE\n"
                    "aws_secret_access_key = x\n\n[empty]\n")
    [finding] = check_credentials_file(path)
    assert finding.status is Status.WARNING
    assert finding.message == f"{path} has a plaintext key pair in [gds]; move it into the keyring"
    assert finding.fix == "govuk-imds import gds"
    assert finding.subject == "gds"


def test_a_credentials_file_without_keys_is_ok(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("[default]\nregion = eu-west-1\n")
    assert statuses(check_credentials_file(path)) == [Status.OK]


def test_an_unparseable_credentials_file_breaks_every_tool(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("aws_access_key_id = AKIA\n")  # no section header
    [finding] = check_credentials_file(path)
    assert finding.status is Status.PROBLEM
    assert "cannot be parsed" in finding.message


@pytest.mark.parametrize("section", ["[default]", "[profile default]"])
@pytest.mark.parametrize("line", ["role_arn = arn:aws:iam::1:role/x", "credential_process = /bin/true",
                                  "sso_session = corp", "aws_access_key_id = AKIA"])
def test_a_default_profile_that_yields_credentials_shadows_the_endpoint(tmp_path: Path, section: str,
                                                                        line: str) -> None:
    path = tmp_path / "config"
    path.write_text(f"{section}\nregion = eu-west-1\n{line}\n")
    [finding] = check_default_profile(path)
    assert finding.status is Status.PROBLEM
    key = line.split(" = ", maxsplit=1)[0]
    assert finding.message.startswith(f"[default] in {path} has {key}: AWS tools take credentials")


def test_a_default_profile_with_only_a_region_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("[default]\nregion = eu-west-1\noutput = json\n")
    assert statuses(check_default_profile(path)) == [Status.OK]


# -- profiles ---------------------------------------------------------------------------------------------------------


def test_good_profiles_are_ok(settings: Settings) -> None:
    [finding] = check_profiles(load_environments(settings), None)
    assert finding.status is Status.OK
    assert finding.message == f"{settings.aws_config_file} defines production, staging"


def test_a_profile_missing_a_field_is_a_problem_with_the_line_to_add(settings: Settings) -> None:
    with settings.aws_config_file.open("a") as handle:
        handle.write("\n[profile govuk-broken]\nsource_profile = gds\nregion = eu-west-1\n")
    [finding] = check_profiles(load_environments(settings), None)
    assert finding.status is Status.PROBLEM
    assert finding.subject == "broken"
    assert finding.message == f"{settings.aws_config_file}: [profile govuk-broken] has no role_arn"
    assert finding.fix == "add `role_arn = arn:aws:iam::<account>:role/<role>`"


def test_another_environments_broken_profile_is_only_a_warning_when_one_is_named(settings: Settings) -> None:
    with settings.aws_config_file.open("a") as handle:
        handle.write("\n[profile govuk-broken]\nrole_arn = arn:aws:iam::1:role/x\n")
    [finding] = check_profiles(load_environments(settings), "govuk-production")
    assert finding.status is Status.WARNING
    [named] = check_profiles(load_environments(settings), "broken")
    assert named.status is Status.PROBLEM


def test_an_unknown_environment_is_a_problem(settings: Settings) -> None:
    [finding] = check_profiles(load_environments(settings), "prod")
    assert finding.status is Status.PROBLEM
    assert finding.message == "unknown environment 'prod' (known: production, staging)"
    assert finding.fix == (
        f"add a [profile govuk-prod] with role_arn, mfa_serial, source_profile and region to {settings.aws_config_file}"
    )


def test_no_environment_at_all_is_a_problem(settings: Settings) -> None:
    settings.aws_config_file.write_text(GDS)
    [finding] = check_profiles(load_environments(settings), None)
    assert finding.status is Status.PROBLEM
    assert "defines no environment" in finding.message


# -- runtime files ----------------------------------------------------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path) -> RuntimePaths:
    paths = RuntimePaths(tmp_path / "run")
    paths.tokens_dir.mkdir(parents=True, mode=0o700)
    paths.root.chmod(0o700)
    for name in ("production", "staging"):
        path = paths.token_file(name)
        path.write_bytes(GOOD_TOKEN)
        path.chmod(0o600)
    return paths


def test_good_token_files_are_ok(runtime: RuntimePaths) -> None:
    findings = check_token_files(runtime, ["production", "staging"], uid=os.getuid(), daemon_running=True)
    assert statuses(findings) == [Status.OK]
    assert findings[0].message == "token files for production, staging are present and private (0600)"
    assert check_runtime_dir(runtime, uid=os.getuid()) == []


def test_a_token_file_others_can_read_is_a_problem_fixed_by_chmod(runtime: RuntimePaths) -> None:
    path = runtime.token_file("production")
    path.chmod(0o644)
    findings = check_token_files(runtime, ["production", "staging"], uid=os.getuid(), daemon_running=True)
    assert statuses(findings) == [Status.PROBLEM, Status.OK]
    assert findings[0].message == f"production: {path} has mode 0644, not 0600: other users could read the token"
    assert findings[0].fix == f"chmod 600 {path}"


@pytest.mark.parametrize(("running", "fix"), [(False, "govuk-imds start"), (True, "govuk-imds reload")])
def test_a_missing_token_file_names_what_writes_it_again(runtime: RuntimePaths, running: bool, fix: str) -> None:
    runtime.token_file("production").unlink()
    [finding] = check_token_files(runtime, ["production"], uid=os.getuid(), daemon_running=running)
    assert finding.status is Status.PROBLEM
    assert finding.message == f"production: no token file at {runtime.token_file('production')}: " \
                              "tools cannot authenticate"
    assert finding.fix == fix


def test_a_token_file_with_a_newline_is_a_problem(runtime: RuntimePaths) -> None:
    runtime.token_file("production").write_bytes(GOOD_TOKEN + b"\n")
    [finding] = check_token_files(runtime, ["production"], uid=os.getuid(), daemon_running=True)
    assert finding.status is Status.PROBLEM
    assert "does not hold a token (a newline breaks every SDK)" in finding.message


def test_a_symlinked_token_file_is_a_problem(runtime: RuntimePaths, tmp_path: Path) -> None:
    path = runtime.token_file("production")
    path.unlink()
    (tmp_path / "elsewhere").write_bytes(GOOD_TOKEN)
    path.symlink_to(tmp_path / "elsewhere")
    [finding] = check_token_files(runtime, ["production"], uid=os.getuid(), daemon_running=True)
    assert finding.status is Status.PROBLEM
    assert "is not a regular file" in finding.message
    assert finding.fix == f"rm {path} && govuk-imds reload"


def test_a_token_file_of_another_user_is_a_problem(runtime: RuntimePaths) -> None:
    [finding] = check_token_files(runtime, ["production"], uid=os.getuid() + 1, daemon_running=True)
    assert finding.status is Status.PROBLEM
    assert f"belongs to uid {os.getuid()}, not to you" in finding.message


def test_a_runtime_dir_open_to_others_is_a_problem(runtime: RuntimePaths) -> None:
    runtime.root.chmod(0o755)
    [finding] = check_runtime_dir(runtime, uid=os.getuid())
    assert finding.status is Status.PROBLEM
    assert finding.message == f"{runtime.root} has mode 0755, not 0700"
    assert finding.fix == f"chmod 700 {runtime.root}"


# -- the daemon -------------------------------------------------------------------------------------------------------

LOG = Path("/run/user/1000/govuk-imds/daemon.log")


def test_a_daemon_that_is_not_running_is_a_problem_fixed_by_start() -> None:
    [finding] = check_daemon(DaemonProbe(None, None, port_open=False), 9911, LOG)
    assert finding.status is Status.PROBLEM
    assert finding.message == "the daemon is not running"
    assert finding.fix == "govuk-imds start"


def test_another_program_on_the_port_is_named() -> None:
    [finding] = check_daemon(DaemonProbe(None, None, port_open=True), 9911, LOG)
    assert finding.status is Status.PROBLEM
    assert finding.message == "the daemon is not running, and another program holds 127.0.0.1:9911"
    assert finding.fix is not None and finding.fix.startswith("lsof -nP -iTCP:9911 -sTCP:LISTEN")


def test_a_running_daemon_is_ok() -> None:
    [finding] = check_daemon(DaemonProbe({"pid": 42, "port": 9911}, None, port_open=True), 9911, LOG)
    assert finding.status is Status.OK
    assert finding.message == "the daemon is running (pid 42) and accepts connections on 127.0.0.1:9911"


def test_a_daemon_on_another_port_than_the_settings_is_a_problem() -> None:
    [finding] = check_daemon(DaemonProbe({"pid": 42, "port": 9912}, None, port_open=False), 9911, LOG)
    assert finding.status is Status.PROBLEM
    assert "serves 127.0.0.1:9912, but your settings say port 9911" in finding.message
    assert finding.fix == "govuk-imds stop && govuk-imds start"


def test_a_daemon_whose_port_does_not_accept_is_a_problem() -> None:
    [finding] = check_daemon(DaemonProbe({"pid": 42, "port": 9911}, None, port_open=False), 9911, LOG)
    assert finding.status is Status.PROBLEM
    assert "nothing accepts connections on 127.0.0.1:9911" in finding.message


def test_a_daemon_that_does_not_answer_is_a_problem_with_its_pid() -> None:
    [finding] = check_daemon(DaemonProbe(None, "no answer within 2 s", port_open=True, pid_hint=4242), 9911, LOG)
    assert finding.status is Status.PROBLEM
    assert finding.message == "the daemon does not answer on its control socket: no answer within 2 s"
    assert finding.fix == "kill 4242 && govuk-imds start"


def test_probing_an_empty_runtime_dir_finds_nothing_running(tmp_path: Path) -> None:
    probe = probe_daemon(RuntimePaths(tmp_path), closed_port(), timeout=0.5)
    assert (probe.running, probe.error, probe.port_open) == (False, None, False)


def test_probing_sees_a_program_holding_the_port(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        probe = probe_daemon(RuntimePaths(tmp_path), squatter.getsockname()[1], timeout=0.5)
    assert (probe.running, probe.port_open) == (False, True)


@pytest.fixture
def mute_control_socket(tmp_path: Path) -> Iterator[RuntimePaths]:
    """A control socket that accepts connections and never answers, like a stopped daemon."""
    paths = RuntimePaths(tmp_path)
    (tmp_path / "state.json").write_text('{"pid": 4242, "port": 9911}')
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(paths.control_socket))
    server.listen()
    try:
        yield paths
    finally:
        server.close()


def test_probing_a_mute_daemon_reports_it_does_not_answer(mute_control_socket: RuntimePaths) -> None:
    probe = probe_daemon(mute_control_socket, closed_port(), timeout=0.3)
    assert not probe.running
    assert probe.error is not None and "did not answer" in probe.error
    assert probe.pid_hint == 4242


# -- sessions ---------------------------------------------------------------------------------------------------------


def row(name: str, state: str, problem: str | None = None) -> dict[str, Any]:
    return {"environment": name, "state": state, "problem": problem, "session_ends": "2026-11-25T20:00:00Z"}


def test_a_named_locked_environment_is_a_problem_fixed_by_unlock() -> None:
    [finding] = check_sessions({"production": row("production", "locked", "the MFA session ended")},
                               ["production"], named=True)
    assert finding.status is Status.PROBLEM
    assert finding.message == "production is locked (the MFA session ended)"
    assert finding.fix == "govuk-imds unlock production"


def test_locked_environments_are_warnings_when_none_was_named() -> None:
    rows = {"production": row("production", "locked"), "staging": row("staging", "active")}
    findings = check_sessions(rows, ["production", "staging"], named=False)
    assert statuses(findings) == [Status.WARNING, Status.OK]
    assert findings[0].message == "production is locked"
    assert findings[1].message.startswith("staging is active until 2026-11-25")


def test_a_degraded_environment_is_a_warning_with_the_reason() -> None:
    [finding] = check_sessions({"staging": row("staging", "degraded", "STS is throttling")}, ["staging"], named=True)
    assert finding.status is Status.WARNING
    assert "renewing its credentials failed (STS is throttling)" in finding.message


def test_an_environment_the_daemon_does_not_know_needs_a_reload() -> None:
    [finding] = check_sessions({}, ["integration"], named=True)
    assert finding.status is Status.PROBLEM
    assert finding.fix == "govuk-imds reload"


# -- the endpoint -----------------------------------------------------------------------------------------------------


def test_credentials_with_plenty_of_life_are_ok() -> None:
    answer = EndpointAnswer(200, {"Expiration": "2026-11-25T16:50:00Z"})
    [finding] = check_endpoint("production", answer, NOW)
    assert finding.status is Status.OK
    assert finding.message == "production: the endpoint serves credentials valid for 50 min 0 s"


def test_credentials_close_to_expiry_are_a_warning() -> None:
    [finding] = check_endpoint("production", EndpointAnswer(200, {"Expiration": "2026-11-25T16:10:00Z"}), NOW)
    assert finding.status is Status.WARNING


@pytest.mark.parametrize(("status", "fix"), [(401, "govuk-imds reload"),
                                             (403, "govuk-imds reload"),
                                             (423, "govuk-imds unlock production"),
                                             (503, "govuk-imds status")])
def test_refusals_are_problems(status: int, fix: str) -> None:
    answer = EndpointAnswer(status, {"message": "the daemon's message"})
    [finding] = check_endpoint("production", answer, NOW)
    assert finding.status is Status.PROBLEM
    assert "the daemon's message" in finding.message
    assert finding.fix == fix


def test_fetching_keeps_no_secret(tmp_path: Path) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []
    body = json.dumps({"AccessKeyId": "ASIASECRET", "SecretAccessKey": "s3cr3t", "Token": "t0k3n",
                       "Expiration": "2026-11-25T16:50:00Z"}).encode()

    class Endpoint(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token_file = tmp_path / "token"
    token_file.write_bytes(GOOD_TOKEN)
    token_file.chmod(0o600)
    try:
        answer = fetch_credentials(server.server_address[1], "production", token_file,
                                   control_socket=tmp_path / "control.sock")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [GOOD_TOKEN.decode()]
    assert answer == EndpointAnswer(200, {"Expiration": "2026-11-25T16:50:00Z"})


def test_fetching_from_nobody_is_no_answer(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(GOOD_TOKEN)
    answer = fetch_credentials(closed_port(), "production", token_file, control_socket=tmp_path / "control.sock",
                               timeout=1)
    assert isinstance(answer, str)
    [finding] = check_endpoint("production", answer, NOW)
    assert finding.status is Status.PROBLEM
    assert finding.message.startswith("production: no answer from the endpoint")


# -- the clock --------------------------------------------------------------------------------------------------------


def reading(offset: timedelta) -> ClockReading:
    return ClockReading("https://sts.eu-west-1.amazonaws.com", NOW, NOW + offset)


@pytest.mark.parametrize(("offset", "words"), [(timedelta(minutes=-2), "2 min 0 s ahead of"),
                                               (timedelta(minutes=2), "2 min 0 s behind")])
def test_a_clock_more_than_a_minute_off_is_a_problem(offset: timedelta, words: str) -> None:
    [finding] = check_clock(reading(offset), platform="linux")
    assert finding.status is Status.PROBLEM
    assert finding.message.startswith(f"the local clock is {words} STS (https://sts.eu-west-1.amazonaws.com)")
    assert finding.fix == "sudo timedatectl set-ntp true"
    [mac] = check_clock(reading(offset), platform="darwin")
    assert mac.fix == "sudo sntp -sS time.apple.com"


def test_a_clock_within_a_minute_is_ok() -> None:
    for offset in (timedelta(0), timedelta(seconds=50), timedelta(seconds=-50)):
        [finding] = check_clock(reading(offset))
        assert finding.status is Status.OK, offset
        assert finding.message.startswith("the local clock agrees with STS within")


def test_an_unreachable_sts_skips_the_clock_with_a_warning() -> None:
    [finding] = check_clock(ClockReading("http://127.0.0.1:1", NOW, None, "ConnectionRefusedError: refused"))
    assert finding.status is Status.WARNING
    assert finding.message.startswith("could not read the time from STS at http://127.0.0.1:1 (ConnectionRefused")
    assert "the clock was not checked" in finding.message


def test_the_sts_url_is_the_configured_one_or_the_regional_one(home: Path, tmp_path: Path) -> None:
    configured = make_settings(home, tmp_path)
    assert sts_url(configured, "eu-west-2") == configured.sts_endpoint_url
    (tmp_path / "empty.toml").write_text("")
    plain = load_settings({"HOME": str(home), "GOVUK_IMDS_CONFIG": str(tmp_path / "empty.toml")})
    assert sts_url(plain, "eu-west-2") == "https://sts.eu-west-2.amazonaws.com"
    assert sts_url(plain, None) == "https://sts.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(("offset", "status"), [(timedelta(minutes=2), Status.PROBLEM),
                                                (timedelta(minutes=-2), Status.PROBLEM),
                                                (timedelta(0), Status.OK)])
def test_the_date_header_of_a_real_http_answer_is_read(offset: timedelta, status: Status) -> None:
    with DateServer(offset) as server:
        measured = read_sts_date(server.url, SystemClock())
    assert measured.error is None
    assert measured.remote is not None
    [finding] = check_clock(measured)
    assert finding.status is status, finding.message


def test_an_answer_without_a_date_is_noted() -> None:
    with DateServer(None) as server:
        measured = read_sts_date(server.url, FakeClock(NOW))
    assert measured.remote is None
    assert measured.error == "the answer had no Date header"
    assert statuses(check_clock(measured)) == [Status.WARNING]


def test_nobody_listening_is_noted_quickly() -> None:
    measured = read_sts_date(f"http://127.0.0.1:{closed_port()}", FakeClock(NOW), timeout=1)
    assert measured.remote is None
    assert measured.error is not None and "ConnectionRefusedError" in measured.error


# -- the whole run, rendering, exit status --------------------------------------------------------------------------


def test_exit_status_is_one_only_for_problems_unless_strict() -> None:
    good = Finding("a", Status.OK, "fine")
    advice = Finding("b", Status.WARNING, "hmm", "do x")
    bad = Finding("c", Status.PROBLEM, "broken", "do y")
    assert exit_status([good]) == 0
    assert exit_status([good, advice]) == 0
    assert exit_status([good, advice], strict=True) == 1
    assert exit_status([good, bad]) == 1


def test_text_is_one_line_per_finding_with_a_mark_and_the_fix_then_a_summary() -> None:
    text = render_text([Finding("a", Status.OK, "fine"), Finding("b", Status.WARNING, "hmm", "do x"),
                        Finding("c", Status.PROBLEM, "broken", "do y")])
    assert text.splitlines() == ["ok   fine", "warn hmm; fix: do x", "FAIL broken; fix: do y", "1 problem, 1 warning"]
    assert render_text([Finding("a", Status.OK, "fine")]).splitlines()[-1] == "all is well"


def test_json_carries_every_field() -> None:
    document = json.loads(render_json([Finding("c", Status.PROBLEM, "broken", "do y", "production")], 1))
    assert document == {"ok": False, "problems": 1, "warnings": 0, "findings": [
        {"check": "c", "status": "problem", "message": "broken", "fix": "do y", "subject": "production"}]}


def test_diagnose_without_a_daemon_reports_it_and_never_raises(settings: Settings) -> None:
    findings = doctor.diagnose(settings, {"HOME": "/nonexistent", "AWS_PROFILE": "gds"}, "production",
                               clock=FakeClock(NOW))
    by_check = {finding.check: finding for finding in findings}
    assert by_check["daemon"].message == "the daemon is not running"
    assert by_check["shadowing-variable"].status is Status.PROBLEM
    assert by_check["token-file"].fix == "govuk-imds start"
    assert by_check["clock"].status is Status.WARNING  # the configured STS is a closed local port
    assert "session" not in by_check  # nothing to ask about sessions without a daemon
    assert exit_status(findings) == 1


@pytest.mark.parametrize(("seconds", "words"), [(-35 * 60, "35 min 0 s ahead of AWS"), (7200, "2 h 0 min behind AWS")])
def test_a_clock_offset_the_daemon_measured_is_a_warning(seconds: float, words: str) -> None:
    [finding] = check_daemon_clock({"clock_offset_seconds": seconds}, platform="linux")
    assert finding.status is Status.WARNING
    assert finding.message.startswith(f"the daemon measured this machine's clock {words} from STS's answers")
    assert finding.fix == "sudo timedatectl set-ntp true"


def test_a_small_or_unknown_offset_the_daemon_measured_is_fine_or_not_mentioned() -> None:
    assert statuses(check_daemon_clock({"clock_offset_seconds": 0.4})) == [Status.OK]
    assert check_daemon_clock({"clock_offset_seconds": None}) == []
    assert check_daemon_clock({}) == []
