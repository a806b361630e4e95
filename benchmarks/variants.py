"""The daemon's own request path, in a process of its own, optionally with a proposed fix applied: evidence for
what a change to ``src/`` would buy, measured in the same run as the real daemon and the floor.

The app is the real one: ``govuk_imds.web.create_app`` with a real ``Service`` and ``TokenStore``; only STS is
replaced by an issuer that hands back the credentials the real daemon served (so the body bytes are identical) and
the token is the real daemon's. Variants patch the running process, never the source tree:

* ``as-is``  -- nothing changed (must match the real daemon: it checks that the replica is faithful);
* ``dict``   -- a plain dict instead of aiocache's SimpleMemoryCache on the request path (expiry is judged on the
                wall clock at every request anyway, so the cache's own TTL adds safety, not speed): what keeping
                aiocache, as issue 2 asks, costs per request;
* ``dict+uvloop`` -- the same on uvloop's event loop instead of asyncio's (a new dependency: a reference for what
                the stack itself could reach, not a recommendation on its own).

Earlier proposals measured here (the body rendered once, no middleware) are now part of ``src/``.

    python -m benchmarks.variants --port 9913 --variant dict --body-file body.json --token-file token
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from govuk_imds.config.files import atomic_write, ensure_private_dir
from govuk_imds.config.paths import RuntimePaths
from govuk_imds.core.clock import SystemClock, parse_rfc3339
from govuk_imds.core.credentials import MfaSession, RoleCredentials, TemporaryCredentials
from govuk_imds.core.environment import EnvironmentSpec
from govuk_imds.daemon.service import Service, keep_cache_enabled
from govuk_imds.daemon.tokens import TokenStore
from govuk_imds.daemon.web import create_app

VARIANTS = ("as-is", "dict", "dict+uvloop")


class DictCache:
    """The four calls Service makes on its cache, on a plain dict."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self._data.get(key)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._data[key] = value

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def clear(self) -> None:
        self._data.clear()


class ReplayIssuer:
    def __init__(self, credentials: RoleCredentials) -> None:
        self._credentials = credentials

    async def assume_role(self, session: TemporaryCredentials, spec: EnvironmentSpec) -> RoleCredentials:
        return self._credentials


async def serve(port: int, variant: str, body: bytes, token: bytes) -> None:
    document = json.loads(body)
    credentials = RoleCredentials(
        document["AccessKeyId"], document["SecretAccessKey"], document["Token"],
        parse_rfc3339(document["Expiration"]), document.get("AccountId", ""), document.get("RoleArn", ""),
    )
    keep_cache_enabled(os.environ)  # as the daemon does at start
    service = Service(ReplayIssuer(credentials), SystemClock(), rotation_margin=timedelta(minutes=15))
    if "dict" in variant:
        service._cache = DictCache()
    spec = EnvironmentSpec("production", "govuk-production", credentials.role_arn or "arn:aws:iam::1:role/r",
                           "arn:aws:iam::1:mfa/u", "gds", "eu-west-1", 3600, "bench")
    service.set_environments({"production": spec})
    now = datetime.now(UTC)
    await service.unlock(spec, MfaSession("ASIAMFA", "secret", "token", now + timedelta(hours=8)),
                         now + timedelta(hours=8))
    with tempfile.TemporaryDirectory(prefix="imds-variant-") as runtime:
        paths = RuntimePaths(Path(runtime))
        ensure_private_dir(paths.tokens_dir)
        atomic_write(paths.token_file("production"), token)
        tokens = TokenStore(paths)
        tokens.ensure("production")
        runner = web.AppRunner(create_app(service, tokens, port, "govuk-"), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await runner.cleanup()
        await service.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--token-file", required=True)
    arguments = parser.parse_args()
    main_coroutine = serve(arguments.port, arguments.variant, Path(arguments.body_file).read_bytes(),
                           Path(arguments.token_file).read_bytes())
    if "uvloop" in arguments.variant:
        import uvloop

        uvloop.run(main_coroutine)
    else:
        asyncio.run(main_coroutine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
