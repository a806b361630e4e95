"""Taking connections on the endpoint's socket so that idle or slow ones cannot keep a real client out.

Any local user can open connections and send nothing, or a header byte now and then. Three limits together keep the
endpoint answering:

- **Time.** aiohttp's keep-alive timer closes a connection that has no complete request head ``IDLE_SECONDS``
  after it was accepted or after its last answer; the same timer ends idle keep-alive connections.
- **A cap below the descriptor limit.** ``connection_cap`` keeps ``RESERVED_DESCRIPTORS`` for the daemon's own
  work (the control socket, STS, files), so ``accept`` does not run out of descriptors under a flood.
- **Head-room.** At the cap, the oldest connection that has no request being answered is closed to make room for
  the new one. A real client sends its request right after connecting and is answered long before its connection
  becomes the oldest, so a flood of idle connections only churns through itself.

Accepting is done here rather than by asyncio's server, whose accept loop logs a traceback and pauses a whole
second each time it runs out of descriptors; here such a failure is one count in the refusal summary, room is
made, and accepting resumes after ``RETRY_SECONDS``. This module never reads a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
from collections.abc import Callable

from ..config.locations import DESCRIPTOR_LIMIT
from .refusals import Refusals

#: SDKs send their request head right after connecting and reuse a connection only within a burst of fetches; the
#: ones that pool keep an idle connection for less (Node's agent 5 s, Java's 5 s) or retry a GET on a closed one
#: (botocore, Go). Longer only helps a connection that sends nothing.
IDLE_SECONDS = 10.0
#: Descriptors kept for everything but endpoint connections.
RESERVED_DESCRIPTORS = 64
#: Far above what a laptop's tools open at once (the benchmarks use 256), and small enough to bound the memory.
MAX_CONNECTIONS = 4096
#: Connections taken per readiness event, so a flood cannot starve the answers on connections already open.
ACCEPT_BATCH = 32
RETRY_SECONDS = 0.05
#: The connections remembered are swept of closed ones whenever their number doubles, starting here.
SWEEP_FROM = 64
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def raise_descriptor_limit(wanted: int = DESCRIPTOR_LIMIT) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` towards ``wanted`` as far as the hard limit allows; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # macOS refuses more than OPEN_MAX
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def connection_cap(descriptor_limit: int) -> int:
    """How many endpoint connections may be open at once under ``descriptor_limit``."""
    return max(1, min(MAX_CONNECTIONS, descriptor_limit - RESERVED_DESCRIPTORS - ACCEPT_BATCH))


class Acceptor:
    """Accepts connections from ``listener`` for ``protocol_factory`` (aiohttp's server), at most ``cap`` open."""

    def __init__(
        self,
        listener: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        *,
        cap: int,
        refusals: Refusals,
        in_flight: set[object],
    ) -> None:
        self._listener = listener
        self._factory = protocol_factory
        self._cap = cap
        self._refusals = refusals
        self._in_flight = in_flight
        self._open: dict[asyncio.Protocol, None] = {}  # in the order accepted: the oldest first
        self._sweep_at = SWEEP_FROM
        self._adopting: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener.setblocking(False)
        self._loop.add_reader(self._listener.fileno(), self._accept)

    def stop(self) -> None:
        """Stop accepting; the connections already open are left to aiohttp's shutdown."""
        if self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
        if self._retry is not None:
            self._retry.cancel()

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                connection, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._refusals.add("AcceptFailed")
                if exc.errno in _OUT_OF_RESOURCES:
                    # Fewer descriptors than the cap assumed (the limit was lowered, or the system ran out): fit
                    # under what is there now, close at least one connection, and take a breath.
                    self._cap = min(self._cap, connection_cap(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
                    self._shed(close_one=True)
                    while self._full() and self._shed(close_one=False):
                        pass
                    self._pause()
                    return
                continue  # the client gave up before it was accepted (ECONNABORTED and the like)
            while self._full() and self._shed(close_one=False):
                pass
            if self._full():  # every open connection is being answered: there is no room
                self._refusals.add("TooManyConnections")
                connection.close()
                continue
            self._adopt(connection)

    def _full(self) -> bool:
        return len(self._open) + len(self._adopting) >= self._cap

    def _shed(self, *, close_one: bool) -> bool:
        """Make room: forget the oldest connection not being answered, closing it if it is still open. With
        ``close_one``, go on until one that was open is closed (a descriptor is needed, not just a slot). False
        when there was nothing to shed."""
        while True:
            oldest = next((protocol for protocol in self._open if protocol not in self._in_flight), None)
            if oldest is None:
                return False
            del self._open[oldest]
            if not _closed(oldest):
                _close(oldest)
                self._refusals.add("IdleConnectionClosed")
                return True
            if not close_one:
                return True

    def _adopt(self, connection: socket.socket) -> None:
        assert self._loop is not None
        connection.setblocking(False)
        task = self._loop.create_task(self._connect(connection))
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def _connect(self, connection: socket.socket) -> None:
        assert self._loop is not None
        try:
            _, protocol = await self._loop.connect_accepted_socket(self._factory, connection)
        except OSError:
            connection.close()
            return
        self._open[protocol] = None
        if len(self._open) >= self._sweep_at:
            self._forget_closed()

    def _forget_closed(self) -> None:
        """Drop the connections that have closed since the last sweep. Without this a closed connection stayed
        here until shedding reached it, so after a burst of short connections up to ``cap`` dead aiohttp protocols
        were kept (8 MB measured, docs/benchmarks.md). Swept when the number has doubled since the last sweep: the
        cost per connection stays constant, and the dict holds at most about twice the open connections."""
        self._open = {protocol: None for protocol in self._open if not _closed(protocol)}
        self._sweep_at = max(SWEEP_FROM, 2 * len(self._open))

    def _pause(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._listener.fileno())
        self._retry = self._loop.call_later(RETRY_SECONDS, self.start)


def _closed(protocol: asyncio.Protocol) -> bool:
    return getattr(protocol, "transport", None) is None


def _close(protocol: asyncio.Protocol) -> None:
    force_close = getattr(protocol, "force_close", None)
    if callable(force_close):
        force_close()
