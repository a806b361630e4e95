"""Guard-rails per environment, end to end: ``deny_callers`` refuses real processes named like package managers (and
everything they run) through the real daemon, and lets others through; ``confirm`` asks on a real
pseudo-terminal, takes ``--yes`` from scripts, and refuses clearly with no terminal.

The stand-in package managers are scripts named ``npm`` and ``terraform`` that run a "package script" through
``sh -c``, as ``npm run`` does, started through a real shell. Real npm is used too when it is installed (it is in
CI: .ci/run). The client is a one-shot Python program that exits as soon as it has its answer: the caller must be
looked up before the answer goes, or it is gone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_prompts import run_in_terminal
from tests.support.world import BIN, World, audit_records, env_json, one_line, require

DENY = '["npm", "npx", "yarn", "pnpm", "pip", "uv", "poetry", "gem", "bundle", "cargo", "go"]'
FETCH = """
import json, os, urllib.error, urllib.request
token = open(os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read()
request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"], headers={"Authorization": token})
try:
    with urllib.request.urlopen(request, timeout=5) as answer:
        status, body = answer.status, json.loads(answer.read())
except urllib.error.HTTPError as refused:
    status, body = refused.code, json.loads(refused.read())
print(json.dumps({"status": status, "pid": os.getpid(), "code": body.get("code"), "message": body.get("message"),
                  "has_key": "AccessKeyId" in body}))
"""
# Stands in for a package manager: runs its "package script" through sh -c, as `npm run` does (not exec: it stays).
PACKAGE_MANAGER = '#!/bin/bash\nsh -c "$1"\nexit $?\n'


def setting(world: World, lines: str) -> None:
    world.config_file.write_text(world.config_file.read_text() + lines)


@pytest.fixture
def guarded(world: World, tmp_path: Path) -> World:
    setting(world, f"\n[environments.production]\ndeny_callers = {DENY}\n")
    world.add_key()
    world.start()
    unlocked = world.unlock("production", "staging")
    assert unlocked.returncode == 0, unlocked.stderr
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("npm", "terraform"):
        (tools / name).write_text(PACKAGE_MANAGER)
        (tools / name).chmod(0o755)
    (tools / "fetch.py").write_text(FETCH)
    return world


def in_shell(world: World, name: str, script: str, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``script`` with bash in a shell that ran `eval "$(govuk-imds env NAME)"`; the client's JSON line."""
    environment = world.client_environment(name, env_json(world, name))
    tools = world.home.parent / "tools"
    environment["PATH"] = f"{tools}:{environment['PATH']}"
    environment["FETCH"] = f"{sys.executable} {tools / 'fetch.py'}"
    done = subprocess.run(["bash", "-c", script], env=environment, capture_output=True, text=True, timeout=60,
                          check=False, cwd=cwd)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no answer: {done.stdout}\n{done.stderr}"
    return dict(json.loads(lines[-1]))


def record_of(world: World, pid: int) -> dict[str, Any]:
    [record] = audit_records(world, lambda record: record["caller"].get("pid") == pid)
    return record


def test_a_process_run_by_npm_is_refused_naming_npm_and_the_setting(guarded: World) -> None:
    answer = in_shell(guarded, "production", 'npm "$FETCH"')
    assert answer["status"] == 403
    assert answer["code"] == "CallerRefused"
    assert not answer["has_key"]
    assert "refused to programs run by npm (an ancestor of the caller" in answer["message"]
    assert f"'npm' is in deny_callers in [environments.production] of {guarded.config_file}" in answer["message"]
    record = record_of(guarded, answer["pid"])
    assert (record["status"], record["result"], record["reason"]) == (403, "refused", answer["message"])
    assert [parent["name"] for parent in record["caller"]["parents"][:2]] == ["sh", "npm"]


def test_the_children_of_npms_children_are_refused_too(guarded: World) -> None:
    answer = in_shell(guarded, "production", """npm 'bash -c "sh -c \\"$FETCH\\"; true"'""")
    assert answer["status"] == 403
    names = [parent["name"] for parent in record_of(guarded, answer["pid"])["caller"]["parents"]]
    assert names[:4] == ["sh", "bash", "sh", "npm"], names


def test_a_process_that_calls_itself_npm_install_is_refused(guarded: World) -> None:
    # npm renames itself: its argv[0] becomes "npm install" while its executable stays node
    fetch = guarded.home.parent / "tools" / "fetch.py"
    answer = in_shell(guarded, "production", f'exec -a "npm install" {sys.executable} {fetch}')
    assert answer["status"] == 403
    assert "(the calling process, pid" in answer["message"]


def test_terraform_and_a_plain_shell_are_served(guarded: World) -> None:
    for script in ('terraform "$FETCH"', '$FETCH'):
        answer = in_shell(guarded, "production", script)
        assert (answer["status"], answer["has_key"]) == (200, True), script
        assert record_of(guarded, answer["pid"])["result"] == "served"


def test_an_environment_without_the_setting_serves_npm(guarded: World) -> None:
    answer = in_shell(guarded, "staging", 'npm "$FETCH"')
    assert (answer["status"], answer["has_key"]) == (200, True)


def test_the_aws_cli_under_npm_shows_the_refusal(guarded: World) -> None:
    environment = guarded.client_environment("production", env_json(guarded, "production"))
    environment["PATH"] = f"{guarded.home.parent / 'tools'}:{environment['PATH']}"
    aws = f"{BIN / 'aws'} sts get-caller-identity --endpoint-url {guarded.sts.url}"
    done = subprocess.run(["bash", "-c", f'npm "{aws}"'], env=environment, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert "deny_callers" in done.stderr


def test_real_npm_running_a_package_script_is_refused(guarded: World, tmp_path: Path) -> None:
    npm = shutil.which("npm")
    require(npm is not None, "npm (Debian/Ubuntu: apt-get install npm)")
    package = tmp_path / "package"
    package.mkdir()
    fetch = guarded.home.parent / "tools" / "fetch.py"
    (package / "package.json").write_text(json.dumps(
        {"name": "demo", "version": "1.0.0", "scripts": {"fetch": f"{sys.executable} {fetch}"}}))
    answer = in_shell(guarded, "production", f"{npm} run --silent fetch", cwd=package)
    assert answer["status"] == 403
    parents = record_of(guarded, answer["pid"])["caller"]["parents"]
    assert any(parent["name"].split(" ")[0] == "npm" or parent["argv"][:1] == ["npm run fetch"]
               for parent in parents), parents


# -- confirm ----------------------------------------------------------------------------------------------------


@pytest.fixture
def confirming(world: World) -> World:
    setting(world, "\n[environments.production]\nconfirm = true\n")
    return world


def test_exec_asks_on_the_terminal_with_the_name_in_red_and_runs_on_yes(confirming: World, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code, screen = run_in_terminal(confirming, ["exec", "production", "--", "touch", str(marker)],
                                   [("[y/N]", "y")])
    assert code == 0, screen
    assert f"Run `touch {marker}` with \x1b[1;31mproduction\x1b[0m credentials? [y/N]" in screen
    assert marker.exists()


def test_exec_runs_nothing_on_no(confirming: World, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code, screen = run_in_terminal(confirming, ["exec", "production", "--", "touch", str(marker)], [("[y/N]", "n")])
    assert code == 11, screen
    assert "not confirmed; nothing was run with production's credentials" in screen
    assert not marker.exists()


def test_exec_yes_runs_without_asking_in_either_place(confirming: World, tmp_path: Path) -> None:
    for number, argv in enumerate((["exec", "--yes", "production", "--"], ["exec", "production", "--yes", "--"])):
        marker = tmp_path / f"ran{number}"
        code, screen = run_in_terminal(confirming, [*argv, "touch", str(marker)], [])
        assert code == 0, screen
        assert "[y/N]" not in screen
        assert marker.exists()


def without_a_terminal(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a new session: no controlling terminal, even when the test suite runs in one."""
    return subprocess.run([str(BIN / "govuk-imds"), *args], env=world.environment, capture_output=True, text=True,
                          timeout=30, start_new_session=True, stdin=subprocess.DEVNULL, check=False)


def test_without_a_terminal_exec_refuses_in_one_line_naming_yes(confirming: World, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    refused = without_a_terminal(confirming, "exec", "production", "--", "touch", str(marker))
    assert refused.returncode == 11
    assert "there is no terminal to ask on; add --yes" in one_line(refused)
    assert "confirm = true in [environments.production]" in refused.stderr
    assert not marker.exists()


def test_an_environment_without_confirm_does_not_ask(confirming: World, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = confirming.cli("exec", "staging", "--", "touch", str(marker))
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def test_no_color_keeps_the_question_plain(confirming: World, tmp_path: Path) -> None:
    confirming.environment["NO_COLOR"] = "1"
    code, screen = run_in_terminal(confirming, ["exec", "production", "--", "true"], [("[y/N]", "y")])
    assert code == 0, screen
    assert "Run `true` with production credentials? [y/N]" in screen


def test_console_asks_before_minting_anything(confirming: World) -> None:
    confirming.add_key()
    confirming.start()
    assert confirming.unlock("production").returncode == 0
    minted = confirming.sts.count("AssumeRole")
    confirming.environment["BROWSER"] = "true"  # a browser to open: the question comes before it
    code, screen = run_in_terminal(confirming, ["console", "production"], [("[y/N]", "n")])
    assert code == 11, screen
    assert "Open the AWS console as \x1b[1;31mproduction\x1b[0m? [y/N]" in screen
    refused = without_a_terminal(confirming, "console", "production", "--print")
    assert refused.returncode == 11
    assert "add --yes" in one_line(refused)
    assert confirming.sts.count("AssumeRole") == minted


def test_shell_asks_too_and_starts_no_shell_on_no(confirming: World, tmp_path: Path) -> None:
    marker = tmp_path / "shell-ran"
    shell = tmp_path / "myshell"
    shell.write_text(f"#!/bin/sh\ntouch {marker}\n")
    shell.chmod(0o755)
    confirming.environment["SHELL"] = str(shell)
    code, screen = run_in_terminal(confirming, ["shell", "production"], [("[y/N]", "n")])
    assert code == 11, screen
    assert "Start a shell with \x1b[1;31mproduction\x1b[0m credentials? [y/N]" in screen
    assert not marker.exists()
    refused = without_a_terminal(confirming, "shell", "production")
    assert refused.returncode == 11
    assert "add --yes" in one_line(refused)
    assert not marker.exists()
    code, screen = run_in_terminal(confirming, ["shell", "production", "--yes"], [])
    assert code == 0, screen
    assert "[y/N]" not in screen
    assert marker.exists()


def test_a_locked_environment_asks_before_any_code_is_spent(confirming: World, tmp_path: Path) -> None:
    confirming.add_key()
    confirming.start()
    spent = confirming.sts.count("GetSessionToken")  # the emulator serves the whole session
    marker = tmp_path / "ran"
    code, screen = run_in_terminal(confirming, ["exec", "production", "--", "touch", str(marker)], [("[y/N]", "n")])
    assert code == 11, screen
    assert "MFA code" not in screen  # the on-demand unlock never started
    assert confirming.sts.count("GetSessionToken") == spent
    assert not marker.exists()
