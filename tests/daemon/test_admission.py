"""The acceptor forgets connections once they have closed: a burst of short connections must not leave their
protocols (aiohttp's hold parsers and buffers) alive until shedding reaches them. Real sockets, a real loop."""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref

from govuk_imds.daemon.admission import SWEEP_FROM, Acceptor
from govuk_imds.daemon.refusals import Refusals


class Answering(asyncio.Protocol):
    """Closes each connection at its first byte; like aiohttp's protocol, its ``transport`` is None once closed."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def short_connections(count: int) -> tuple[int, int]:
    """Open and close ``count`` connections one after another; (protocols still alive, cap)."""
    made: weakref.WeakSet[Answering] = weakref.WeakSet()

    def factory() -> Answering:
        protocol = Answering()
        made.add(protocol)
        return protocol

    listener = socket.create_server(("127.0.0.1", 0))
    cap = 4096
    acceptor = Acceptor(listener, factory, cap=cap, refusals=Refusals(), in_flight=set())
    acceptor.start()
    try:
        for _ in range(count):
            reader, writer = await asyncio.open_connection(*listener.getsockname())
            writer.write(b"x")
            await reader.read()  # the server closed it
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.05)
        gc.collect()
        return len(made), cap
    finally:
        acceptor.stop()
        listener.close()


def test_closed_connections_are_forgotten_long_before_the_cap() -> None:
    alive, cap = asyncio.run(short_connections(600))
    assert alive <= 2 * SWEEP_FROM < cap
