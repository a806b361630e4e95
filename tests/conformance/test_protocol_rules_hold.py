"""The rules in ecs-protocol.md are real for the SDK versions pinned here: each broken answer breaks a client.

A stub endpoint on loopback answers what our daemon must never answer; the same clients as elsewhere in this suite
fail on it. If an SDK upgrade makes one of these pass, the rule may be relaxed (or the SDK changed how it fails).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.sts_emulator import StsProxy

from .clients import Outcome, boto3_command, node_command, run_together

LATER = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
GOOD = {
    "AccessKeyId": "ASIAEXAMPLEEXAMPLE12",
    "SecretAccessKey": "secret/example/example/example/example12",
    "Token": "session-token-example",
    "Expiration": LATER.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "AccountId": "410987654321",
}
ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "good": (200, GOOD),
    "status-201": (201, GOOD),
    "offset-not-z": (200, {**GOOD, "Expiration": LATER.isoformat()}),  # ...+00:00
    "no-zone": (200, {**GOOD, "Expiration": LATER.replace(tzinfo=None).isoformat()}),
    "no-token": (200, {key: value for key, value in GOOD.items() if key != "Token"}),
}


class StubEndpoint(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, document = ANSWERS[self.path.rsplit("/", 1)[-1]]
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubEndpoint)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/credentials"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def outcomes(stub: str, sts: StsProxy, js_sdk: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every answer, to boto3 and to JS fromHttp (no retries: each case is one answer), all at once."""
    home = tmp_path_factory.mktemp("stub-home")
    (home / "token").write_text("stub-token")

    commands = {}
    for case in ANSWERS:
        environment = {"PATH": os.environ["PATH"], "HOME": str(home),
                       "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",  # botocore reads only the latter
                       "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{stub}/{case}",
                       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(home / "token")}
        commands[f"boto3 {case}"] = (boto3_command(sts.url), environment)
        commands[f"js {case}"] = (node_command(sts.url, "http", max_retries=0), environment)
    return run_together(commands)


def test_the_stub_answer_that_follows_the_rules_works_for_both(outcomes: dict[str, Outcome]) -> None:
    assert outcomes["boto3 good"].last["ok"], outcomes["boto3 good"]
    assert outcomes["js good"].last["ok"], outcomes["js good"]


def test_status_201_breaks_botocore_and_js(outcomes: dict[str, Outcome]) -> None:
    assert "Received non 200 response 201" in outcomes["boto3 status-201"].last["message"]
    assert outcomes["js status-201"].last["message"] == "Server responded with status: 201"


def test_an_offset_instead_of_z_breaks_js(outcomes: dict[str, Outcome]) -> None:
    assert outcomes["boto3 offset-not-z"].last["ok"]
    js = outcomes["js offset-not-z"].last
    assert not js["ok"]
    assert "Invalid RFC-3339 date-time value" in js["message"]


def test_no_zone_breaks_botocore(outcomes: dict[str, Outcome]) -> None:
    boto3 = outcomes["boto3 no-zone"].last
    assert not boto3["ok"]
    assert "offset-naive and offset-aware" in boto3["message"]


def test_a_missing_token_breaks_both(outcomes: dict[str, Outcome]) -> None:
    boto3 = outcomes["boto3 no-token"].last
    assert not boto3["ok"]
    assert boto3["type"] == "KeyError"
    assert "response not of the required format" in outcomes["js no-token"].last["message"]
