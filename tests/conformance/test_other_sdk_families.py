"""Clients built on other AWS SDK implementations: the AWS Common Runtime (awscrt), the AWS SDK for C++ (pyarrow's
S3FileSystem), Rust's object_store (obstore), the JS SDK v2, and the JS SDK v3's ``fromContainerMetadata``, which
reads only ``AWS_CONTAINER_AUTHORIZATION_TOKEN``.

Rules shown (ecs-protocol.md, docs/design.md "Tokens"): each gets the role from what `env` prints; each signs its
AWS call with the very key the daemon served (moto accepts any signature, so the key is read at the proxy in front of
it, attributed by User-Agent); a lock keeps the token, so the same shell works again after the next unlock; what each
shows for a locked environment is asserted as the SDK words it (the README's troubleshooting table is this list), and
`status` names the last client refused. The CRT sends ``Host: 127.0.0.1`` without the port, which the endpoint
accepts. pyarrow falls back to unsigned requests when it gets no credentials, so the proxy refuses those as AWS does.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.support.sts_emulator import MotoServer, ProxyCall
from tests.support.world import ACCOUNTS, World

from .clients import (
    Outcome,
    arrow_command,
    client_env,
    crt_command,
    daemon_answers,
    native_env,
    node_command,
    node_v2_command,
    objects_command,
    run_together,
    served_document,
)

REGION = "eu-west-1"
BUCKET = "govuk-imds-conformance"
ROLE = f"arn:aws:sts::{ACCOUNTS['production']}:assumed-role/govuk-administrators/"
#: Each client's User-Agent at the proxy, so that each signed call can be told apart from the others'.
AGENTS = {
    "awscrt": "govuk-imds-conformance/awscrt",
    "pyarrow": "aws-sdk-cpp/",
    "obstore": "object_store/",
    "js-v2": "aws-sdk-nodejs/2.",
    "js-container": "aws-sdk-js/3.",
}


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but never listens, so a connection to it is refused at once."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])


@pytest.fixture(scope="module")
def families(served: World, moto: MotoServer) -> Iterator[World]:
    """The module's daemon (production unlocked), a bucket with one object in production's account, and a proxy
    that refuses unsigned calls as AWS does (pyarrow's silent fallback to anonymous requests then shows)."""
    document = served_document(served, "production")
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name=REGION, aws_access_key_id=document["AccessKeyId"],
                      aws_secret_access_key=document["SecretAccessKey"], aws_session_token=document["Token"])
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=BUCKET, Key="hello.txt", Body=b"hello")
    served.sts.refuse_unsigned = True
    try:
        yield served
    finally:
        served.sts.refuse_unsigned = False


def every_family(world: World, closed_port: int) -> dict[str, Outcome]:
    """Every client at once, each with only what `env` printed (the native ones also kept off instance metadata)."""
    shell = client_env(world, "production")
    native = native_env(shell, closed_port)
    url = world.sts.url
    return run_together({
        "awscrt": (crt_command(url, REGION), native),
        "pyarrow": (arrow_command(url, REGION), native),
        "obstore": (objects_command(url, REGION, BUCKET), native),
        "js-v2": (node_v2_command(url), {**shell, "AWS_EC2_METADATA_DISABLED": "true"}),
        "js-container": (node_command(url, "container"), shell),
    })


def signed_by(calls: list[ProxyCall]) -> dict[str, set[str]]:
    """The access key ids each client signed its calls with ("" for an unsigned call)."""
    keys: dict[str, set[str]] = {family: set() for family in AGENTS}
    for call in calls:
        for family, agent in AGENTS.items():
            if call.user_agent.startswith(agent):
                keys[family].add(call.access_key_id)
    return keys


def assert_every_family_got_the_role(outcomes: dict[str, Outcome], calls: list[ProxyCall], served_key: str) -> None:
    for family, outcome in outcomes.items():
        assert outcome.returncode == 0 and outcome.last["ok"], (family, outcome)
    assert outcomes["awscrt"].last["arn"].startswith(ROLE)
    assert outcomes["awscrt"].last["access_key_id"] == served_key
    assert outcomes["pyarrow"].last["buckets"] == [BUCKET]  # production's account: the role's, not anonymous
    assert outcomes["obstore"].last["paths"] == ["hello.txt"]
    assert outcomes["js-v2"].last["arn"].startswith(ROLE)
    assert outcomes["js-v2"].last["accessKeyId"] == served_key
    assert outcomes["js-container"].last["arn"].startswith(ROLE)
    assert daemon_answers(outcomes["js-container"].last) == [200]
    # What reached AWS (moto) was signed by each client with the key the daemon served, and nothing went unsigned.
    assert signed_by(calls) == {family: {served_key} for family in AGENTS}


def test_every_family_signs_with_the_key_the_daemon_served(families: World, closed_port: int) -> None:
    first_call = len(families.sts.calls)
    outcomes = every_family(families, closed_port)
    served_key = served_document(families, "production")["AccessKeyId"]
    assert_every_family_got_the_role(outcomes, families.sts.calls[first_call:], served_key)


def test_locked_each_family_fails_its_own_way_and_the_same_shell_works_after_unlock(
        families: World, closed_port: int) -> None:
    world = families
    before = served_document(world, "production")["AccessKeyId"]
    assert world.cli("lock", "production").returncode == 0

    first_call = len(world.sts.calls)
    locked = every_family(world, closed_port)
    results: dict[str, dict[str, Any]] = {family: outcome.last for family, outcome in locked.items()}
    assert not any(result["ok"] for result in results.values()), results
    # The CRT: a status failure, no body.
    assert results["awscrt"]["name"] == "AWS_AUTH_CREDENTIALS_PROVIDER_HTTP_STATUS_FAILURE"
    assert results["awscrt"]["message"] == "Unsuccessful status code returned from credentials-fetching http request"
    # The SDK for C++: no credentials, so an unsigned call, which AWS refuses.
    assert results["pyarrow"]["message"].startswith(
        "When listing buckets: AWS Error ACCESS_DENIED during ListBuckets operation: Access Denied (Request ID: ")
    # object_store: the only one that shows the daemon's own message.
    assert "Server returned non-2xx status code: 423 Locked" in results["obstore"]["message"]
    assert "run `govuk-imds unlock production`" in results["obstore"]["message"]
    # JS v2: the chain swallows the 423 and reports that no provider had credentials (without
    # AWS_EC2_METADATA_DISABLED it would go on to the instance metadata service and report that instead).
    assert results["js-v2"]["code"] == "CredentialsError"
    assert results["js-v2"]["message"] == (
        "Missing credentials in config, if using AWS_CONFIG_FILE, set AWS_SDK_LOAD_CONFIG=1")
    assert daemon_answers(results["js-v2"]) == [423]
    # JS v3 fromContainerMetadata: a generic message, the status on the error.
    assert results["js-container"]["message"] == "Error response received from instance metadata service"
    assert results["js-container"]["statusCode"] == 423
    # Nothing but pyarrow's unsigned call reached AWS, and that was refused.
    assert signed_by(world.sts.calls[first_call:])["pyarrow"] == {""}

    status = world.cli("status")
    assert status.returncode == 0, status.stderr
    refused = [line for line in status.stdout.splitlines() if line.startswith("production: locked, and refused ")]
    assert len(refused) == 1, status.stdout
    assert "run `govuk-imds unlock production`" in refused[0]

    assert world.unlock("production").returncode == 0
    first_call = len(world.sts.calls)
    outcomes = every_family(world, closed_port)  # the same shell: nobody ran `env` again
    served_key = served_document(world, "production")["AccessKeyId"]
    assert served_key != before
    assert_every_family_got_the_role(outcomes, world.sts.calls[first_call:], served_key)
