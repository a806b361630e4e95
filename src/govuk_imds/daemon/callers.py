"""Finding the process behind a connection, once per connection, without holding up the event loop.

Per connection (keep-alive requests after the first pay nothing, the answer is cached on the transport):
- on the event loop, the cheap step: on Linux the kernel's socket table gives the client socket's inode and owner
  in under 10 µs (``Peers.locate``);
- in one worker thread, the search for the process holding that socket and the reading of its parents
  (``Peers.identify``): 0.2-1 ms for a typical client, tens of ms for an old process never seen before.

The lookup must start while the client still waits for its answer: a one-shot client (curl, a Python script) that
has read its answer closes the socket and is gone, and then nothing can find it. The request handler therefore
waits for the lookup, but never longer than a budget (``Budget``): past it, an environment without ``deny_callers``
answers anyway and the audit record is written when the lookup ends; one with ``deny_callers`` refuses (it cannot
tell whether the caller is allowed). docs/benchmarks.md measures what this costs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sys
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from ..core.callers import CLIENT_GONE, Caller, ClientSocket

log = logging.getLogger(__name__)

#: Callers remembered as the first place to look (a long-lived program reconnecting is found in ~60 µs).
RECENT_CALLERS = 16
#: Lookups that may wait for the worker at once. A flood of new connections must not queue searches without end
#: (each costs CPU, and one whose client has gone costs a scan of every process): past this, a connection's
#: caller is recorded as unknown, and an environment with deny_callers refuses it.
MAX_WAITING = 64


@dataclass(frozen=True)
class Budget:
    """How long a request may wait for its caller to be found, in seconds."""

    #: An environment that only records who called: the answer waits no longer than this. A command started a
    #: moment ago is found in about a millisecond; a burst of new connections queues behind one worker thread.
    audit: float = 0.01
    #: An environment with ``deny_callers`` must know before it answers; SDKs give up after about a second.
    deny: float = 0.5


class Peers(Protocol):
    """The platform's way from a connection to the process behind it (``peers_linux``, ``peers_macos``)."""

    def locate(self, peer: tuple[str, int], local: tuple[str, int]) -> ClientSocket | str:
        """The cheap step, on the event loop: the client's socket, or why it cannot be found."""
        ...

    def identify(self, client: ClientSocket, recent: Sequence[int], wanted: Callable[[], bool]) -> Caller:
        """The expensive step, in the worker thread; ``recent`` are pids to try first. ``wanted()`` turns false
        once the connection has closed: nothing can find its caller then, so the search should stop."""
        ...

    def close(self) -> None: ...


def platform_peers() -> Peers | None:
    """This platform's ``Peers``, or None where callers cannot be found (the audit record then says so)."""
    try:
        if sys.platform.startswith("linux"):
            from .peers_linux import LinuxPeers

            return LinuxPeers()
        if sys.platform == "darwin":
            from .peers_macos import MacPeers

            return MacPeers()
    except OSError as exc:
        log.warning("callers of the endpoint cannot be identified on this machine: %s", exc)
    return None


class CallerFinder:
    """``lookup(transport)``: the future of the caller behind a connection, started once and cached on it."""

    def __init__(self, peers: Peers | None, *, max_waiting: int = MAX_WAITING) -> None:
        self._peers = peers
        self._max_waiting = max_waiting
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="govuk-imds-callers")
        self._recent: collections.deque[int] = collections.deque(maxlen=RECENT_CALLERS)
        # Lookups waiting for the worker: submitted (counted on the event loop) less started (counted by the worker).
        self._submitted = self._started = 0
        # asyncio's socket transports can be weakly referenced; the entry goes when the connection does.
        self._by_connection: weakref.WeakKeyDictionary[object, asyncio.Future[Caller]] = weakref.WeakKeyDictionary()

    def lookup(self, transport: asyncio.BaseTransport | None) -> asyncio.Future[Caller]:
        cached = self._by_connection.get(transport) if transport is not None else None
        if cached is not None:
            return cached
        future = self._start(transport)
        if transport is not None:
            self._by_connection[transport] = future
        return future

    def _start(self, transport: asyncio.BaseTransport | None) -> asyncio.Future[Caller]:
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername") if transport is not None else None
        local = transport.get_extra_info("sockname") if transport is not None else None
        if self._peers is None:
            found: ClientSocket | str = "callers cannot be identified on this platform"
        elif not peer or not local:
            found = "the connection had closed"
        else:
            found = self._peers.locate((peer[0], peer[1]), (local[0], local[1]))
        if isinstance(found, str) or self._submitted - self._started >= self._max_waiting:
            why = found if isinstance(found, str) else f"{self._max_waiting} other new connections were waiting"
            future: asyncio.Future[Caller] = loop.create_future()
            future.set_result(Caller(problem=why))
            return future
        self._submitted += 1
        connection = weakref.ref(transport) if transport is not None else None

        def wanted() -> bool:
            """Read from the worker thread: is the connection still open? (a plain flag, safe to read)"""
            current = connection() if connection is not None else None
            return current is not None and not current.is_closing()

        return asyncio.wrap_future(self._worker.submit(self._identify, found, wanted), loop=loop)

    def _identify(self, client: ClientSocket, wanted: Callable[[], bool]) -> Caller:
        """In the worker thread: never raises (a surprise in /proc must not become a refused request)."""
        assert self._peers is not None
        self._started += 1
        if not wanted():
            return Caller(uid=client.uid, problem=CLIENT_GONE)
        try:
            caller = self._peers.identify(client, tuple(self._recent), wanted)
        except Exception as exc:
            log.exception("could not identify the caller of %s:%d", *client.peer)
            return Caller(uid=client.uid, problem=f"internal error while looking ({type(exc).__name__})")
        if caller.pid is not None:
            with contextlib.suppress(ValueError):
                self._recent.remove(caller.pid)
            self._recent.appendleft(caller.pid)
        return caller

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        if self._peers is not None:
            self._peers.close()


async def settle(lookup: asyncio.Future[Caller], budget: float) -> Caller | None:
    """The caller if it is known within ``budget`` seconds, else None (the lookup goes on)."""
    if not lookup.done():
        # asyncio.wait, not wait_for: the lookup must outlive a timeout (its result still goes in the audit).
        await asyncio.wait({lookup}, timeout=budget)
    return lookup.result() if lookup.done() and not lookup.cancelled() else None
