"""The token file, as clients read it.

Rules shown (ecs-protocol.md): clients send the file's bytes as they are, so a CR or LF breaks them and our token
files have none; the JS SDK's ``fromContainerMetadata`` never reads the file (it takes only
``AWS_CONTAINER_AUTHORIZATION_TOKEN``, which is why `env` sets the variable too), while its default chain and
``fromHttp`` do.
Re-reading the file on every fetch is shown in test_long_lived_clients.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.world import World

from .clients import boto3_command, client_env, daemon_answers, node_command, node_whoami, run_together


def test_our_token_file_has_no_line_break_because_one_breaks_every_client(served: World, js_sdk: Path,
                                                                          tmp_path: Path) -> None:
    token = served.token_file("production").read_bytes()
    assert b"\n" not in token and b"\r" not in token

    with_newline = tmp_path / "token-with-newline"
    with_newline.write_bytes(token + b"\n")  # what `echo "$TOKEN" > file` would have written
    environment = client_env(served, "production", AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(with_newline))
    outcomes = run_together({"boto3": (boto3_command(served.sts.url), environment),
                             "js-http": (node_command(served.sts.url, "http", max_retries=0), environment)})

    boto3, js = outcomes["boto3"].last, outcomes["js-http"].last
    assert not boto3["ok"]
    assert boto3["type"] == "ValueError"
    assert boto3["message"] == "Auth token value is not a legal header value"
    assert not js["ok"]
    assert 'Invalid character in header content ["Authorization"]' in js["message"]
    assert daemon_answers(js) == []  # refused before sending


def test_js_from_container_metadata_never_reads_the_token_file(served: World, js_sdk: Path) -> None:
    environment = client_env(served, "production")
    del environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"]  # a shell from before `env` set it
    outcome = node_whoami(served, environment, provider="container")
    result = outcome.last
    assert not result["ok"]
    assert result["message"] == "Error response received from instance metadata service"
    assert result["statusCode"] == 401
    assert daemon_answers(result) == [401]  # asked, with no Authorization header at all
