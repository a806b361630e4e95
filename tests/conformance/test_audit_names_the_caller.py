"""Who fetched credentials: real clients (the aws CLI, boto3, the JS SDK) fetch through the daemon, and the audit
record names each one's pid and executable, and a client run by ``bash -c`` under ``govuk-imds exec`` shows the
chain back to ``exec``.

The pid each record names is compared with the pid of the process the test started (``Popen.pid``), and the
executable with the file that process really runs (``/proc/<pid>/exe`` resolves symlinks, so the comparison is
with the resolved interpreter).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.world import BIN, World, audit_records, env_json

from .clients import JS, TIMEOUT, aws_command, boto3_command, client_env, guarded, node_command

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="the caller lookup under test is Linux's")


def run_client(command: list[str], environment: dict[str, str]) -> int:
    """Run a client to the end; its pid."""
    process = subprocess.Popen(command, env=guarded(environment), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, f"{command}: {stdout}\n{stderr[-3000:]}"
    return process.pid


def served_to(world: World, pid: int) -> list[dict[str, Any]]:
    found = audit_records(world, lambda record: record["caller"].get("pid") == pid)
    assert found, f"no record names pid {pid}"
    return found


def real(path: str) -> str:
    return os.path.realpath(path)


def test_the_aws_cli_is_named_with_its_pid_and_interpreter(served: World) -> None:
    pid = run_client(aws_command(served.sts.url), client_env(served, "production"))
    [record] = served_to(served, pid)
    assert record["environment"] == "production"
    assert record["result"] == "served"
    assert record["status"] == 200
    assert record["role"] == "arn:aws:iam::410987654321:role/govuk-administrators"
    caller = record["caller"]
    assert caller["name"] == "aws"  # the script, started through its #! line
    assert caller["exe"] == real(str(BIN / "python"))
    assert caller["argv"][1:] == [str(BIN / "aws"), "sts", "get-caller-identity", "--endpoint-url",
                                  served.sts.url, "--output", "json"]
    assert caller["uid"] == os.getuid()
    assert record["user_agent"].startswith("python-urllib3/")  # botocore fetches with a plain urllib3 pool
    assert caller["parents"][0]["pid"] == os.getpid()  # started by this test


def test_boto3_is_named_with_its_pid_and_interpreter(served: World) -> None:
    command = boto3_command(served.sts.url)
    pid = run_client(command, client_env(served, "production"))
    [record] = served_to(served, pid)
    caller = record["caller"]
    assert caller["exe"] == real(command[0])
    assert caller["argv"][1] == command[1]  # the script's absolute path is kept, though it is long
    assert record["user_agent"].startswith("python-urllib3/")
    assert record["result"] == "served"


def test_node_is_named_with_its_pid_and_executable(served: World, js_sdk: Path) -> None:
    command = node_command(served.sts.url)
    node = shutil.which("node")
    assert node is not None
    pid = run_client([node, *command[1:]], client_env(served, "production"))
    [record] = served_to(served, pid)
    caller = record["caller"]
    assert caller["name"] == "node"
    assert caller["exe"] == real(node)
    assert caller["argv"][1] == str(JS / "whoami.mjs")
    assert record["user_agent"] is None  # the JS SDK sends no User-Agent to the endpoint, and the record says so


def test_a_client_run_by_bash_under_exec_shows_the_chain(served: World) -> None:
    # `; true` keeps bash from exec-ing the last command itself, so bash stays in the chain.
    script = f"{BIN / 'aws'} sts get-caller-identity --endpoint-url {served.sts.url} --output json; true"
    environment = {"PATH": served.environment["PATH"], "HOME": str(served.home), "LANG": "C.UTF-8",
                   "GOVUK_IMDS_RUNTIME_DIR": str(served.runtime), "XDG_CONFIG_HOME": str(served.home / ".config")}
    exec_pid = run_client([str(BIN / "govuk-imds"), "exec", "production", "--", "bash", "-c", script], environment)
    [record] = audit_records(served, lambda r: any(p["pid"] == exec_pid for p in r["caller"].get("parents", [])))
    caller = record["caller"]
    assert caller["name"] == "aws"
    shell, *above = caller["parents"]
    # `exec` replaced itself with bash: same pid, bash's executable.
    assert (shell["pid"], shell["name"], shell["exe"]) == (exec_pid, "bash", real(shutil.which("bash") or "bash"))
    assert shell["argv"][:2] == ["bash", "-c"]
    assert above[0]["pid"] == os.getpid()


def test_the_audit_command_prints_each_caller(served: World) -> None:
    pid = run_client(aws_command(served.sts.url), client_env(served, "production"))
    served_to(served, pid)  # written
    table = served.cli("audit", "production", "--since", "10m")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["TIME", "ENVIRONMENT", "RESULT", "PID", "PROGRAM", "CALLED", "FROM", "USER", "AGENT"]
    [row] = [row for row in rows if f" {pid} " in row]
    assert row.split()[1:5] == ["production", "served", str(pid), "aws"]
    listed = json.loads(served.cli("audit", "--json").stdout)
    assert any(record["caller"].get("pid") == pid for record in listed)
    assert json.loads(served.cli("audit", "staging", "--json").stdout) == [] or all(
        record["environment"] == "staging" for record in json.loads(served.cli("audit", "staging", "--json").stdout))


def test_status_shows_the_last_client_of_each_environment(served: World) -> None:
    pid = run_client(aws_command(served.sts.url), client_env(served, "staging"))
    status = served.cli("status")
    assert status.returncode == 0, status.stderr
    assert f"last client of staging: aws (pid {pid}), python-urllib3/" in status.stdout
    rows = {row["environment"]: row for row in json.loads(served.cli("status", "--json").stdout)["environments"]}
    assert rows["staging"]["last_client"]["pid"] == pid
    assert env_json(served, "staging")  # the env command still works after the audit lookups
