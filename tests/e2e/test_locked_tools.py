"""Tools without a terminal (an IDE, pyarrow, a Rust tool) asking for a locked environment: they get the immediate
423, and the daemon tells the person at the screen, over a real D-Bus session bus to a stand-in notification server
(tests/support/notifications.py), at most once per environment per few minutes; with ``prompt = "gui"`` it starts
``govuk-imds unlock ENV --prompt gui`` (a stand-in zenity, or mfa_process's stand-in ykman), so the next retry gets
credentials. No bus, no server, a server that never answers: the daemon serves on."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_codes import in_config_toml, with_mfa_process
from tests.support.authenticator import Authenticator
from tests.support.notifications import NotificationServer, notification_server
from tests.support.world import World, status_rows, wait_for

AWS_CLI = "aws-cli/1.32.0 Python/3.11.7 Linux/6.1 botocore/1.34.0"


def ask(world: World, name: str, user_agent: str = AWS_CLI, timeout: float = 1.0) -> int:
    """One request as an SDK sends it, with the 1 s timeout SDKs use: the status it got."""
    connection = http.client.HTTPConnection("127.0.0.1", world.port, timeout=timeout)
    try:
        connection.request("GET", f"/v1/credentials/{name}",
                           headers={"Authorization": world.token(name), "User-Agent": user_agent})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def flood(world: World, names: list[str], count: int) -> list[int]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda index: ask(world, names[index % len(names)]), range(count)))


@pytest.fixture
def desktop(world: World, tmp_path: Path) -> Iterator[NotificationServer]:
    """A notification server on the world's own session bus (private, with no service activation)."""
    with notification_server(world.environment["DBUS_SESSION_BUS_ADDRESS"], tmp_path / "notified") as server:
        yield server


def test_a_flood_of_refused_requests_is_one_notification_per_environment(world: World,
                                                                        desktop: NotificationServer) -> None:
    world.add_key()
    world.start()

    answers = flood(world, ["production", "staging"], 400)

    assert set(answers) == {423}  # every request answered at once, none waited for the desktop
    wait_for(lambda: len(desktop.received()) >= 2, 10, "two notifications")
    # A request for a third environment, after the flood: its notification comes after any the flood could cause.
    assert ask(world, "integration", "Boto3/1.34.0") == 423
    wait_for(lambda: len(desktop.received()) >= 3, 10, "the third notification")
    assert flood(world, ["production", "staging", "integration"], 60) == [423] * 60
    assert ask(world, "integration") == 423
    notified = {item["summary"]: item["body"] for item in desktop.received()}
    assert len(desktop.received()) == 3
    assert notified == {
        "govuk-imds: production is locked": "aws-cli/1.32.0 was refused production's credentials. Unlock it in a "
                                            "terminal: govuk-imds unlock production",
        "govuk-imds: staging is locked": "aws-cli/1.32.0 was refused staging's credentials. Unlock it in a "
                                         "terminal: govuk-imds unlock staging",
        "govuk-imds: integration is locked": "Boto3/1.34.0 was refused integration's credentials. Unlock it in a "
                                             "terminal: govuk-imds unlock integration",
    }
    assert {item["app"] for item in desktop.received()} == {"govuk-imds"}


def daemon_environment(world: World, **changes: str | None) -> dict[str, str]:
    environment = dict(world.environment)
    for name, value in changes.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def start_with(world: World, environment: dict[str, str]) -> None:
    started = world.cli("start", env=environment)
    assert started.returncode == 0, started.stderr + world.log()


def test_with_no_session_bus_at_all_the_daemon_serves_on(world: World, tmp_path: Path) -> None:
    (tmp_path / "empty-runtime").mkdir()
    world.add_key()
    start_with(world, daemon_environment(world, DBUS_SESSION_BUS_ADDRESS=None,
                                         XDG_RUNTIME_DIR=str(tmp_path / "empty-runtime")))
    assert flood(world, ["production"], 50) == [423] * 50
    assert world.unlock("production").returncode == 0  # the CLI reads the key on its own bus
    assert ask(world, "production") == 200
    wait_for(lambda: "no desktop notification could be shown" in world.log(), 10, "the log line")


def test_a_bus_with_no_notification_server_changes_nothing(world: World) -> None:
    world.add_key()
    world.start()
    assert ask(world, "production") == 423
    wait_for(lambda: "no desktop notification could be shown" in world.log(), 10, "the log line")
    assert world.unlock("production").returncode == 0
    assert ask(world, "production") == 200


def test_a_notification_server_that_never_answers_holds_up_no_request(world: World, tmp_path: Path) -> None:
    world.add_key()
    world.start()
    with notification_server(world.environment["DBUS_SESSION_BUS_ADDRESS"], tmp_path / "silent",
                             silent=True) as server:
        assert ask(world, "production") == 423
        wait_for(lambda: len(server.received()) == 1, 10, "the call to reach the silent server")
        assert ask(world, "staging") == 423  # answered while the first notification still hangs
        assert world.unlock("production").returncode == 0
        assert ask(world, "production") == 200


# -- prompt = "gui" ------------------------------------------------------------------------------------------------


def gui(world: World, *, timeout: str = "20s") -> dict[str, str]:
    """``prompt = "gui"``, and a display for the daemon (the stand-in zenity needs no real one)."""
    in_config_toml(world, f'prompt = "gui"\ncode_timeout = "{timeout}"')
    return daemon_environment(world, DISPLAY=":99")


def test_gui_prompt_unlocks_so_the_next_retry_gets_credentials(world: World, authenticator: Authenticator,
                                                               desktop: NotificationServer) -> None:
    environment = gui(world)
    world.add_key()
    start_with(world, environment)
    before = world.sts.count("GetSessionToken")

    assert ask(world, "production") == 423  # at once: the request does not wait for the person
    wait_for(lambda: ask(world, "production") == 200, 30, "a retry that gets credentials")

    assert world.sts.count("GetSessionToken") == before + 1  # the code the stand-in typed was verified
    [call] = authenticator.calls("zenity")
    assert call["argv"] == ["--entry", "--hide-text", "--title=govuk-imds", "--text=MFA code for production",
                            "--timeout=20"]
    assert call["display"] == ":99"
    wait_for(desktop.received, 10, "the notification that it is unlocked")  # once the unlock process has ended
    assert [item["summary"] for item in desktop.received()] == ["govuk-imds: production unlocked"]
    for code in authenticator.printed():
        assert code not in world.log()


def test_a_cancelled_gui_prompt_leaves_it_locked_says_so_and_is_not_shown_again_at_once(
    world: World, authenticator: Authenticator, desktop: NotificationServer
) -> None:
    environment = gui(world)
    authenticator.set("zenity", "cancel")
    world.add_key()
    start_with(world, environment)

    assert ask(world, "production") == 423
    wait_for(desktop.received, 30, "the notification that it stays locked")

    [notice] = desktop.received()
    assert notice["summary"] == "govuk-imds: production stays locked"
    assert notice["body"] == ("the prompt for the MFA code was cancelled; production stays locked (`govuk-imds "
                              "unlock production` asks again)")
    assert "the prompt for the MFA code was cancelled" in world.log()
    assert status_rows(world)["production"]["state"] == "locked"
    assert flood(world, ["production"], 20) == [423] * 20
    assert len(authenticator.calls("zenity")) == 1  # a tool retrying does not bring the dialog straight back


def test_a_gui_prompt_nobody_answers_is_taken_away(world: World, authenticator: Authenticator,
                                                   desktop: NotificationServer) -> None:
    environment = gui(world, timeout="2s")
    authenticator.set("zenity", "hang")
    world.add_key()
    start_with(world, environment)

    assert ask(world, "production") == 423
    wait_for(desktop.received, 30, "the notification that it stays locked")

    assert desktop.received()[0]["body"] == ("the prompt for the MFA code was not answered within 2 s; production "
                                             "stays locked (`govuk-imds unlock production` asks again)")
    [call] = authenticator.calls("zenity")
    wait_for(lambda: not Path(f"/proc/{call['pid']}").exists(), 10, "the dialog to be gone")


def open_prompt(world: World, authenticator: Authenticator, timeout: str) -> dict[str, Any]:
    """A daemon with prompt = "gui" that a refused tool made open a dialog nobody answers: that dialog's call."""
    environment = gui(world, timeout=timeout)
    authenticator.set("zenity", "hang")
    world.add_key()
    start_with(world, environment)
    assert ask(world, "production") == 423
    wait_for(lambda: authenticator.calls("zenity"), 30, "the dialog")
    [call] = authenticator.calls("zenity")
    return call


def test_stopping_the_daemon_takes_an_open_prompt_away(world: World, authenticator: Authenticator) -> None:
    call = open_prompt(world, authenticator, "5m")
    assert world.cli("stop").returncode == 0
    wait_for(lambda: not Path(f"/proc/{call['pid']}").exists(), 10, "the dialog to be gone")


def test_gui_mode_uses_mfa_process_and_says_when_to_touch(world: World, authenticator: Authenticator,
                                                          desktop: NotificationServer) -> None:
    environment = gui(world)
    with_mfa_process(world)
    authenticator.set("ykman", "touch")
    world.add_key()
    start_with(world, environment)

    assert ask(world, "staging") == 423
    wait_for(lambda: ask(world, "staging") == 200, 30, "a retry that gets credentials")

    assert authenticator.calls("zenity") == []
    [call] = authenticator.calls("ykman")
    assert call["stdin"] == "devnull"
    wait_for(lambda: len(desktop.received()) == 2, 10, "the notification that it is unlocked")
    summaries = [item["summary"] for item in desktop.received()]
    assert summaries == ["govuk-imds: touch your YubiKey", "govuk-imds: staging unlocked"]
    assert desktop.received()[0]["body"] == "Touch it to unlock staging."


def test_fresh_code_environments_are_unlocked_only_by_a_person_typing(world: World, authenticator: Authenticator,
                                                                      desktop: NotificationServer) -> None:
    environment = gui(world)
    world.config_file.write_text(world.config_file.read_text() + "\n[environments.production]\nfresh_code = true\n")
    with_mfa_process(world)
    world.add_key()
    start_with(world, environment)

    assert ask(world, "production") == 423
    wait_for(lambda: ask(world, "production") == 200, 30, "a retry that gets credentials")

    assert authenticator.calls("ykman") == []  # it could hand out a code with nobody there
    assert len(authenticator.calls("zenity")) == 1
    assert "fresh_code: a person types the code, mfa_process is not used" in world.log()


def test_the_unlock_the_daemon_starts_runs_as_a_separate_process(world: World, authenticator: Authenticator) -> None:
    """The long-term key never enters the daemon: the unlock is the CLI in a process of its own."""
    call = open_prompt(world, authenticator, "20s")
    parent = int(Path(f"/proc/{call['pid']}/stat").read_text().rsplit(")", 1)[-1].split()[1])
    argv = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")
    assert b"unlock" in argv and b"production" in argv and b"--prompt" in argv
    assert parent != world.daemon_pid()
    grandparent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[-1].split()[1])
    assert grandparent == world.daemon_pid()


def test_an_unlock_typed_while_the_daemons_prompt_is_open_waits_and_says_why(world: World,
                                                                               authenticator: Authenticator) -> None:
    open_prompt(world, authenticator, "3s")

    typed = world.cli("unlock", "staging", "--code", world.code())

    assert typed.returncode == 0, typed.stderr
    assert typed.stdout.startswith("waiting for another unlock to finish (it may be asking for a code in another "
                                   "terminal or on your screen)\n")
    assert status_rows(world)["staging"]["state"] == "active"
