"""Programs that keep running while the daemon rotates credentials, rotates the token, or briefly has nothing valid.

Rules shown (ecs-protocol.md): the token file is re-read on every fetch, so a process started before a token
rotation (`lock --new-tokens`) keeps working after it (the old token is refused by then); served credentials have at
least 15 minutes left (botocore and JS both keep a client's credentials cached, so a long-lived client does not
refetch at every rotation); while nothing valid exists the endpoint answers 503 and every SDK retries it until served.

How each SDK refreshes, and so what a test can observe:
* botocore keeps a client's (and a session's) credentials until 15 minutes before expiry (advisory refresh) or 10
  (mandatory); a new ``boto3.session.Session()`` resolves them afresh.
* JS v3 memoises a client's credentials until 5 minutes before expiry; a new client, or a new ``fromHttp()``
  provider, fetches afresh.
So each round makes one call with a kept client and one or two with fresh ones; the kept ones must never fail, the
fresh ones must see each new key.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.world import World

from .clients import (
    LongLived,
    boto3_long_lived,
    client_env,
    daemon_answers,
    node_long_lived,
    rounds_freely_until,
    rounds_until,
    served_document,
)


def status_with_token(world: World, name: str, token: str) -> int:
    request = urllib.request.Request(world.url(name), headers={"Authorization": token})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def results(client: LongLived) -> list[dict[str, Any]]:
    """Every call's outcome, kept and fresh, in every round so far."""
    return [result for answer in client.rounds for key, result in answer.items() if key not in {"blocked", "answers"}]


def key(result: dict[str, Any]) -> str:
    return str(result.get("access_key_id") or result.get("accessKeyId"))


def test_long_lived_clients_keep_working_across_credential_and_token_rotation(fast_rotation: World,
                                                                             js_sdk: Path) -> None:
    world = fast_rotation
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    environment = client_env(world, "production")

    with boto3_long_lived(world, environment) as boto3, node_long_lived(world, environment) as js:
        clients = [boto3, js]
        for client in clients:
            client.round()
        first_key = served_document(world, "production")["AccessKeyId"]

        # 1. The daemon renews the role (every ~6 s here); fresh clients pick up the new key, kept ones carry on.
        rounds_until(clients, lambda: served_document(world, "production")["AccessKeyId"] != first_key, timeout=30)
        for client in clients:
            client.round()
        assert key(boto3.rounds[-1]["fresh"]) != first_key
        assert key(js.rounds[-1]["freshDefault"]) != first_key
        assert key(js.rounds[-1]["freshHttp"]) != first_key

        # 2. A lock with new tokens rewrites the token file; nobody re-reads their environment, whose token variable
        #    is now old: these clients prefer the file.
        old_token = world.token("production")
        assert world.cli("lock", "production", "--new-tokens").returncode == 0
        assert world.unlock("production").returncode == 0
        assert world.token("production") != old_token
        assert status_with_token(world, "production", old_token) == 403
        before_lock = {key(result) for client in clients for result in results(client)}
        for client in clients:
            client.round()
        after_unlock = [boto3.rounds[-1]["fresh"], js.rounds[-1]["freshDefault"], js.rounds[-1]["freshHttp"]]
        for result in after_unlock:
            assert result["ok"], result
            assert key(result) not in before_lock  # the new session's credentials, fetched with the new token

    assert [result for client in clients for result in results(client) if not result["ok"]] == []
    # Kept clients never refetched: what they were served stays good for well over the test's length.
    assert len({key(answer["kept"]) for answer in boto3.rounds}) == 1
    assert len({key(answer["kept"]) for answer in js.rounds}) == 1
    assert all(answer["fresh"]["at_least_15_min_left"] for answer in boto3.rounds)
    assert all(answer["fresh"]["failed_fetches"] == [] for answer in boto3.rounds)
    # The kept client fetched once, in the first round; the fresh default chain and fresh fromHttp every round.
    assert [daemon_answers(answer) for answer in js.rounds] == [[200] * 3] + [[200] * 2] * (len(js.rounds) - 1)
    assert all(answer["blocked"] == [] for answer in js.rounds)


def test_while_nothing_valid_exists_clients_get_503_and_their_sdk_retries_until_served(world: World,
                                                                                      js_sdk: Path) -> None:
    # Role credentials servable for ~4 s after each renewal, renewals at most every 5 s: a gap of ~1 s each time
    # in which the endpoint has nothing valid to serve.
    world.sts.role_lifetime = 15 * 60 + 4.5
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    environment = client_env(world, "production")

    def saw_503(client: LongLived) -> bool:
        if client is boto3:
            return any(503 in answer["fresh"]["failed_fetches"] for answer in client.rounds)
        return any(503 in daemon_answers(answer) for answer in client.rounds)

    with boto3_long_lived(world, environment) as boto3, node_long_lived(world, environment) as js:
        rounds_freely_until([boto3, js], saw_503, timeout=40)

    assert [result for client in (boto3, js) for result in results(client) if not result["ok"]] == []
    statuses = {status for answer in js.rounds for status in daemon_answers(answer)}
    assert statuses == {200, 503}
    assert len({key(answer["fresh"]) for answer in boto3.rounds}) >= 2  # renewed meanwhile, and picked up
