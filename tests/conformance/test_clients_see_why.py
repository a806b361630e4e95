"""When the endpoint cannot serve, each client fails the way its SDK fails, and shows the person what it can.

Rules shown (ecs-protocol.md): a locked environment is a 4xx that is not 429, with the command that fixes it in the
body, which botocore (and so the aws CLI and boto3) puts in its error; a bad or missing token is 401 or 403; botocore
and JS retry a 4xx about 3 s before giving up; nothing secret is in what they print; the 401 and 403 name both token
variables and the command that sets them, true whichever of the two a client reads. What the JS SDK shows is
asserted as it is: `fromHttp` shows the message (from the capitalised copy in the body); the default chain ends in
'Could not load credentials from any providers'.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.world import World

from .clients import (
    Outcome,
    aws_command,
    boto3_command,
    client_env,
    daemon_answers,
    node_command,
    node_whoami,
    run_together,
)


def clients_in(world: World, environment: dict[str, str], *, with_cli: bool = False) -> dict[str, Outcome]:
    commands = {
        "boto3": (boto3_command(world.sts.url), environment),
        "js-default": (node_command(world.sts.url), environment),
        "js-http": (node_command(world.sts.url, "http"), environment),
    }
    if with_cli:
        commands["aws"] = (aws_command(world.sts.url), environment)
    return run_together(commands)


def assert_botocore_shows(outcome: Outcome, status: int, hint: str) -> None:
    result = outcome.last
    assert outcome.returncode == 1 and not result["ok"], outcome
    assert result["type"] == "CredentialRetrievalError"
    assert f"Received non 200 response {status} from container metadata" in result["message"]
    assert hint in result["message"]
    assert result["failed_fetches"] == [status] * 3  # botocore's own retries: three attempts, 1 s apart
    assert result["elapsed"] < 10


def assert_js_shows(outcomes: dict[str, Outcome], status: int) -> None:
    default, http = outcomes["js-default"].last, outcomes["js-http"].last
    # The default chain tries fromHttp (four attempts, 1 s apart), then fromContainerMetadata, which sends the token
    # variable (`env` sets it) and so gets the same answer; then it gives up with its own words.
    assert not default["ok"]
    assert default["message"] == "Could not load credentials from any providers"
    assert daemon_answers(default) == [status] * 5
    assert not http["ok"]
    assert http["message"] == f"Server responded with status: {status}"
    assert daemon_answers(http) == [status] * 4
    for result in (default, http):
        assert result["elapsedMs"] < 10_000
        assert result["blocked"] == []


def test_locked_environment_every_client_stops_with_423_and_botocore_shows_the_unlock_command(
        served: World, js_sdk: Path) -> None:
    environment = client_env(served, "integration")  # integration is never unlocked in `served`
    outcomes = clients_in(served, environment, with_cli=True)
    cli = outcomes["aws"]

    assert_botocore_shows(outcomes["boto3"], 423, "govuk-imds unlock integration")
    assert cli.returncode != 0
    assert "Received non 200 response 423" in cli.stderr
    assert "run `govuk-imds unlock integration`" in cli.stderr
    assert_js_shows(outcomes, 423)


def test_wrong_token_is_403_and_botocore_says_to_run_env_again(served: World, js_sdk: Path,
                                                                 tmp_path: Path) -> None:
    stale = tmp_path / "stale-token"
    stale.write_text("A" * len(served.token("production")))
    environment = client_env(served, "production", AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(stale),
                             AWS_CONTAINER_AUTHORIZATION_TOKEN=stale.read_text())
    outcomes = clients_in(served, environment)

    # botocore prints the body as JSON, so a person sees the quotes escaped.
    assert_botocore_shows(outcomes["boto3"], 403, 'run `eval \\"$(govuk-imds env production)\\"` again')
    assert "govuk-imds doctor production" in outcomes["boto3"].last["message"]
    assert served.token("production") not in outcomes["boto3"].last["message"]
    assert_js_shows(outcomes, 403)


def test_no_token_is_401_and_botocore_names_the_variable_to_set(served: World, js_sdk: Path) -> None:
    environment = client_env(served, "production")
    del environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
    del environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    outcomes = clients_in(served, environment)

    assert_botocore_shows(outcomes["boto3"], 401, "neither AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE nor "
                                                  "AWS_CONTAINER_AUTHORIZATION_TOKEN")
    assert 'run `eval \\"$(govuk-imds env production)\\"` (it sets both)' in outcomes["boto3"].last["message"]
    assert_js_shows(outcomes, 401)


def test_unknown_environment_is_404_and_botocore_says_how_to_define_it(served: World, js_sdk: Path) -> None:
    environment = client_env(served, "production", AWS_CONTAINER_CREDENTIALS_FULL_URI=served.url("sandbox"))
    outcomes = clients_in(served, environment)

    assert_botocore_shows(outcomes["boto3"], 404, "[profile govuk-sandbox]")
    assert_js_shows(outcomes, 404)


def test_js_from_http_error_carries_the_unlock_command(served: World, js_sdk: Path) -> None:
    outcome = node_whoami(served, client_env(served, "integration"), provider="http", max_retries=0)
    assert not outcome.last["ok"]
    assert "govuk-imds unlock integration" in outcome.last["inspected"]
