"""Sessions that survive real life: STS faults, process signals, restarts, reloads, concurrent unlocks.

Role lifetimes are shortened by the STS proxy (16 min 6 s against a 16 min margin) so that renewals happen every
few seconds; every wait is bounded and polls for the state it needs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

from tests.support.world import BIN, World, aws_whoami, env_json, status_rows, wait_for


def raw_get(world: World, name: str) -> tuple[int, dict[str, str]]:
    token = world.token(name)
    with socket.create_connection(("127.0.0.1", world.port), timeout=5) as connection:
        connection.sendall(f"GET /v1/credentials/{name} HTTP/1.1\r\nHost: 127.0.0.1:{world.port}\r\n"
                           f"Authorization: {token}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_sts_outage_keeps_serving_valid_credentials_and_shows_degraded_then_recovers(fast_rotation: World) -> None:
    world = fast_rotation
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    world.sts.fail_next("AssumeRole", "503", count=1000)
    wait_for(lambda: status_rows(world)["production"]["state"] == "degraded", 20, "degraded")
    row = status_rows(world)["production"]
    assert "ServiceUnavailable" in str(row["problem"])
    assert "production: " in world.cli("status").stdout  # the reason is shown to people too
    served = aws_whoami(world, "production")
    assert served.returncode == 0, served.stderr
    world.sts.clear_faults()
    wait_for(lambda: status_rows(world)["production"]["state"] == "active", 20, "recovery")
    assert status_rows(world)["production"]["problem"] is None


def test_sts_refusing_the_session_locks_at_once_and_stops_calling(fast_rotation: World) -> None:
    world = fast_rotation
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    before = world.sts.count("AssumeRole")
    world.sts.fail_next("AssumeRole", "expired_token", count=100)
    wait_for(lambda: status_rows(world)["production"]["state"] == "locked", 20, "locked")
    assert "ExpiredToken" in str(status_rows(world)["production"]["problem"])
    time.sleep(1.5)  # long enough for a retry, if there were one
    assert world.sts.count("AssumeRole") == before + 1
    status, body = raw_get(world, "production")
    assert status == 423
    assert "govuk-imds unlock production" in body["message"]


def test_nothing_valid_and_sts_down_is_a_503_with_a_json_reason(world: World) -> None:
    world.sts.role_lifetime = 15 * 60 + 1  # servable for one second only
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    world.sts.fail_next("AssumeRole", "503", count=1000)
    wait_for(lambda: raw_get(world, "production")[0] == 503, 10, "a 503")
    status, body = raw_get(world, "production")
    assert status == 503
    assert body["code"] == "CredentialsUnavailable"
    assert "retrying automatically" in body["message"]


def test_sigterm_stops_cleanly_and_removes_the_socket_and_state_file(world: World) -> None:
    daemon = subprocess.Popen([str(BIN / "govuk-imds"), "serve"], env=world.environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for((world.runtime / "state.json").exists, 10, "the daemon")
        assert world.cli("status").returncode == 0
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert not (world.runtime / "control.sock").exists()
    assert not (world.runtime / "state.json").exists()
    assert (world.runtime / "tokens" / "production").exists()


def test_sigkill_during_assume_role_then_start_again_cleans_up_with_new_tokens(world: World) -> None:
    world.add_key()
    world.start()
    tokens = {name: world.token(name) for name in ("production", "staging")}
    pid = world.daemon_pid()
    assert pid is not None
    world.sts.fail_next("AssumeRole", "slow", delay=3)
    unlocking = subprocess.Popen([str(BIN / "govuk-imds"), "unlock", "production", "--code", world.code()],
                                 env=world.environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = world.sts.count("AssumeRole")
    wait_for(lambda: world.sts.count("AssumeRole") > before, 10, "the AssumeRole call")
    os.kill(pid, signal.SIGKILL)
    _, error = unlocking.communicate(timeout=20)
    assert unlocking.returncode != 0
    assert "Traceback" not in error
    assert len(error.strip().splitlines()) == 1
    assert (world.runtime / "control.sock").exists()  # stale
    world.start()
    assert world.daemon_pid() != pid
    # Nothing held the port while no daemon ran, so the old tokens are not trusted (SECURITY.md).
    assert all(world.token(name) != token for name, token in tokens.items())
    assert status_rows(world)["production"]["state"] == "locked"
    assert world.unlock("production").returncode == 0


def test_reload_and_sighup_pick_up_new_environments_without_dropping_unlocked_ones(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    config = world.aws_config_file.read_text()
    world.aws_config_file.write_text(config + textwrap.dedent(f"""
        [profile govuk-sandbox]
        role_arn = arn:aws:iam::510987654321:role/govuk-administrators
        mfa_serial = {world.mfa_serial}
        source_profile = gds
        """))
    reloaded = world.cli("reload")
    assert reloaded.returncode == 0, reloaded.stderr
    assert "sandbox" in reloaded.stdout
    rows = status_rows(world)
    assert rows["sandbox"]["state"] == "locked"
    assert rows["production"]["state"] == "active"
    assert (world.runtime / "tokens" / "sandbox").exists()

    world.aws_config_file.write_text(world.aws_config_file.read_text().replace("govuk-sandbox", "govuk-dev"))
    pid = world.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: "dev" in status_rows(world), 10, "the SIGHUP reload")
    assert status_rows(world)["production"]["state"] == "active"
    assert aws_whoami(world, "production").returncode == 0


def test_a_broken_config_on_reload_keeps_the_previous_one(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("staging").returncode == 0
    world.aws_config_file.write_text("[profile govuk-x\nnonsense")
    reloaded = world.cli("reload")
    assert reloaded.returncode != 0
    assert str(world.aws_config_file) in reloaded.stderr
    assert status_rows(world)["staging"]["state"] == "active"


def test_two_concurrent_unlocks_of_one_environment_make_one_get_session_token(world: World) -> None:
    world.add_key()
    world.start()
    before = world.sts.count("GetSessionToken")
    code = world.code()
    results: list[subprocess.CompletedProcess[str]] = []

    def unlock() -> None:
        results.append(world.cli("unlock", "production", "--code", code))

    threads = [threading.Thread(target=unlock) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [result.returncode for result in results] == [0, 0], [result.stderr for result in results]
    assert world.sts.count("GetSessionToken") == before + 1
    # The one that waited found the MFA session the other had just made, and used it.
    assert any("the code given with --code was not needed and was not used" in result.stdout for result in results)


LONG_RUNNING_CLIENT = textwrap.dedent(
    """
    import sys, time, boto3
    client = boto3.client("sts", endpoint_url=sys.argv[1])
    deadline, calls, errors = time.monotonic() + float(sys.argv[2]), 0, []
    while time.monotonic() < deadline:
        for attempt in (client, boto3.session.Session().client("sts", endpoint_url=sys.argv[1])):
            try:
                attempt.get_caller_identity()
                calls += 1
            except Exception as exc:
                errors.append(repr(exc))
        time.sleep(0.2)
    print(calls, len(errors), errors[:3])
    """
)


def test_long_running_clients_see_no_error_across_rotations_with_faults_between(fast_rotation: World) -> None:
    world = fast_rotation
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    environment = world.client_environment("production", env_json(world, "production"))
    before = world.sts.count("AssumeRole")
    boto3_client = subprocess.Popen([sys.executable, "-c", LONG_RUNNING_CLIENT, world.sts.url, "22"],
                                    env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cli_failures = []
    deadline = time.monotonic() + 20
    faults = iter(["503", "throttle", "drop", "garbage"])
    while time.monotonic() < deadline:
        kind = next(faults, None)
        if kind is not None:
            world.sts.fail_next("AssumeRole", kind)  # type: ignore[arg-type]
        answer = aws_whoami(world, "production")
        if answer.returncode != 0:
            cli_failures.append(answer.stderr)
        time.sleep(1)
    output, errors = boto3_client.communicate(timeout=60)
    calls, failures = output.split()[:2]
    assert boto3_client.returncode == 0, errors
    assert int(calls) > 50
    assert failures == "0", output
    assert cli_failures == []
    assert world.sts.count("AssumeRole") - before >= 3


def test_status_warns_when_the_mfa_session_is_about_to_end(world: World) -> None:
    world.config_file.write_text(world.config_file.read_text().replace("port =", 'session_duration = "15m"\nport ='))
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    table = world.cli("status")
    assert table.returncode == 0
    assert "warning: the session of production ends at" in table.stdout
    assert "govuk-imds unlock production" in table.stdout
    assert status_rows(world)["production"]["ending_soon"] is True


def test_sigterm_lets_a_request_in_flight_finish_with_a_full_answer(world: World) -> None:
    """A request waiting for a renewal when SIGTERM arrives still gets its answer before the daemon exits."""
    world.sts.role_lifetime = 15 * 60 + 1  # servable for a second, then a renewal is needed
    world.add_key()
    daemon = subprocess.Popen([str(BIN / "govuk-imds"), "serve"], env=world.environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for((world.runtime / "state.json").exists, 10, "the daemon")
        assert world.unlock("production").returncode == 0
        world.sts.fail_next("AssumeRole", "slow", delay=4)
        before = world.sts.count("AssumeRole")
        wait_for(lambda: world.sts.count("AssumeRole") > before, 15, "the renewal to start")
        answers: list[int] = []
        request = threading.Thread(target=lambda: answers.append(raw_get(world, "production")[0]))
        request.start()
        time.sleep(0.2)  # the request is now waiting on the renewal inside the daemon
        daemon.send_signal(signal.SIGTERM)
        request.join(10)
        assert answers == [503]  # a complete HTTP answer, not a reset connection
        assert daemon.wait(15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()


def test_a_daemon_killed_with_sigkill_is_not_taken_for_a_running_one(world: World) -> None:
    """Its socket and state files stay behind ("unlocked"): `env` and `exec` must still say it is not running."""
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    pid = world.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: world.cli("status").returncode != 0, 10, "the daemon to go")
    assert (world.runtime / "control.sock").exists()
    assert (world.runtime / "state" / "production").read_text().startswith("unlocked ")  # stale
    not_running = "govuk-imds: the daemon is not running; run `govuk-imds start`"
    printed = world.cli("env", "production")
    assert printed.returncode == 0
    assert printed.stderr.startswith(not_running), printed.stderr
    ran = world.cli("exec", "production", "--", "echo", "ran", input="")
    assert (ran.returncode, ran.stdout) == (0, "ran\n")
    assert ran.stderr.startswith(not_running), ran.stderr
