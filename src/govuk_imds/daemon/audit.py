"""The audit record: one JSON line for every answer given to a client that held an environment's token.

Each line says when, which environment and role, what the client got (served, or refused and why), which process
asked (pid, executable, command line, and its parents up to the login shell or the service manager) and its
User-Agent. Command lines and User-Agents pass ``logs.redact_argv`` / ``logs.redact``; of the answer only its
status and, for a refusal, the message the client got are written: never a credential, a token or an MFA code.
Requests without the right token are not recorded here (a flood of them would only push real records out); the
daemon's log counts them.

The file (``audit.jsonl`` in the state dir, ``config/paths.py``) is 0600 in a 0700 directory, opened for
appending only, and rotated by size: ``audit.jsonl`` → ``audit.jsonl.1`` → ... → ``audit.jsonl.<files-1>``,
the oldest dropped, so it never holds more than ``files × max_size`` bytes. ``govuk-imds audit`` reads it
(``read_records``). A file that cannot be written is logged once and shown by ``status``; the daemon keeps
serving (the record is a witness, not a gate: ``deny_callers`` works without it).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from ..config.files import ensure_private_dir
from ..core.callers import Caller, Process
from .logs import redact, redact_argv

log = logging.getLogger(__name__)

#: What each status means in a record and in ``govuk-imds audit``.
RESULTS = {200: "served", 403: "refused", 404: "unknown", 423: "locked", 500: "error", 503: "unavailable"}
#: How much of a command line a record keeps: the caller's in full (as read), its parents' shortened.
_MAX_ARGUMENTS, _MAX_PARENT_ARGUMENTS, _MAX_ARGUMENT = 64, 16, 256
#: How long the writer gathers records once woken: how late a record may reach the file.
GATHER_SECONDS = 0.05
_ROTATED = re.compile(r"audit\.jsonl\.(\d+)")


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: several requests a second must keep their order."""
    return f"{_second(moment.replace(microsecond=0))}.{moment.microsecond // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _second(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class AuditLog:
    """The file itself: append a line, rotate by size."""

    def __init__(self, path: Path, *, max_size: int, files: int) -> None:
        self.path = path
        self._max_size = max_size
        self._files = files
        self._descriptor: int | None = None
        self._size = 0
        #: Why records are not being written (None: they are).
        self.problem: str | None = None

    def open(self) -> None:
        try:
            ensure_private_dir(self.path.parent)
            self._open()
        except OSError as exc:
            self._fail(f"cannot open {self.path}: {exc.strerror or exc}")
        except Exception as exc:  # UnsafeRuntimeDir: someone else's or a world-readable directory
            self._fail(str(exc))

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(self.path, flags, 0o600)
        info = os.fstat(descriptor)
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            os.close(descriptor)
            raise OSError(f"{self.path} is not a private file of yours; remove it and restart the daemon")
        self._descriptor, self._size, self.problem = descriptor, info.st_size, None

    def write(self, lines: list[bytes]) -> None:
        """Append ``lines`` (each a whole record), rotating first whenever the next one would not fit: one
        system call per run of lines that fits."""
        if self._descriptor is None:
            return
        try:
            chunk: list[bytes] = []
            size = self._size
            for line in lines:
                if size and size + len(line) > self._max_size:
                    self._size += os.write(self._descriptor, b"".join(chunk)) if chunk else 0
                    chunk, size = [], 0
                    self._rotate()
                chunk.append(line)
                size += len(line)
            if chunk:
                self._size += os.write(self._descriptor, b"".join(chunk))
        except OSError as exc:
            self._fail(f"cannot write {self.path}: {exc.strerror or exc}")

    def _rotate(self) -> None:
        self.close()
        if self._files == 1:
            self.path.unlink(missing_ok=True)
        for number in range(self._files - 1, 0, -1):
            older = self.path if number == 1 else self.path.with_name(f"{self.path.name}.{number - 1}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(older, self.path.with_name(f"{self.path.name}.{number}"))
        self._open()

    def _fail(self, problem: str) -> None:
        if self.problem is None:
            log.error("the audit record is not being written: %s", problem)
        self.problem = problem
        self.close()

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


class _Entry(NamedTuple):  # a tuple: made on the request path, once per request
    at: datetime
    environment: str
    role: str | None
    status: int
    caller: Caller | None
    user_agent: str | None
    reason: str | None
    late: bool


class AuditTrail:
    """What the request path calls: one record per answer, and the last client of each environment for ``status``.

    ``record`` only queues the answer; a writer thread of its own encodes the records and writes them, so the
    event loop never waits on the disk (a write can block for tens of ms while the kernel flushes dirty pages).
    Once woken, the writer gathers for ``GATHER_SECONDS`` before writing: under load that is one wake-up and one
    system call per batch instead of a thread switch per request, and when nothing happens it sleeps.
    """

    def __init__(self, file: AuditLog | None) -> None:
        self._file = file
        self._last: dict[str, _Entry] = {}
        self._pending: collections.deque[_Entry] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._writer: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self._file is not None

    @property
    def problem(self) -> str | None:
        return self._file.problem if self._file is not None else None

    def open(self) -> None:
        if self._file is not None:
            self._file.open()
            self._writer = threading.Thread(target=self._write, name="govuk-imds-audit", daemon=True)
            self._writer.start()

    def record(self, *, at: datetime, environment: str, role: str | None, status: int, caller: Caller | None,
               user_agent: str | None, reason: str | None = None, late: bool = False) -> None:
        """Queue one record. ``late``: the caller was found only after the answer had gone (``caller`` None: it
        was never looked for)."""
        entry = _Entry(at, environment, role, status, caller, user_agent, reason, late)
        self._last[environment] = entry
        if self._writer is not None:
            self._pending.append(entry)
            if not self._wake.is_set():
                self._wake.set()

    def last_client(self, environment: str) -> dict[str, Any] | None:
        entry = self._last.get(environment)
        if entry is None:
            return None
        return {"at": timestamp(entry.at), "result": RESULTS.get(entry.status, str(entry.status)),
                "user_agent": redact(entry.user_agent) if entry.user_agent else None, **_summary(entry.caller)}

    def close(self) -> None:
        """Write what is queued, then close the file."""
        if self._writer is not None:
            self._closing = True
            self._wake.set()
            self._writer.join(timeout=10)
            self._writer = None
        if self._file is not None:
            self._file.close()

    def _write(self) -> None:
        assert self._file is not None
        while True:
            self._wake.wait()
            if not self._closing:
                time.sleep(GATHER_SECONDS)
            self._wake.clear()  # before taking the batch: a record queued from now on wakes the next round
            batch: list[_Entry] = []
            with contextlib.suppress(IndexError):
                while True:
                    batch.append(self._pending.popleft())
            try:
                self._file.write([_line(entry) for entry in batch])
            except Exception:  # a bug here must not stop the records that follow, nor the daemon
                log.exception("could not write audit records")
            if self._closing and not self._pending:
                return


def _line(entry: _Entry) -> bytes:
    """One record: its time, then the part that is the same for every answer of a connection, encoded once."""
    return b'{"time": "' + timestamp(entry.at).encode() + b'", ' + _after_time(
        entry.environment, entry.role, entry.status, entry.reason, entry.user_agent, entry.late, entry.caller)


@functools.lru_cache(maxsize=128)
def _after_time(environment: str, role: str | None, status: int, reason: str | None, user_agent: str | None,
                late: bool, caller: Caller | None) -> bytes:
    document: dict[str, Any] = {
        "environment": environment,
        "role": role,
        "status": status,
        "result": RESULTS.get(status, str(status)),
    }
    if reason is not None:
        # Our own message (the 403, 423 or 503 the client got): it names environments, files and AWS's reasons,
        # which name no secret (aws/errors.py); redacting it would mangle the config file's path.
        document["reason"] = reason
    document["user_agent"] = redact(user_agent) if user_agent else None
    if late:
        document["late"] = True  # the caller was found after the answer had gone
    who = caller_json(caller) if caller is not None else '{"unknown": "not looked for"}'
    return f'{json.dumps(document, ensure_ascii=False)[1:-1]}, "caller": {who}}}\n'.encode()


def _summary(caller: Caller | None) -> dict[str, Any]:
    if caller is None or not caller.chain:
        return {"pid": None, "program": None, "problem": caller.problem if caller else "not found yet"}
    first = caller.chain[0]
    return {"pid": first.pid, "program": redact(first.name), "exe": first.exe, "problem": None}


@functools.lru_cache(maxsize=128)
def caller_json(caller: Caller) -> str:
    """The caller's part of a record, encoded once per caller (keep-alive requests reuse it, and its parents are
    encoded once for all the callers they have)."""
    document: dict[str, Any] = {"uid": caller.uid}
    if caller.chain:
        document.update(_process(caller.chain[0], _MAX_ARGUMENTS))
        document["parents"] = [_process(process, _MAX_PARENT_ARGUMENTS) for process in caller.chain[1:]]
        if caller.npm_script is not None:
            document["npm_script"] = redact(caller.npm_script)
    if caller.problem is not None:
        document["unknown" if not caller.chain else "problem"] = caller.problem
    return json.dumps(document, ensure_ascii=False)


@functools.lru_cache(maxsize=256)
def _process(process: Process, arguments: int) -> dict[str, Any]:
    def existing_path(argument: str) -> bool:
        """A path to a file that exists is not a secret, however long (a script, an interpreter)."""
        base = "" if argument.startswith("/") else process.cwd
        return base is not None and len(argument) < 4096 and os.path.exists(os.path.join(base, argument))

    argv = [argument[:_MAX_ARGUMENT] for argument in process.argv[:arguments]]
    return {
        "pid": process.pid,
        "name": redact(process.name),
        "exe": process.exe,
        "argv": redact_argv(argv, keep=existing_path),
        "cwd": process.cwd,
    }


def audit_files(path: Path) -> list[Path]:
    """The live file and its rotated copies, oldest first."""
    rotated: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            match = _ROTATED.fullmatch(entry.name)
            if match and entry.name.startswith(path.name):
                rotated.append((int(match.group(1)), entry))
    return [entry for _, entry in sorted(rotated, reverse=True)] + ([path] if path.exists() else [])


def read_records(path: Path) -> Iterator[dict[str, Any] | None]:
    """Every record, oldest file first; None for a line that is not a record (cut short by a crash, say)."""
    for file in audit_files(path):
        with contextlib.suppress(FileNotFoundError), file.open("rb") as handle:
            for line in handle:
                try:
                    document = json.loads(line)
                except ValueError:
                    yield None
                    continue
                yield document if isinstance(document, dict) else None
