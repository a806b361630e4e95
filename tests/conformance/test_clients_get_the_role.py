"""Every client our users run gets the environment's role from the endpoint, given only what `env` prints.

Rules shown (ecs-protocol.md): the URI we hand out (``http://127.0.0.1:<port>/v1/credentials/<env>``) is accepted by
each client, including the fussiest (the JS fallback provider: only ``localhost`` and ``127.0.0.1``); the raw token
from the token file goes in ``Authorization``; the success body has every field in a shape each SDK parses
(``Expiration`` ending in ``Z`` for JS, ``AccountId`` a string); served credentials have at least 15 minutes left,
so botocore never refreshes between calls; the answer comes within JS's 1 s timeout, first time; the region comes
from `env`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.world import ACCOUNTS, World

from .clients import aws, boto3_whoami, client_env, daemon_answers, node_whoami, served_document

ROLE = f"arn:aws:sts::{ACCOUNTS['production']}:assumed-role/govuk-administrators/"


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_aws_cli_gets_the_role_and_signs_for_the_region_env_set(served: World) -> None:
    answer = aws(served, client_env(served, "production"), "--debug")
    assert answer.returncode == 0, answer.stderr[-3000:]
    identity = json.loads(answer.stdout)
    assert identity["Arn"].startswith(ROLE)
    assert identity["Account"] == ACCOUNTS["production"]
    assert "/eu-west-1/sts/aws4_request" in answer.stderr  # the credential scope it signed with
    providers_tried = re.findall(r"Looking for credentials via: ([\w-]+)", answer.stderr)
    assert providers_tried[-1] == "container-role"  # every provider before it found nothing
    assert "BLOCKED" not in answer.stderr


def test_boto3_gets_the_role_keeps_it_between_calls_and_sees_the_account_id_string(served: World) -> None:
    outcome = boto3_whoami(served, client_env(served, "production"), calls=3)
    assert outcome.returncode == 0, outcome
    first = outcome.answers[0]
    assert first["arn"].startswith(ROLE)
    assert first["method"] == "container-role"
    assert first["account_id"] == ACCOUNTS["production"]
    assert first["region"] == "eu-west-1"
    assert first["at_least_15_min_left"] is True
    # Below 15 minutes botocore would refresh before every call; with ours it never even considers it.
    assert [answer["refreshes_needed"] for answer in outcome.answers] == [0, 0, 0]
    assert {answer["access_key_id"] for answer in outcome.answers} == {first["access_key_id"]}
    assert all(answer["failed_fetches"] == [] for answer in outcome.answers)


def test_js_default_chain_gets_the_role_with_the_expiration_we_served(served: World, js_sdk: Path) -> None:
    outcome = node_whoami(served, client_env(served, "production"))
    assert outcome.returncode == 0, outcome
    result = outcome.last
    assert result["arn"].startswith(ROLE)
    assert result["account"] == ACCOUNTS["production"]
    assert result["region"] == "eu-west-1"
    assert daemon_answers(result) == [200]  # fromHttp, the chain's first container provider, took it
    served_now = served_document(served, "production")
    assert result["accessKeyId"] == served_now["AccessKeyId"]
    assert instant(result["expiration"]) == instant(served_now["Expiration"])
    assert instant(result["expiration"]) - datetime.now(UTC) >= timedelta(minutes=15)
    assert result["blocked"] == []


def test_js_from_http_takes_the_first_answer_within_its_one_second_timeout(served: World, js_sdk: Path) -> None:
    outcome = node_whoami(served, client_env(served, "production"), provider="http", max_retries=0)
    assert outcome.returncode == 0, outcome
    result = outcome.last
    assert result["arn"].startswith(ROLE)
    assert daemon_answers(result) == [200]
    assert result["elapsedMs"] < 1000 + 2000  # one fetch (1 s timeout, no retry) plus the STS call itself
    # fromHttp parses Expiration with a strict RFC 3339 pattern that allows only "Z": we served one it accepted.
    assert served_document(served, "production")["Expiration"].endswith("Z")
    assert result["expiration"].endswith("Z")


def test_js_from_container_metadata_accepts_our_uri_and_body_with_the_token_variable_env_sets(
        served: World, js_sdk: Path) -> None:
    # This provider never reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (see test_token_file.py); with the variable
    # that `env` sets it shows that our URI passes its host check (localhost and 127.0.0.1 only) and our body its
    # parser.
    outcome = node_whoami(served, client_env(served, "production"), provider="container")
    assert outcome.returncode == 0, outcome
    result = outcome.last
    assert result["arn"].startswith(ROLE)
    assert result["accountId"] == ACCOUNTS["production"]  # AccountId as a string, passed through as one
    assert daemon_answers(result) == [200]
