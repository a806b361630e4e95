"""Which process is at the other end of a loopback TCP connection to the daemon, on Linux.

1. The connection to the client socket's inode and owner (``socket_owner``): one netlink ``sock_diag`` request
   for the exact address pair, 6-8 µs however many sockets exist, so this runs on the event loop.
   ``/proc/net/tcp`` is the fallback where netlink is refused; it walks every socket of the network namespace
   (6-50 ms) and so runs in the worker.
2. The inode to a pid. The kernel keeps no reverse index, so ``/proc/<pid>/fd`` links are read, cheapest first:
   the processes that called before (a long-lived boto3 program reconnecting), the pids allocated last (a
   command started a moment ago), then every process of the socket's uid, newest first.
3. The pid to its ``Process`` and parents (``core.callers.Process.ends_chain`` says where to stop).

Steps 2 and 3 read many small files and run in the daemon's worker thread (``daemon/callers.py``). Limits: a
process that made itself non-dumpable (ssh-agent, some sandboxes) has a root-owned fd directory and cannot be
found; a client in another pid namespace has no pid in ours; a socket shared after ``fork()`` has several owners
and the first one found is reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Sequence

from ..core.callers import CLIENT_GONE, MAX_CHAIN, Caller, ClientSocket, Process
from ..socket_owner import SockDiag, owner_from_proc

#: How far below the last allocated pid to look for a client that has just started.
RECENT_PID_WINDOW = 256
#: How long an ancestor's command line, executable and directory are trusted without reading them again.
ANCESTOR_TTL = 10.0
_KNOWN_LIMIT = 1024
_MAX_ARGUMENTS = 64
_MAX_ARGUMENT = 512


class LinuxPeers:
    """``daemon.callers.Peers`` on Linux: ``locate`` on the event loop, ``identify`` in the worker thread."""

    def __init__(self) -> None:
        try:
            self._diag: SockDiag | None = SockDiag()
        except OSError:  # netlink refused (a sandbox, a seccomp filter): /proc/net/tcp in the worker instead
            self._diag = None
        self._known: Known = {}  # used by the worker thread only

    def close(self) -> None:
        if self._diag is not None:
            self._diag.close()

    def locate(self, peer: tuple[str, int], local: tuple[str, int]) -> ClientSocket | str:
        if self._diag is None:
            return ClientSocket(peer, local)
        try:
            found = self._diag.owner(peer, local)
        except OSError as exc:
            return f"the kernel's socket table could not be read ({exc.strerror})"
        if found is None or not found.inode:
            return CLIENT_GONE
        return ClientSocket(peer, local, inode=found.inode, uid=found.uid)

    def identify(
        self, client: ClientSocket, recent: Sequence[int], wanted: Callable[[], bool] = lambda: True
    ) -> Caller:
        inode, uid = client.inode, client.uid
        if inode is None:
            found = owner_from_proc(client.peer, client.local)
            if found is None or not found.inode:
                return Caller(problem=CLIENT_GONE)
            inode, uid = found.inode, found.uid
        pid = find_pid(inode, uid, recent, wanted)
        if pid is None:
            return Caller(uid=uid, problem=_why_not_found(uid) if wanted() else CLIENT_GONE)
        processes = chain(pid, self._known)
        if not processes:
            return Caller(uid=uid, problem="the calling process ended before it could be read")
        return Caller(uid=uid, chain=processes, npm_script=npm_lifecycle_event(pid))


def _why_not_found(uid: int | None) -> str:
    if uid is not None and uid != os.getuid():
        return f"the connection belongs to uid {uid}, whose processes cannot be read"
    return ("no process holds the connection's socket any more, or it cannot be seen (a non-dumpable process, or "
            "one in another pid namespace)")


def find_pid(inode: int, uid: int | None, recent: Sequence[int] = (), wanted: Callable[[], bool] = lambda: True
             ) -> int | None:
    """The process holding socket ``inode``: previous callers, then the newest pids, then every process of
    ``uid`` (newest first); None if no visible process holds it, or once ``wanted()`` says the connection has
    closed (the scan of every process is the expensive part, and would find nothing)."""
    target = f"socket:[{inode}]"
    for pid in recent:
        if _holds(str(pid), target):
            return pid
    found = _among_newest(target, uid)
    if found is not None or not wanted():
        return found
    me, skip = os.getpid(), set(recent)
    pids = sorted((int(name) for name in os.listdir("/proc") if name.isdigit()), reverse=True)
    for pid in pids:
        if pid != me and pid not in skip and _owned_by(str(pid), uid) and _holds(str(pid), target):
            return pid
    return None


def _among_newest(target: str, uid: int | None) -> int | None:
    """Probe ``/proc/<n>`` from the last allocated pid downwards without listing ``/proc``: the caller is usually
    a command that started a moment ago. A thread's id answers with its process's fd table, so a hit is mapped
    to the thread group."""
    try:
        with open("/proc/sys/kernel/ns_last_pid", "rb") as handle:
            last = int(handle.read())
    except (OSError, ValueError):
        return None
    me = os.getpid()
    for number in range(last, max(last - RECENT_PID_WINDOW, 1), -1):
        name = str(number)
        if _owned_by(name, uid) and _holds(name, target):
            pid = _thread_group(name)
            return None if pid == me else pid
    return None


def _owned_by(pid: str, uid: int | None) -> bool:
    try:
        return uid is None or os.stat(f"/proc/{pid}").st_uid == uid
    except OSError:
        return False


def _holds(pid: str, target: str) -> bool:
    directory = f"/proc/{pid}/fd/"
    try:
        descriptors = os.listdir(directory)
    except OSError:
        return False
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            if os.readlink(directory + descriptor) == target:
                return True
    return False


def _thread_group(pid: str) -> int:
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status", "rb") as handle:
        for line in handle:
            if line.startswith(b"Tgid:"):
                return int(line.split()[1])
    return int(pid)


def read_process(pid: int) -> Process | None:
    """What ``/proc/<pid>`` says about a process; None if it is gone. ``exe`` is None for another user's process."""
    stat = _stat(pid)
    return None if stat is None else _read(pid, *stat[:2])


def _stat(pid: int) -> tuple[str, int, int] | None:
    """Its name, parent and start time (which tells it from a later process with the same pid)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    # The name may hold spaces and parentheses: it runs from the first "(" to the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return stat[stat.index("(") + 1 : stat.rindex(")")], int(fields[1]), int(fields[19])


def _read(pid: int, name: str, ppid: int) -> Process | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read(32 * 1024)
    except OSError:
        return None
    arguments = raw.split(b"\0")
    if arguments and not arguments[-1]:
        arguments.pop()
    argv = tuple(item[:_MAX_ARGUMENT].decode("utf-8", "replace") for item in arguments[:_MAX_ARGUMENTS])
    return Process(pid=pid, ppid=ppid, name=name, exe=_link(f"/proc/{pid}/exe"), argv=argv,
                   cwd=_link(f"/proc/{pid}/cwd"))


def _link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # another user's process, a kernel thread, or gone
        return None


#: Ancestors already read, by pid and start time, with when they were read.
Known = dict[tuple[int, int], tuple[float, Process]]


def chain(pid: int, known: Known | None = None) -> tuple[Process, ...]:
    """The process and its parents, up to a login shell, the service manager or pid 1.

    With ``known``, an ancestor read less than ``ANCESTOR_TTL`` seconds ago is not read again, but for its
    ``stat`` (so a new name, like npm's "npm install", and a new parent after its own parent died, are seen at
    once): a burst of commands from one shell then pays for reading each caller alone.
    """
    processes: list[Process] = []
    now = time.monotonic()
    while pid > 0 and len(processes) < MAX_CHAIN:
        stat = _stat(pid)
        if stat is None:
            break
        name, ppid, started = stat
        remembered = known.get((pid, started)) if known is not None and processes else None
        if remembered is not None and now - remembered[0] < ANCESTOR_TTL:
            process: Process | None = dataclasses.replace(remembered[1], name=name, ppid=ppid)
        else:
            process = _read(pid, name, ppid)
            if process is not None and known is not None and processes:
                if len(known) >= _KNOWN_LIMIT:
                    known.clear()
                known[(pid, started)] = (now, process)
        if process is None:
            break
        processes.append(process)
        if process.ends_chain():
            break
        pid = ppid
    return tuple(processes)


def npm_lifecycle_event(pid: int) -> str | None:
    """The ``npm_lifecycle_event`` variable in a process's environment (npm, yarn and pnpm set it for every
    script they run). Only that one value is kept; nothing else of the environment is."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environment = handle.read(256 * 1024)
    except OSError:
        return None
    for item in environment.split(b"\0"):
        if item.startswith(b"npm_lifecycle_event="):
            return item.split(b"=", 1)[1][:64].decode("utf-8", "replace")
    return None
