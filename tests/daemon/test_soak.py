"""An accelerated soak: a whole 8-hour session, minute by minute, through the real endpoint on loopback.

The real ``Service`` and the real aiohttp app serve a real HTTP client; only the clock is fake (it moves a minute per
step, with the maintenance tick run as the daemon's loop would) and STS is scripted (healthy, its clock offset from
the local one as given). From unlock to the session's last minute every answer must be a 200 whose ``Expiration``,
read on the local clock as an SDK reads it, is at least 15 minutes away; at the end, 423.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from govuk_imds.config.paths import RuntimePaths
from govuk_imds.core.credentials import MfaSession
from govuk_imds.daemon.service import Service
from govuk_imds.daemon.tokens import TokenStore
from govuk_imds.daemon.web import create_app
from tests.daemon.test_service import HOUR, MARGIN, MINUTE, settle, spec
from tests.support.clock import FakeClock
from tests.support.fakes import ScriptedIssuer
from tests.support.world import free_port

OFFSETS = {"right-clock": timedelta(0), "aws-2h-ahead": 2 * HOUR, "aws-10m-ahead": 10 * MINUTE,
           "local-10m-ahead": -10 * MINUTE, "local-35m-ahead": -35 * MINUTE, "local-2h-ahead": -2 * HOUR}


async def soak(runtime: Path, length: timedelta, offset: timedelta) -> tuple[Counter[int], list[str], int]:
    """Answers by status, what went wrong with any 200, and the AssumeRole calls, over one whole session."""
    clock = FakeClock()
    issuer = ScriptedIssuer(clock, aws_offset=offset)
    service = Service(issuer, clock, rotation_margin=MARGIN, jitter=lambda: 0.0)
    service.set_environments({"production": spec("production")})
    tokens = TokenStore(RuntimePaths(runtime))
    tokens.ensure("production")
    token = (runtime / "tokens" / "production").read_text()
    port = free_port()
    runner = web.AppRunner(create_app(service, tokens, port, "govuk-"), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    statuses: Counter[int] = Counter()
    wrong: list[str] = []
    unlocked_at = clock.now()
    mfa = MfaSession("ASIAMFA0000000000001", "m" * 40, "mfa-token", unlocked_at + offset + length)
    try:
        await service.unlock(spec("production"), mfa, unlocked_at + length)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
            while clock.now() <= unlocked_at + length:
                await service.tick()
                await settle()
                async with client.get("/v1/credentials/production", headers={"Authorization": token}) as answer:
                    body = json.loads(await answer.read())
                    statuses[answer.status] += 1
                if clock.now() < unlocked_at + length:
                    expires = datetime.fromisoformat(body.get("Expiration", "1970-01-01T00:00:00Z")
                                                     .replace("Z", "+00:00"))
                    if answer.status != 200 or expires - clock.now() < timedelta(minutes=15):
                        wrong.append(f"{clock.now():%H:%M}: {answer.status} {body.get('Expiration')}")
                elif answer.status != 423:
                    wrong.append(f"{clock.now():%H:%M} (the end): {answer.status}")
                clock.advance(MINUTE)
    finally:
        await runner.cleanup()
        await service.close()
    return statuses, wrong, issuer.call_count


@pytest.mark.parametrize("offset", list(OFFSETS.values()), ids=list(OFFSETS))
def test_a_whole_eight_hour_session_answers_200_every_minute_then_423(tmp_path: Path, offset: timedelta) -> None:
    statuses, wrong, assume_roles = asyncio.run(soak(tmp_path, 8 * HOUR, offset))

    assert wrong == []
    assert statuses == Counter({200: 8 * 60, 423: 1})
    assert assume_roles == 16  # the unlock's, then one every 30 minutes: none wasted, whatever the clock
