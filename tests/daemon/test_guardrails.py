"""The guard-rails on the request path, in one process: the real endpoint (aiohttp on a loopback port), the real
service with a scripted STS, and ``Peers`` played by a stand-in, so that a caller can be slow, unidentifiable or
anyone at all. Real processes are found by tests/daemon/test_peers_linux.py and tests/e2e/test_guardrails.py.

What is shown: a caller is looked up once per connection (keep-alive requests reuse it); an environment with
``deny_callers`` refuses a caller it cannot identify, or cannot identify within the budget; one without answers
within the budget and records the caller when the lookup ends; with auditing off and no deny list, nothing is
looked up.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from govuk_imds.config.paths import RuntimePaths
from govuk_imds.core.callers import CLIENT_GONE, Caller, ClientSocket, Process
from govuk_imds.core.credentials import MfaSession
from govuk_imds.core.guards import Guards
from govuk_imds.daemon.app import bind_loopback
from govuk_imds.daemon.audit import AuditLog, AuditTrail
from govuk_imds.daemon.callers import Budget, CallerFinder
from govuk_imds.daemon.guardrails import Guardrails
from govuk_imds.daemon.service import Service
from govuk_imds.daemon.tokens import TokenStore
from govuk_imds.daemon.web import create_app
from tests.daemon.test_service import in_event_loop, spec
from tests.support.clock import FakeClock
from tests.support.fakes import ScriptedIssuer

SETTING = "[environments.production] of config.toml"
TERRAFORM = Caller(uid=1000, chain=(Process(4242, 1, "terraform", "/usr/bin/terraform", ("terraform", "plan")),))


@dataclass
class StandInPeers:
    """``Peers`` that answers ``caller`` after ``delay`` seconds, counting lookups."""

    caller: Caller = TERRAFORM
    delay: float = 0.0
    located: list[ClientSocket] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def locate(self, peer: tuple[str, int], local: tuple[str, int]) -> ClientSocket | str:
        return ClientSocket(peer, local, inode=1, uid=1000)

    def identify(self, client: ClientSocket, recent: Sequence[int], wanted: Callable[[], bool]) -> Caller:
        self.located.append(client)
        self.released.wait(self.delay)
        return self.caller

    def close(self) -> None:
        self.released.set()


@dataclass
class Endpoint:
    port: int
    tokens: TokenStore
    audit_file: Path
    service: Service

    def get(self, connection: http.client.HTTPConnection, name: str = "production") -> tuple[int, dict[str, Any]]:
        connection.request("GET", f"/v1/credentials/{name}",
                           headers={"Authorization": self.tokens._tokens[name].decode(), "User-Agent": "t/1"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())

    async def fetch(self, name: str = "production", requests: int = 1) -> list[tuple[int, dict[str, Any]]]:
        """``requests`` GETs on one keep-alive connection, from a thread (the loop must keep serving)."""
        def run() -> list[tuple[int, dict[str, Any]]]:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                return [self.get(connection, name) for _ in range(requests)]
            finally:
                connection.close()

        return await asyncio.to_thread(run)

    async def records(self, expected: int = 1, within: float = 2.0) -> list[dict[str, Any]]:
        """The records written so far, waiting up to ``within`` seconds for ``expected`` of them (a thread of the
        audit trail writes them)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.audit_file.exists():
                found = [json.loads(line) for line in self.audit_file.read_text().splitlines()]
            if len(found) >= expected:
                break
            await asyncio.sleep(0.01)
        return found


@asynccontextmanager
async def endpoint(tmp_path: Path, peers: StandInPeers, guards: Guards, *, audit: bool = True,
                   budget: Budget | None = None, max_waiting: int = 64) -> AsyncIterator[Endpoint]:
    clock = FakeClock()
    service = Service(ScriptedIssuer(clock), clock, rotation_margin=timedelta(minutes=30))
    service.set_environments({"production": spec("production")})
    tokens = TokenStore(RuntimePaths(tmp_path / "run"))
    tokens.ensure("production")
    audit_file = tmp_path / "state" / "audit.jsonl"
    trail = AuditTrail(AuditLog(audit_file, max_size=1 << 20, files=2) if audit else None)
    trail.open()
    finder = CallerFinder(peers, max_waiting=max_waiting)
    guardrails = Guardrails(finder, trail, clock, guards_for=lambda name: guards, setting_for=lambda name: SETTING,
                            role_of=service.role_arn, budget=budget)
    session = MfaSession("ASIAMFA0000000000001", "m" * 40, "mfa-session-token", clock.now() + timedelta(hours=8))
    await service.unlock(spec("production"), session, session.expiration)
    listener = bind_loopback(0)
    port = listener.getsockname()[1]
    runner = web.AppRunner(create_app(service, tokens, port, "govuk-", guardrails=guardrails), access_log=None)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    try:
        yield Endpoint(port, tokens, audit_file, service)
    finally:
        peers.released.set()
        await runner.cleanup()
        finder.close()
        trail.close()
        await service.close()


@in_event_loop
async def test_a_caller_is_looked_up_once_per_connection(tmp_path: Path) -> None:
    peers = StandInPeers()
    async with endpoint(tmp_path, peers, Guards()) as served:
        answers = await served.fetch(requests=3)
        assert [status for status, _ in answers] == [200, 200, 200]
        assert len(peers.located) == 1
        await served.fetch()
        assert len(peers.located) == 2  # a new connection is a new lookup
        records = await served.records(4)
    assert [record["caller"]["pid"] for record in records] == [4242] * 4
    assert {record["caller"]["name"] for record in records} == {"terraform"}
    assert records[0]["user_agent"] == "t/1"


@in_event_loop
async def test_deny_callers_refuses_a_caller_that_cannot_be_identified(tmp_path: Path) -> None:
    peers = StandInPeers(caller=Caller(problem="no process holds the connection's socket any more"))
    async with endpoint(tmp_path, peers, Guards(deny_callers=("npm",))) as served:
        [(status, body)] = await served.fetch()
        records = await served.records()
    assert status == 403
    assert body["code"] == "CallerRefused"
    assert "cannot identify (no process holds the connection's socket any more)" in body["message"]
    assert f"deny_callers is set in {SETTING}" in body["message"]
    [record] = records
    assert (record["status"], record["result"]) == (403, "refused")
    assert record["reason"] == body["message"]
    assert record["caller"]["unknown"] == "no process holds the connection's socket any more"


@in_event_loop
async def test_deny_callers_refuses_a_caller_not_found_within_the_budget(tmp_path: Path) -> None:
    peers = StandInPeers(delay=5.0)
    async with endpoint(tmp_path, peers, Guards(deny_callers=("npm",)), budget=Budget(deny=0.05)) as served:
        began = time.monotonic()
        [(status, body)] = await served.fetch()
        took = time.monotonic() - began
        peers.released.set()
    assert status == 403
    assert "the search for it took longer than 50 ms" in body["message"]
    assert took < 2.0  # it did not wait for the slow lookup


@in_event_loop
async def test_without_deny_callers_the_answer_does_not_wait_and_the_caller_is_recorded_when_found(
        tmp_path: Path) -> None:
    peers = StandInPeers(delay=5.0)
    async with endpoint(tmp_path, peers, Guards(), budget=Budget(audit=0.05)) as served:
        [(status, _)] = await served.fetch()
        assert status == 200
        assert await served.records(within=0.2) == []  # answered; the lookup is still going
        peers.released.set()
        [record] = await served.records()
    assert record["late"] is True
    assert record["caller"]["pid"] == 4242
    assert record["result"] == "served"


@in_event_loop
async def test_with_auditing_off_and_no_deny_list_nothing_is_looked_up(tmp_path: Path) -> None:
    peers = StandInPeers()
    async with endpoint(tmp_path, peers, Guards(), audit=False) as served:
        [(status, _)] = await served.fetch()
    assert status == 200
    assert peers.located == []
    assert not served.audit_file.exists()


@in_event_loop
async def test_an_error_answer_is_recorded_with_its_reason(tmp_path: Path) -> None:
    peers = StandInPeers()
    async with endpoint(tmp_path, peers, Guards()) as served:
        await served.service.lock("production", "locked after 4 h without a request")
        [(status, body)] = await served.fetch()
        records = await served.records()
    assert status == 423
    [record] = records
    assert (record["status"], record["result"]) == (423, "locked")
    assert record["reason"] == body["message"]
    assert "(locked after 4 h without a request)" in record["reason"]
    assert record["caller"]["pid"] == 4242


@in_event_loop
async def test_a_flood_of_new_connections_does_not_queue_lookups_without_end(tmp_path: Path) -> None:
    peers = StandInPeers(delay=5.0)  # the first lookup holds the worker until released
    async with endpoint(tmp_path, peers, Guards(deny_callers=("npm",)), budget=Budget(deny=3.0),
                        max_waiting=1) as served:
        first = asyncio.ensure_future(served.fetch())
        await asyncio.sleep(0.2)
        second = asyncio.ensure_future(served.fetch())  # waits for the worker
        await asyncio.sleep(0.2)
        [(status, body)] = await served.fetch()  # one too many: not looked up, so refused at once
        assert status == 403
        assert "(1 other new connections were waiting), because deny_callers is set" in body["message"]
        peers.released.set()
        assert [answer[0][0] for answer in await asyncio.gather(first, second)] == [200, 200]
    assert len(peers.located) == 2


@in_event_loop
async def test_the_lookup_of_a_connection_that_closed_while_waiting_is_skipped(tmp_path: Path) -> None:
    peers = StandInPeers(delay=5.0)
    async with endpoint(tmp_path, peers, Guards(), budget=Budget(audit=0.05)) as served:
        first = asyncio.ensure_future(served.fetch())  # its lookup holds the worker
        await asyncio.sleep(0.2)
        [(status, _)] = await served.fetch()  # answered within the budget, then the client hangs up
        assert status == 200
        await asyncio.sleep(0.2)
        peers.released.set()
        await first
        records = await served.records(2)
    assert len(peers.located) == 1  # the closed connection's search never ran
    gone = [record for record in records if "unknown" in record["caller"]]
    assert [record["caller"]["unknown"] for record in gone] == [CLIENT_GONE]
    assert gone[0]["late"] is True
