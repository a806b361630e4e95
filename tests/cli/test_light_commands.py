"""The light CLI commands stay light when they really run: checked in fresh interpreters through ``sys.modules``.

The static rule (tests/test_layout.py) sees what modules import; this sees what a real run loads, deeper calls
included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

NOT_FOR_THE_CLI = ("boto3", "botocore.client", "botocore.session", "aiohttp", "keyring", "secretstorage")
SERIAL = "arn:aws:iam::123456789012:mfa/first.last@digital.cabinet-office.gov.uk"


def _loaded(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in modules if any(name == bad or name.startswith(bad + ".") for bad in forbidden))


def _python(code: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Any:
    """Run ``code`` in a fresh interpreter; it prints one JSON document last."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env if env is not None else {"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_importing_the_cli_imports_no_sdk_server_or_keyring() -> None:
    modules = _python("import json, sys\nimport govuk_imds.cli\nprint(json.dumps(sorted(sys.modules)))")
    assert "govuk_imds.cli" in modules
    assert _loaded(modules, NOT_FOR_THE_CLI) == []


def test_the_check_itself_sees_heavy_imports() -> None:
    """Guard against a vacuous pass: importing the STS adapter does show up."""
    modules = _python("import json, sys\nimport govuk_imds.aws.sts\nprint(json.dumps(sorted(sys.modules)))")
    assert "boto3" in modules or "botocore.client" in modules


@pytest.fixture
def user(tmp_path: Path) -> dict[str, str]:
    """A user's environment: a HOME with GOV.UK's AWS config, no daemon running."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(
        "[profile govuk-production]\n"
        "role_arn = arn:aws:iam::410987654321:role/govuk-administrators\n"
        f"mfa_serial = {SERIAL}\n"
        "source_profile = gds\n"
        "region = eu-west-1\n\n"
        f"[profile gds]\nmfa_serial = {SERIAL}\nregion = eu-west-1\n"
    )
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GOVUK_IMDS_RUNTIME_DIR": str(tmp_path / "run"),
        "LANG": "C.UTF-8",
    }


RUN_MAIN = """
import contextlib, io, json, sys
from govuk_imds.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_env_command_imports_no_sdk_server_or_keyring(user: dict[str, str]) -> None:
    result = _python(RUN_MAIN, user, ("env", "production"))
    assert result["code"] == 0, result["err"]
    url = "http://127.0.0.1:9911/v1/credentials/production"
    assert f"export AWS_CONTAINER_CREDENTIALS_FULL_URI={url};" in result["out"]
    token_file = Path(user["GOVUK_IMDS_RUNTIME_DIR"]) / "tokens" / "production"
    assert f"export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={token_file};" in result["out"]
    assert "govuk-imds start" in result["err"]  # the daemon is not running, and the user is told
    assert _loaded(result["modules"], NOT_FOR_THE_CLI) == []


def test_env_json_for_the_long_name_is_the_same_environment(user: dict[str, str]) -> None:
    short = _python(RUN_MAIN, user, ("env", "production", "--json"))
    long = _python(RUN_MAIN, user, ("env", "govuk-production", "--json"))
    assert short["code"] == long["code"] == 0
    assert json.loads(short["out"]) == json.loads(long["out"])
    assert json.loads(short["out"])["set"]["AWS_REGION"] == "eu-west-1"
    assert _loaded(long["modules"], NOT_FOR_THE_CLI) == []


@pytest.mark.parametrize("argv", [("status",), ("status", "--json"), ("lock", "--all"), ("lock", "production")])
def test_other_light_commands_import_no_sdk_server_or_keyring(user: dict[str, str], argv: tuple[str, ...]) -> None:
    result = _python(RUN_MAIN, user, argv)
    assert result["code"] != 0  # no daemon is running
    assert "Traceback" not in result["err"]
    assert _loaded(result["modules"], NOT_FOR_THE_CLI) == []


def test_python_dash_m_env(user: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "govuk_imds", "env", "govuk-production"],
        env=user,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "/v1/credentials/production;" in result.stdout
    assert "unset AWS_ACCESS_KEY_ID" in result.stdout


def _audit_lines(now: str) -> list[str]:
    record = {
        "time": now, "environment": "production", "role": "arn:aws:iam::410987654321:role/r", "status": 200,
        "result": "served", "user_agent": "aws-cli/2.15.0 Python/3.11",
        "caller": {"uid": 1000, "pid": 4242, "name": "terraform", "exe": "/usr/bin/terraform",
                   "argv": ["terraform", "plan"], "cwd": "/srv",
                   "parents": [{"pid": 4000, "name": "bash", "exe": "/usr/bin/bash", "argv": ["-bash"], "cwd": "/"}]},
    }
    old = {**record, "time": "2020-01-01T00:00:00.000Z", "environment": "staging"}
    refused = {**record, "status": 403, "result": "refused", "user_agent": None,
               "caller": {"uid": None, "unknown": "the client had closed its connection"}}
    return [json.dumps(old), json.dumps(record), "not json, cut short by a crash", json.dumps(refused)]


def test_audit_reads_the_record_without_the_daemon_and_stays_light(user: dict[str, str]) -> None:
    from datetime import UTC, datetime

    state = Path(user["HOME"]) / ".local" / "state" / "govuk-imds"
    state.mkdir(parents=True)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    (state / "audit.jsonl").write_text("\n".join(_audit_lines(now)) + "\n")

    result = _python(RUN_MAIN, user, ("audit", "govuk-production", "--since", "1h"))
    assert result["code"] == 0, result["err"]
    header, served, refused = result["out"].splitlines()
    assert header.split() == ["TIME", "ENVIRONMENT", "RESULT", "PID", "PROGRAM", "CALLED", "FROM", "USER", "AGENT"]
    assert served.split()[1:] == ["production", "served", "4242", "terraform", "bash", "aws-cli/2.15.0", "Python/3.11"]
    assert refused.split()[1:4] == ["production", "refused", "-"]
    assert "(not identified: the client had closed its connection)" in refused
    assert result["err"].strip() == f"govuk-imds: warning: skipped 1 unreadable lines in {state / 'audit.jsonl'}"
    assert _loaded(result["modules"], NOT_FOR_THE_CLI) == []

    everything = _python(RUN_MAIN, user, ("audit", "--json"))
    assert [record["environment"] for record in json.loads(everything["out"])] == [
        "staging", "production", "production"]
    bad = _python(RUN_MAIN, user, ("audit", "--since", "yesterday"))
    assert bad["code"] == 2
    assert bad["err"].strip() == "govuk-imds: --since takes a span like 2h, 30m or 1d, not 'yesterday'"


def test_audit_with_no_record_says_where_it_looked(user: dict[str, str]) -> None:
    result = _python(RUN_MAIN, user, ("audit", "production"))
    assert result["code"] == 0, result["err"]
    file = Path(user["HOME"]) / ".local" / "state" / "govuk-imds" / "audit.jsonl"
    assert result["out"].strip() == f"no audit records for production in {file}"


@pytest.mark.parametrize("argv", [("accounts",), ("completion", "zsh"), ("prompt", "bash")])
def test_day_one_commands_import_no_sdk_server_or_keyring(user: dict[str, str], argv: tuple[str, ...]) -> None:
    result = _python(RUN_MAIN, user, argv)
    assert result["code"] == 0, result["err"]
    assert result["out"]
    assert _loaded(result["modules"], NOT_FOR_THE_CLI) == []


RUN_ENTRY = """
import contextlib, io, json, sys
from govuk_imds.entry import main
sys.argv = ["govuk-imds", *sys.argv[1:]]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main()
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_completing_a_name_takes_the_lean_path(user: dict[str, str]) -> None:
    """Every TAB on an environment runs this: no SDK, no server, no keyring, and not even the command modules."""
    result = _python(RUN_ENTRY, user, ("__complete", "environments"))
    assert result["code"] == 0
    assert result["out"] == "production\n"
    assert _loaded(result["modules"], NOT_FOR_THE_CLI) == []
    assert "govuk_imds.cli" not in result["modules"]
    assert "argparse" not in result["modules"]
    sources = _python(RUN_ENTRY, user, ("__complete", "source-profiles"))
    assert sources["out"] == "gds\n"


def test_a_reader_that_goes_away_is_not_a_traceback(user: dict[str, str]) -> None:
    """`govuk-imds completion bash | head -1`: the reader is gone before the output is written (here: a pipe whose
    read end is already closed); the command exits as a shell tool would, without a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "govuk_imds", "completion", "bash"], env=user,
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr
    assert result.returncode == 141


@pytest.mark.parametrize("argv", [("shell", "production"), ("exec", "production", "--", "/no/such/command")])
def test_shell_and_exec_load_nothing_heavy_up_to_the_exec(user: dict[str, str], argv: tuple[str, ...]) -> None:
    """Run in this interpreter up to the point where the program would replace it (here: a program that is not
    there, so the interpreter survives to report what it loaded)."""
    result = _python(RUN_MAIN, {**user, "SHELL": "/no/such/shell"}, argv)
    assert result["code"] == 127
    assert "command not found: /no/such/" in result["err"]
    assert _loaded(result["modules"], (*NOT_FOR_THE_CLI, "jeepney")) == []
