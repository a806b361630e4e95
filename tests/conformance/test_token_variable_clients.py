"""Clients that read the token from ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` keep working from one `env` for a day.

Rules shown (docs/design.md, "Tokens"): `env` puts the token in the variable as well as in the file, and a token
changes neither on lock nor when the daemon restarts on a port that was held for it all along (a systemd or launchd
socket), so a shell that ran `env` once keeps serving the JS SDK's ``fromContainerMetadata`` (which reads only the
variable) and the JS SDK v2 (which prefers it to the file). Across lock and unlock the same is shown for every SDK
family in test_other_sdk_families.py.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.activation import activated
from tests.support.world import ACCOUNTS, BIN, World, wait_for

from .clients import Outcome, client_env, daemon_answers, node_command, node_v2_command, run_together

ROLE = f"arn:aws:sts::{ACCOUNTS['production']}:assumed-role/govuk-administrators/"


def variable_readers(world: World, environment: dict[str, str]) -> dict[str, Outcome]:
    return run_together({
        "js-container": (node_command(world.sts.url, "container"), environment),
        "js-v2": (node_v2_command(world.sts.url), {**environment, "AWS_EC2_METADATA_DISABLED": "true"}),
    })


def assert_served(outcomes: dict[str, Outcome]) -> None:
    for name, outcome in outcomes.items():
        assert outcome.last["ok"], (name, outcome)
        assert outcome.last["arn"].startswith(ROLE)
        assert daemon_answers(outcome.last) == [200]


def test_a_shell_from_one_env_serves_variable_readers_across_a_restart_on_a_held_port(
        world: World, js_sdk: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    serve = [str(BIN / "govuk-imds"), "serve"]

    def ready() -> bool:
        return world.cli("status", timeout=10).returncode == 0

    with socket.create_server(("127.0.0.1", world.port)) as held:  # what govuk-imds.socket holds for the daemon
        with activated(held.fileno(), serve, world.environment, log):
            wait_for(ready, 30, "the daemon on the held port")
            world.add_key()
            assert world.unlock("production").returncode == 0, log.read_text()
            environment = client_env(world, "production")  # `eval "$(govuk-imds env production)"`, once
            token = world.token("production")
            assert environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == token
            assert_served(variable_readers(world, environment))
        assert not world.runtime.joinpath("control.sock").exists()  # stopped; the port stayed held meanwhile

        with activated(held.fileno(), serve, world.environment, log):
            wait_for(ready, 30, "the daemon started again on the held port")
            assert world.token("production") == token
            assert world.unlock("production").returncode == 0, log.read_text()
            assert_served(variable_readers(world, environment))  # the same shell, no `env` again
