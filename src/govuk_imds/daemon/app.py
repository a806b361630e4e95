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
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .. import control
from ..aws.clients import isolate_from_environment
from ..aws.sts import Sts, StsIssuer
from ..config.aws_config import load_environments
from ..config.files import atomic_write, ensure_private_dir
from ..config.settings import Settings, load_settings
from ..core.clock import SystemClock, parse_rfc3339, rfc3339
from ..core.credentials import MfaSession
from ..core.environment import EnvironmentSpec
from ..core.guards import NO_GUARDS, Guards, screen_lock_reason
from ..errors import AlreadyRunning, ControlError, DaemonNotRunning, GovukImdsError, InvalidInput, PortInUse
from .activation import inherited_listener
from .audit import AuditLog, AuditTrail
from .callers import CallerFinder, platform_peers
from .console import console_credentials
from .control_server import start_control_server
from .guardrails import Guardrails
from .idle import IdleLock
from .service import Service, keep_cache_enabled
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
        self._issuer = StsIssuer(Sts(settings))
        self._clock = SystemClock()
        self._service = Service(
            self._issuer,
            self._clock,
            rotation_margin=settings.rotation_margin,
            profile_prefix=settings.profile_prefix,
        )
        self._started = datetime.now(UTC)
        # The guard-rails (issue 18): who calls, deny_callers, the audit record, idle and screen locks.
        self._guards: dict[str, Guards] = dict(settings.guards)
        audit = settings.audit
        self._trail = AuditTrail(
            AuditLog(audit.file, max_size=audit.max_size, files=audit.files) if audit and audit.enabled else None
        )
        self._finder = CallerFinder(platform_peers())
        self._guardrails = Guardrails(
            self._finder, self._trail, self._clock, guards_for=self._guards_for,
            setting_for=settings.guards_setting, role_of=self._service.role_arn,
        )
        self._screen_lock: Any = None
        self._background: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        paths = self.settings.runtime
        ensure_private_dir(paths.root)
        _refuse_second_daemon(self.settings)
        # Under systemd socket activation the port is already ours, held even while the daemon restarts.
        listener = inherited_listener(os.environ, os.getpid(), expected_port=self.settings.port)
        if listener is None:
            listener = bind_loopback(self.settings.port)
        self._load_environments(initial=True)
        self._trail.open()
        runner = web.AppRunner(
            create_app(self._service, self._tokens, self.settings.port, self.settings.profile_prefix,
                       self._guardrails),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5,
        )
        await runner.setup()
        await web.SockSite(runner, listener).start()
        control_server = await start_control_server(paths.control_socket, self.dispatch)
        maintenance = asyncio.get_running_loop().create_task(self._service.run())
        self._background.append(asyncio.get_running_loop().create_task(IdleLock(
            self._service, self._clock, self._guards_for).run()))
        self._watch_screen_if_wanted()
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
            for task in self._background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._service.close()
            self._finder.close()
            self._trail.close()
            paths.control_socket.unlink(missing_ok=True)
            paths.state_file.unlink(missing_ok=True)

    def _load_environments(self, *, initial: bool) -> list[str]:
        environments = load_environments(self.settings)
        for name, problem in environments.problems.items():
            log.warning("environment %s is unusable: %s", name, problem)
        for name in environments.specs:
            self._tokens.ensure(name)
        self._service.set_environments(environments.specs)
        if not initial:
            # Guard-rails may change without a restart; the rest of config.toml needs one.
            self._guards = dict(load_settings(os.environ, config_file=str(self.settings.config_file)).guards)
            self._watch_screen_if_wanted()
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
            rows = self._service.status()
            for row in rows:
                row["last_client"] = self._trail.last_client(row["environment"])
            return {**base, "started": rfc3339(self._started), "environments": rows, **self._guard_status()}
        if operation == "unlock":
            return {**base, "results": await self._unlock(message)}
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

    # -- the guard-rails -----------------------------------------------------------------------------------------

    def _guards_for(self, name: str) -> Guards:
        return self._guards.get(name, NO_GUARDS)

    def _watch_screen_if_wanted(self) -> None:
        """Start watching for screen locks once an environment asks for it (at start, or after a reload)."""
        if self._screen_lock is not None or not any(guards.lock_on_screen_lock for guards in self._guards.values()):
            return
        if sys.platform == "darwin":
            from .screen_lock_macos import MacScreenLockWatcher

            self._screen_lock = MacScreenLockWatcher(self._screen_locked)
        else:
            try:
                from .screen_lock import ScreenLockWatcher
            except ImportError as exc:  # jeepney comes with the keyring's SecretStorage on Linux, but may be absent
                log.warning("lock_on_screen_lock cannot work: %s", exc)
                self._screen_lock = _Off(f"off: D-Bus cannot be read ({exc})")
                return
            self._screen_lock = ScreenLockWatcher(self._screen_locked, os.environ)
        self._background.append(asyncio.get_running_loop().create_task(self._screen_lock.run()))

    async def _screen_locked(self, event: str) -> None:
        reason = screen_lock_reason(event, self._clock.now())
        for name in self._service.names():
            unlocked_at, _ = self._service.activity(name)
            if self._guards_for(name).lock_on_screen_lock and unlocked_at is not None:
                await self._service.lock(name, reason)

    def _guard_status(self) -> dict[str, Any]:
        wanted = sorted(name for name, guards in self._guards.items() if guards.lock_on_screen_lock)
        return {
            "screen_lock": {"environments": wanted,
                            "sources": self._screen_lock.status() if self._screen_lock is not None else {}},
            "audit": {"enabled": self._trail.enabled, "problem": self._trail.problem,
                      "file": str(self.settings.audit.file) if self.settings.audit is not None else None},
        }

    async def _unlock(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        mfa_session = MfaSession.from_wire(message.get("session"))
        specs = [EnvironmentSpec.from_wire(item) for item in message.get("environments", [])]
        ends: dict[str, Any] = message.get("ends_at", {})
        for spec in specs:
            self._tokens.ensure(spec.name)

        async def unlock_one(spec: EnvironmentSpec) -> dict[str, Any]:
            try:
                ends_at = min(parse_rfc3339(str(ends[spec.name])), mfa_session.expiration)
            except (KeyError, ValueError) as exc:
                raise InvalidInput("malformed unlock request") from exc
            return await self._service.unlock(spec, mfa_session, ends_at)

        return list(await asyncio.gather(*(unlock_one(spec) for spec in specs)))


class _Off:
    """A screen-lock watcher that cannot run, and says why in `status`."""

    def __init__(self, why: str) -> None:
        self._why = why

    def status(self) -> dict[str, str]:
        return {"watcher": self._why}


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
