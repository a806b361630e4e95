"""Hostile files and messages get one line, never a traceback, a hang or a stall, and the daemon keeps serving.

Each case is a file or a message someone could plant or send: durations that overflow or run to 5,000 digits, a
region that is not one, a runtime dir that is a plain file or too long for a socket path, a FIFO or /dev/zero as a
config file, an AWS config of 100,000 profiles, a planted log symlink, malformed control messages, and requests
aiohttp's own parser rejects.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.world import ACCOUNTS, SECOND_ROLES, World, aws_config, aws_whoami, wait_for

#: A hostile file must not hang a command: each one must be done well within this.
NO_HANG_SECONDS = 20


def one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("govuk-imds: ")
    assert len(line) < 400, line  # never the hostile value echoed in full
    for text in expected:
        assert text in line, line
    return line


def still_serving(world: World) -> None:
    answer = aws_whoami(world, "production")
    assert answer.returncode == 0, answer.stderr + world.log()
    assert "Traceback" not in world.log()


@pytest.fixture
def running(world: World) -> World:
    """A daemon serving production."""
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    return world


# -- durations and numbers ----------------------------------------------------------------------------------------

FIVE_THOUSAND_DIGITS = "9" * 5000


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ('rotation_margin = "99999999999999999999h"', "rotation_margin"),
        (f'rotation_margin = "{FIVE_THOUSAND_DIGITS}s"', "rotation_margin"),
        ("rotation_margin = 9223372036854775807", "rotation_margin"),
        (f'session_duration = "{FIVE_THOUSAND_DIGITS}m"', "session_duration"),
        ('[environments.production]\nsession_duration = "99999999999h"', "environments.production.session_duration"),
        (f"rotation_margin = {FIVE_THOUSAND_DIGITS}", "not usable TOML"),
        (f"port = {FIVE_THOUSAND_DIGITS}", "not usable TOML"),
    ],
)
def test_durations_and_numbers_that_overflow_or_run_to_5000_digits(running: World, setting: str,
                                                                     named: str) -> None:
    original = running.config_file.read_text()
    # Top-level keys go before the file's [sts] table; a table goes after it.
    running.config_file.write_text(original + setting + "\n" if setting.startswith("[") else setting + "\n" + original)
    for argv in (["status"], ["env", "production"], ["unlock", "staging", "--code", "123456"]):
        one_line(running.cli(*argv, timeout=NO_HANG_SECONDS), str(running.config_file), named)
    running.config_file.write_text(original)
    still_serving(running)


def test_a_role_duration_of_5000_digits_and_a_port_variable_of_5000_digits(running: World) -> None:
    config = running.aws_config_file.read_text()
    running.aws_config_file.write_text(config.replace("[profile govuk-staging]\n", "[profile govuk-staging]\n"
                                                      f"duration_seconds = {FIVE_THOUSAND_DIGITS}\n"))
    one_line(running.cli("env", "staging"), "[profile govuk-staging]", "duration_seconds")
    reloaded = running.cli("reload")
    assert reloaded.returncode == 0, reloaded.stderr  # staging is unusable; the others are reloaded
    assert "staging is unusable" in running.log()
    variable = dict(running.environment, GOVUK_IMDS_PORT=FIVE_THOUSAND_DIGITS)
    one_line(running.cli("status", env=variable), "$GOVUK_IMDS_PORT")
    still_serving(running)


# -- regions ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("region", ["eu west 1", "eu-west-1/../../evil", "-eu-west-1", "x" * 70])
def test_an_invalid_region_at_unlock_is_one_line_before_any_sts_call(running: World, region: str) -> None:
    text = running.aws_config_file.read_text()
    staging = text.index("[profile govuk-staging]")
    section_end = text.index("[profile", staging + 1)
    section = text[staging:section_end].replace("region = eu-west-1", f"region = {region}")
    running.aws_config_file.write_text(text[:staging] + section + text[section_end:])
    before = running.sts.count("GetSessionToken")
    one_line(running.cli("unlock", "staging", "--code", running.code()), "[profile govuk-staging]", "region")
    assert running.sts.count("GetSessionToken") == before
    still_serving(running)


def test_an_invalid_sts_region_in_our_config_is_one_line(running: World) -> None:
    original = running.config_file.read_text()
    running.config_file.write_text(original.replace('region = "eu-west-1"', 'region = "eu west 1"'))
    one_line(running.cli("unlock", "staging", "--code", running.code()), str(running.config_file), "sts.region")
    running.config_file.write_text(original)
    still_serving(running)


# -- the runtime dir ----------------------------------------------------------------------------------------------

COMMANDS = [["start"], ["status"], ["env", "production"], ["credential-process", "production"],
            ["unlock", "production", "--code", "123456"], ["lock", "--all"], ["stop"], ["reload"]]


def test_a_runtime_dir_that_is_a_plain_file(world: World, tmp_path: Path) -> None:
    world.add_key()
    plain = tmp_path / "plain-file"
    plain.write_text("not a directory")
    for runtime in (plain, plain / "govuk-imds"):
        environment = dict(world.environment, GOVUK_IMDS_RUNTIME_DIR=str(runtime))
        for argv in COMMANDS:
            one_line(world.cli(*argv, env=environment, timeout=NO_HANG_SECONDS), str(runtime))
    assert plain.read_text() == "not a directory"


def test_a_runtime_dir_too_long_for_a_socket_path(world: World, tmp_path: Path) -> None:
    long_dir = tmp_path / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True, mode=0o700)
    long_dir.chmod(0o700)
    environment = dict(world.environment, GOVUK_IMDS_RUNTIME_DIR=str(long_dir))
    for argv in (["start"], ["status"], ["unlock", "production", "--code", "123456"], ["stop"]):
        one_line(world.cli(*argv, env=environment, timeout=NO_HANG_SECONDS), "too long for a Unix socket",
                 "GOVUK_IMDS_RUNTIME_DIR")


def test_a_planted_log_symlink_or_fifo_is_refused_by_start(world: World, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("")
    log = world.runtime / "daemon.log"
    log.symlink_to(target)
    one_line(world.cli("start", timeout=NO_HANG_SECONDS), f"{log} is a symlink")
    assert target.read_text() == ""
    log.unlink()
    os.mkfifo(log, 0o600)
    one_line(world.cli("start", timeout=NO_HANG_SECONDS), str(log))
    log.unlink()
    world.start()  # with the plant removed, it starts


# -- config files that are not files ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_a_fifo_or_dev_zero_as_a_config_file(running: World, tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        hostile = tmp_path / "hostile"
        os.mkfifo(hostile)
    else:
        hostile = Path("/dev/zero")
    as_settings = dict(running.environment, GOVUK_IMDS_CONFIG=str(hostile))
    one_line(running.cli("status", env=as_settings, timeout=NO_HANG_SECONDS), str(hostile), "not a regular file")
    as_aws_config = dict(running.environment, AWS_CONFIG_FILE=str(hostile))
    for argv in (["env", "production"], ["unlock", "production", "--code", "123456"], ["lock", "production"]):
        one_line(running.cli(*argv, env=as_aws_config, timeout=NO_HANG_SECONDS), str(hostile), "not a regular file")
    # The daemon's own AWS config replaced by one: the reload is refused, the daemon keeps what it had.
    original = running.aws_config_file.read_text()
    running.aws_config_file.unlink()
    if kind == "fifo":
        os.mkfifo(running.aws_config_file)
    else:
        running.aws_config_file.symlink_to("/dev/zero")
    one_line(running.cli("reload", timeout=NO_HANG_SECONDS), "not a regular file")
    running.aws_config_file.unlink()
    running.aws_config_file.write_text(original)
    still_serving(running)


# -- an AWS config of 100,000 profiles ----------------------------------------------------------------------------

def huge_config(world: World, profiles: int, prefix: str) -> str:
    lines = [aws_config(ACCOUNTS, world.mfa_serial)]
    for index in range(profiles):
        lines.append(f"[profile {prefix}{index}]\nregion = eu-west-2\nrole_arn = arn:aws:iam::123456789012:role/"
                     f"r{index}\nmfa_serial = {world.mfa_serial}\nsource_profile = gds\n")
    return "\n".join(lines)


def test_an_aws_config_of_100000_profiles_neither_stalls_the_daemon_nor_slows_env(running: World) -> None:
    running.aws_config_file.write_text(huge_config(running, 100_000, "someone-elses-"))
    began = time.monotonic()
    env = running.cli("env", "production")
    env_seconds = time.monotonic() - began
    assert env.returncode == 0, env.stderr
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" in env.stdout
    # While the daemon re-reads it, requests keep being answered at once.
    token = running.token("production")
    latencies: list[float] = []
    reloaded: list[subprocess.CompletedProcess[str]] = []
    reload_began = time.monotonic()
    reloader = threading.Thread(target=lambda: reloaded.append(running.cli("reload", timeout=300)))
    reloader.start()
    while reloader.is_alive() or not latencies:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as connection:
            connection.sendall(f"GET /v1/credentials/production HTTP/1.1\r\nHost: 127.0.0.1:{running.port}\r\n"
                               f"Authorization: {token}\r\nConnection: close\r\n\r\n".encode())
            assert connection.recv(20).startswith(b"HTTP/1.1 200")
        latencies.append(time.monotonic() - started)
        time.sleep(0.02)
    reloader.join()
    reload_seconds = time.monotonic() - reload_began
    assert reloaded[0].returncode == 0, reloaded[0].stderr
    print(f"\n100,000 profiles: env {env_seconds:.2f} s; reload {reload_seconds:.2f} s, {len(latencies)} requests "
          f"meanwhile, slowest {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 1.0  # main: every request waited 4-9 s while the event loop parsed
    assert reload_seconds < 5.0
    assert env_seconds < 3.0  # main: 9.5-24 s


def test_an_aws_config_defining_thousands_of_environments_is_refused_as_a_whole(running: World) -> None:
    running.aws_config_file.write_text(huge_config(running, 2_000, "govuk-many-"))
    ours = len(ACCOUNTS) + len(SECOND_ROLES)  # the test world's own environments, kept in the huge file
    one_line(running.cli("reload"), f"defines {2000 + ours} environments", "at most 1000")
    assert len(list((running.runtime / "tokens").iterdir())) == ours  # no token file for any of the others
    assert running.cli("env", "production").returncode == 0  # one environment is still found at once
    still_serving(running)


# -- control messages ---------------------------------------------------------------------------------------------

def control(world: World, line: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(10)
        connection.connect(str(world.runtime / "control.sock"))
        connection.sendall(line)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def madeup_unlock(world: World, **changes: object) -> bytes:
    spec = {"name": "madeup", "profile": "govuk-madeup", "role_arn": "arn:aws:iam::123456789012:role/x",
            "mfa_serial": world.mfa_serial, "source_profile": "gds", "region": "eu-west-1",
            "role_duration_seconds": 3600, "role_session_name": "someone"}
    session = {"AccessKeyId": "ASIAMADEUPMADEUPMADE", "SecretAccessKey": "s" * 40, "SessionToken": "t" * 100,
               "Expiration": "2099-01-01T00:00:00Z"}
    message: dict[str, object] = {"op": "unlock", "environments": [spec], "session": session,
                                  "ends_at": {"madeup": "2099-01-01T00:00:00Z"}}
    message.update(changes)
    return json.dumps(message).encode() + b"\n"


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b"[1, 2, 3]\n",
        b'{"op": 5}\n',
        b'{"op": "lock", "environments": "production"}\n',
        b'{"op": "lock", "environments": [null, {"a": 1}]}\n',
        b'{"op": "lock", "environments": 7}\n',
        b'{"op": "unlock"}\n',
        b'{"op": "unlock", "session": [], "environments": [], "ends_at": []}\n',
        b"\xff\xfe\n",
        b'{"op": "status"' + b" " * 300_000 + b"}\n",
    ],
)
def test_malformed_control_messages_get_an_error_and_change_nothing(running: World, line: bytes) -> None:
    answer = control(running, line)
    if answer:  # an oversized line is hung up on
        document = json.loads(answer)
        assert document["ok"] is False
        assert document["error"]["message"]
    assert "Traceback" not in running.log()
    assert running.cli("status").returncode == 0
    still_serving(running)


@pytest.mark.parametrize(
    "changes",
    [
        {"ends_at": {}},
        {"ends_at": {"madeup": "not a time"}},
        {"ends_at": {"madeup": "9999-12-31T23:59:59-23:59"}},
        {"ends_at": "2099-01-01T00:00:00Z"},
        {"session": {"AccessKeyId": "x"}},
        {"environments": [{"name": "madeup"}]},
        {"environments": "madeup"},
    ],
    ids=["no end", "end not a time", "end out of range", "ends not a table", "half a session", "half a spec",
         "environments not a list"],
)
def test_a_rejected_unlock_for_a_made_up_environment_leaves_no_token_file(running: World,
                                                                          changes: dict[str, object]) -> None:
    document = json.loads(control(running, madeup_unlock(running, **changes)))
    assert document["ok"] is False
    assert not (running.runtime / "tokens" / "madeup").exists()
    assert "madeup" not in running.cli("status").stdout
    assert "Traceback" not in running.log()
    still_serving(running)


# -- requests aiohttp's parser rejects ----------------------------------------------------------------------------

def test_requests_the_parser_rejects_are_counted_in_the_summary_not_logged_each(running: World) -> None:
    port = running.port
    rejected = [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                f"GET /v1/credentials/production HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil\r\n\r\n".encode(),
                b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n"]
    for request in rejected * 25:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(request)
            assert connection.recv(100).startswith(b"HTTP/1.")
    assert running.cli("stop").returncode == 0
    wait_for(lambda: "refused" in running.log(), 10, "the refusal summary")
    log = running.log()
    summary = [line for line in log.splitlines() if "refused" in line]
    assert len(summary) == 1, summary
    assert "MalformedRequest 100" in summary[0]
    assert "Traceback" not in log
