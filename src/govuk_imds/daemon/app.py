"""The composition root: builds the real adapters, wires them together, and runs the daemon until told to stop.

Start-up order matters: harden the process, clean the environment, check the runtime dir, refuse to run twice,
bind the port (a clear error if it is taken), then serve, and only then report ready. Shutdown finishes in-flight
requests, stops the control socket and removes the runtime files that describe a running daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .. import control
from ..aws.clients import isolate_from_environment
from ..aws.sts import Sts, StsIssuer
from ..config.aws_config import load_environments
from ..config.files import atomic_write, ensure_private_dir
from ..config.settings import Settings
from ..core.clock import SystemClock, rfc3339
from ..core.credentials import MfaSession
from ..core.environment import EnvironmentSpec
from ..core.held import Device
from ..errors import AlreadyRunning, ControlError, DaemonNotRunning, GovukImdsError, InvalidInput, PortInUse
from ..keystore.sessions import KeyringSessionStore
from .activation import inherited_listener
from .attention import Attention, CliUnlocker, DesktopNotifier
from .console import console_credentials
from .control_server import start_control_server
from .keeper import SessionKeeper
from .service import Service, keep_cache_enabled
from .state_files import StateFiles
from .tokens import TokenStore
from .web import create_app

log = logging.getLogger(__name__)

Notify = Callable[[str], None]


def harden_process() -> None:
    """No core dumps (they would hold credentials), and on Linux no ptrace attach by other processes."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_dumpable = 4
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def bind_loopback(port: int) -> socket.socket:
    """Listen on 127.0.0.1 only. SO_REUSEADDR lets a restart rebind past TIME_WAIT; SO_REUSEPORT is never set."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(port) from exc
        raise
    listener.listen(1024)
    listener.setblocking(False)
    return listener


class Daemon:
    def __init__(self, settings: Settings, notify: Notify) -> None:
        self.settings = settings
        self._notify = notify
        self._stop = asyncio.Event()
        self._tokens = TokenStore(settings.runtime)
        self._states = StateFiles(settings.runtime)
        self._keeper = SessionKeeper(KeyringSessionStore(settings.keyring_backend))
        self._issuer = StsIssuer(Sts(settings))
        # A tool refused as locked: tell the person at the screen, or start an unlock for them (prompt = "gui").
        self._attention = Attention(
            settings.prompt, settings.fresh_code_for, SystemClock(), DesktopNotifier(os.environ), CliUnlocker(settings)
        )
        self._service = Service(
            self._issuer,
            SystemClock(),
            rotation_margin=settings.rotation_margin,
            on_change=self._states.changed,
            profile_prefix=settings.profile_prefix,
            keeper=self._keeper,
            on_locked_request=self._attention.refused,
        )
        self._started = datetime.now(UTC)

    async def run(self) -> None:
        paths = self.settings.runtime
        ensure_private_dir(paths.root)
        _refuse_second_daemon(self.settings)
        self._states.clear()  # a daemon that died left its last word there; nothing is unlocked now
        # Under systemd socket activation the port is already ours, held even while the daemon restarts.
        listener = inherited_listener(os.environ, os.getpid(), expected_port=self.settings.port)
        if listener is None:
            listener = bind_loopback(self.settings.port)
        self._load_environments(initial=True)
        await self._restore_sessions()
        runner = web.AppRunner(
            create_app(self._service, self._tokens, self.settings.port, self.settings.profile_prefix),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5,
        )
        await runner.setup()
        await web.SockSite(runner, listener).start()
        control_server = await start_control_server(paths.control_socket, self.dispatch)
        maintenance = asyncio.get_running_loop().create_task(self._service.run())
        atomic_write(
            paths.state_file,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "port": self.settings.port,
                    "started": rfc3339(self._started),
                    # The lean credential-process path reads the prefix here rather than parse config.toml.
                    "profile_prefix": self.settings.profile_prefix,
                }
            ).encode(),
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_quietly)
        log.info(
            "serving on http://127.0.0.1:%d/v1/credentials/<environment> (pid %d)", self.settings.port, os.getpid()
        )
        self._notify("READY=1")
        try:
            await self._stop.wait()
        finally:
            self._notify("STOPPING=1")
            log.info("stopping")
            control_server.close()
            await runner.cleanup()  # stops accepting, lets in-flight requests finish
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            await self._attention.close()
            await self._service.close()
            self._states.clear()
            paths.control_socket.unlink(missing_ok=True)
            paths.state_file.unlink(missing_ok=True)

    async def _restore_sessions(self) -> None:
        """Unlock again, with no code, what was unlocked before a restart (before the first request is served)."""
        kept = await self._keeper.load()
        if kept is None:
            self._service.mark_all_locked(
                f"the daemon started and could not read the keyring ({self._keeper.problem}), so no MFA session "
                "came back"
            )
            return
        self._service.restore(kept)

    def _load_environments(self, *, initial: bool) -> list[str]:
        environments = load_environments(self.settings)
        for name, problem in environments.problems.items():
            log.warning("environment %s is unusable: %s", name, problem)
        for name in environments.specs:
            self._tokens.ensure(name)
        self._service.set_environments(environments.specs)
        if not initial:
            log.info("configuration reloaded: %s", ", ".join(environments.names()) or "no environments")
        return environments.names()

    def _reload_quietly(self) -> None:
        try:
            self._load_environments(initial=False)
        except GovukImdsError as exc:
            log.error("reload failed, keeping the previous configuration: %s", exc)

    async def dispatch(self, message: dict[str, Any]) -> dict[str, Any]:
        """Answer one control request. Errors raised here reach the CLI as their one-line message."""
        operation = message.get("op")
        base = {"ok": True, "pid": os.getpid(), "port": self.settings.port}
        if operation == "ping":
            return base
        if operation == "status":
            offset = self._service.clock_offset
            return {
                **base,
                "started": rfc3339(self._started),
                "environments": self._service.status(),
                "held_sessions": self._service.held_status(),
                "clock_offset_seconds": None if offset is None else offset.total_seconds(),
                "sessions_not_kept": self._keeper.problem,
            }
        if operation == "unlock":
            return {**base, **await self._unlock(message)}
        if operation == "lock":
            if message.get("all"):
                names = self._service.names()
                locked = await self._service.lock_all()
            else:
                names = [str(name) for name in message.get("environments", [])]
                for name in names:
                    await self._service.lock(name)
                locked = names
            if message.get("new_tokens"):
                # Only on request: a lock alone keeps the token, so shells holding it work again after the next
                # unlock, and a request racing the lock is told "locked" rather than "wrong token".
                for name in names:
                    self._tokens.rotate(name)
            return {**base, "locked": locked}
        if operation == "console":
            name = str(message.get("environment", ""))
            duration = self.settings.session_duration_for(name)
            return {**base, **await console_credentials(self._service, self._issuer, SystemClock(), name, duration)}
        if operation == "reload":
            return {**base, "environments": self._load_environments(initial=False)}
        if operation == "stop":
            self._stop.set()
            return base
        raise InvalidInput(f"unknown control operation {operation!r}")

    async def _unlock(self, message: dict[str, Any]) -> dict[str, Any]:
        """Unlock with the MFA session sent, or, when none is sent, with the one held for the environments' source
        profile if it serves; otherwise answer ``needs_code`` with the reason in words and change nothing."""
        specs = [EnvironmentSpec.from_wire(item) for item in message.get("environments") or []]
        if not specs:
            raise InvalidInput("malformed unlock request: no environments")
        if len({Device.of(spec) for spec in specs}) != 1:
            raise InvalidInput(
                "these environments use different source profiles or MFA devices; unlock them separately"
            )
        durations = {spec.name: _seconds(message.get("durations", {}).get(spec.name)) for spec in specs}
        for spec in specs:
            self._tokens.ensure(spec.name)
        if message.get("session") is not None:
            session = MfaSession.from_wire(message["session"])
            granted = _seconds(message.get("granted_seconds"))
            return {"results": await self._service.unlock_all(specs, durations, session, granted=granted)}
        explicit = message.get("explicit_seconds")
        fresh = [str(name) for name in message.get("fresh") or []]
        reason = self._service.code_needed_for(
            specs, durations, explicit=None if explicit is None else _seconds(explicit), fresh=fresh
        )
        if reason is not None:
            return {"needs_code": reason}
        return {"results": await self._service.unlock_all(specs, durations), "held": True}


def _seconds(value: object) -> timedelta:
    if type(value) is not int or value <= 0:
        raise InvalidInput("malformed unlock request: a duration is not a positive number of seconds")
    return timedelta(seconds=value)


def _refuse_second_daemon(settings: Settings) -> None:
    try:
        answer = control.request(settings.runtime.control_socket, {"op": "ping"}, timeout=2)
    except (DaemonNotRunning, ControlError):
        return  # nobody answers: whatever is left there is stale and gets replaced
    raise AlreadyRunning(answer.get("pid", "?"))


def serve(settings: Settings, notify: Notify) -> int:
    """Run the daemon in this process until SIGTERM, SIGINT or `govuk-imds stop`."""
    harden_process()
    isolate_from_environment(os.environ)
    keep_cache_enabled(os.environ)
    try:
        asyncio.run(Daemon(settings, notify).run())
    except GovukImdsError as exc:
        log.error("%s", exc)
        notify(f"ERROR={exc}")
        return exc.exit_code
    except OSError as exc:  # the file system or the network said no in a way we did not foresee
        log.exception("could not run the daemon")
        notify(f"ERROR=could not run the daemon: {exc}")
        return 1
    return 0
