"""The floor of our stack: a bare aiohttp handler on 127.0.0.1 that returns the daemon's exact answer.

Same Python, same aiohttp, same event loop, same status, headers and body bytes; no checks at all. The distance
between this and the daemon is what our checks and features cost.

    python -m benchmarks.floor --port 9912 --body-file body.json [--uvloop]

``--uvloop`` runs the same app on uvloop's event loop instead of asyncio's (a reference, not a project choice).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web


def make_app(body: bytes) -> web.Application:
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}

    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=200, body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/v1/credentials/{environment}", handle)
    return app


async def serve(port: int, body: bytes) -> None:
    runner = web.AppRunner(make_app(body), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--uvloop", action="store_true")
    arguments = parser.parse_args()
    main_coroutine = serve(arguments.port, Path(arguments.body_file).read_bytes())
    if arguments.uvloop:
        import uvloop

        uvloop.run(main_coroutine)
    else:
        asyncio.run(main_coroutine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
