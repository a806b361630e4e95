"""The composition root: builds the real adapters, wires them together, and runs the daemon until told to stop.

Start-up order matters: harden the process, clean the environment, check the runtime dir, refuse to run twice,
take the port (from the service manager, or bind it: a clear error if it is taken), decide whether the token files
can be trusted (only on the very socket the previous daemon served on), then serve, and only then report ready.
Shutdown finishes in-flight requests, stops the control socket and removes the runtime files that describe a
running daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
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
from ..config.aws_config import Environments, load_environments
from ..config.files import atomic_write, ensure_private_dir
from ..config.settings import Settings, load_settings
from ..core.clock import SystemClock, rfc3339
from ..core.credentials import MfaSession
from ..core.environment import EnvironmentSpec
from ..core.guards import NO_GUARDS, Guards, screen_lock_reason
from ..core.held import Device
from ..core.shapes import ENVIRONMENT_NAME
from ..errors import AlreadyRunning, ControlError, DaemonNotRunning, GovukImdsError, InvalidInput, PortInUse
from ..hardening import keep_memory_private
from ..keystore.sessions import KeyringSessionStore
from .activation import identity, inherited_listener, launchd_listener
from .admission import IDLE_SECONDS, Acceptor, connection_cap, raise_descriptor_limit
from .attention import Attention, CliUnlocker, DesktopNotifier
from .audit import AuditLog, AuditTrail
from .callers import CallerFinder, platform_peers
from .console import console_credentials
from .control_server import start_control_server
from .guardrails import Guardrails
from .idle import IdleLock
from .keeper import SessionKeeper
from .refusals import Refusals
from .service import Service, keep_cache_enabled
from .state_files import StateFiles
from .tokens import TokenStore
from .web import create_app

log = logging.getLogger(__name__)

Notify = Callable[[str], None]


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
        self._clock = SystemClock()
        # A tool refused as locked: tell the person at the screen, or start an unlock for them (prompt = "gui").
        self._attention = Attention(
            settings.prompt, settings.fresh_code_for, self._clock, DesktopNotifier(os.environ), CliUnlocker(settings)
        )
        self._service = Service(
            self._issuer,
            self._clock,
            rotation_margin=settings.rotation_margin,
            on_change=self._states.changed,
            profile_prefix=settings.profile_prefix,
            keeper=self._keeper,
            on_locked_request=self._attention.refused,
        )
        self._started = datetime.now(UTC)
        self._reloading = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
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

    async def run(self) -> None:
        paths = self.settings.runtime
        ensure_private_dir(paths.root)
        _refuse_second_daemon(self.settings)
        self._states.clear()  # a daemon that died left its last word there; nothing is unlocked now
        descriptors = raise_descriptor_limit()
        # Under socket activation the port is already ours, held by systemd or launchd even while no daemon runs.
        port = self.settings.port
        listener = inherited_listener(os.environ, os.getpid(), expected_port=port) or launchd_listener(
            expected_port=port
        )
        held = listener is not None
        if listener is None:
            listener = bind_loopback(port)
        if self._tokens.start_serving_on(identity(listener) if held else None):
            log.info("tokens kept: the service manager held the port since the previous daemon")
        else:
            log.info("new tokens for every environment: nobody can vouch for the port while no daemon held it")
        self._adopt(load_environments(self.settings), initial=True)
        await self._restore_sessions()
        self._trail.open()
        refusals = Refusals()
        refusals.absorb_aiohttp_rejections()
        in_flight: set[object] = set()
        runner = web.AppRunner(
            create_app(
                self._service,
                self._tokens,
                port,
                self.settings.profile_prefix,
                refusals=refusals,
                in_flight=in_flight,
                guardrails=self._guardrails,
            ),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5,
            keepalive_timeout=IDLE_SECONDS,
        )
        await runner.setup()
        assert runner.server is not None
        acceptor = Acceptor(
            listener, runner.server, cap=connection_cap(descriptors), refusals=refusals, in_flight=in_flight
        )
        acceptor.start()
        control_server = await start_control_server(paths.control_socket, self.dispatch)
        maintenance = asyncio.get_running_loop().create_task(self._service.run())
        self._background.add(asyncio.get_running_loop().create_task(IdleLock(
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
        loop.add_signal_handler(signal.SIGHUP, self._reload_in_background)
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
            acceptor.stop()
            await runner.cleanup()  # lets in-flight requests finish
            listener.close()
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            await self._attention.close()
            for task in list(self._background):  # a finished task takes itself out of the set
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._service.close()
            self._states.clear()
            self._finder.close()
            self._trail.close()
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

    def _adopt(self, environments: Environments, *, initial: bool) -> list[str]:
        for name, problem in environments.problems.items():
            log.warning("environment %s is unusable: %s", name, problem)
        self._tokens.ensure_all(list(environments.specs))
        self._service.set_environments(environments.specs)
        if not initial:
            log.info("configuration reloaded: %s", ", ".join(environments.names()) or "no environments")
        return environments.names()

    async def _reload(self) -> list[str]:
        """Re-read the AWS config in a worker thread: a huge file must not stop the endpoint answering meanwhile."""
        async with self._reloading:
            environments = await asyncio.to_thread(load_environments, self.settings)
            await asyncio.to_thread(self._tokens.ensure_all, list(environments.specs))
            # Guard-rails may change without a restart; the rest of config.toml needs one.
            settings = await asyncio.to_thread(load_settings, os.environ, config_file=str(self.settings.config_file))
            self._guards = dict(settings.guards)
            self._watch_screen_if_wanted()
            return self._adopt(environments, initial=False)

    def _reload_in_background(self) -> None:
        async def reload() -> None:
            try:
                await self._reload()
            except GovukImdsError as exc:
                log.error("reload failed, keeping the previous configuration: %s", exc)

        task = asyncio.get_running_loop().create_task(reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def dispatch(self, message: dict[str, Any]) -> dict[str, Any]:
        """Answer one control request. Errors raised here reach the CLI as their one-line message."""
        operation = message.get("op")
        base = {"ok": True, "pid": os.getpid(), "port": self.settings.port}
        if operation == "ping":
            return base
        if operation == "status":
            offset = self._service.clock_offset
            rows = self._service.status()
            for row in rows:
                row["last_client"] = self._trail.last_client(row["environment"])
            return {
                **base,
                "started": rfc3339(self._started),
                "environments": rows,
                "held_sessions": self._service.held_status(),
                "clock_offset_seconds": None if offset is None else offset.total_seconds(),
                "sessions_not_kept": self._keeper.problem,
                **self._guard_status(),
            }
        if operation == "unlock":
            return {**base, **await self._unlock(message)}
        if operation == "lock":
            if message.get("all"):
                names = self._service.names()
                locked = await self._service.lock_all()
            else:
                names = _names(message.get("environments", []), "lock")
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
            return {**base, "environments": await self._reload()}
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
        self._background.add(asyncio.get_running_loop().create_task(self._screen_lock.run()))

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
        given = message.get("durations")
        if not isinstance(given, dict):
            raise InvalidInput("malformed unlock request: no durations")
        durations = {spec.name: _seconds(given.get(spec.name)) for spec in specs}
        # The whole request is checked before anything changes: a malformed one leaves no session and no file.
        session = None if message.get("session") is None else MfaSession.from_wire(message["session"])
        granted = None if session is None else _seconds(message.get("granted_seconds"))
        explicit = None if message.get("explicit_seconds") is None else _seconds(message["explicit_seconds"])
        fresh = _names(message.get("fresh") or [], "unlock")
        for spec in specs:
            self._tokens.ensure(spec.name)
        if session is not None:
            return {"results": await self._service.unlock_all(specs, durations, session, granted=granted)}
        reason = self._service.code_needed_for(specs, durations, explicit=explicit, fresh=fresh)
        if reason is not None:
            return {"needs_code": reason}
        return {"results": await self._service.unlock_all(specs, durations), "held": True}


#: No duration the CLI sends is longer than GetSessionToken's 36 hours; far longer ones would overflow a datetime.
_LONGEST_SECONDS = 40 * 24 * 3600


def _seconds(value: object) -> timedelta:
    if type(value) is not int or not 0 < value <= _LONGEST_SECONDS:
        raise InvalidInput("malformed unlock request: a duration is not a positive number of seconds")
    return timedelta(seconds=value)


def _names(value: object, operation: str) -> list[str]:
    names = value if isinstance(value, list) else [None]
    if not all(isinstance(name, str) and ENVIRONMENT_NAME.fullmatch(name) for name in names):
        raise InvalidInput(f"malformed {operation} request: environments must be a list of environment names")
    return [str(name) for name in names]


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
    keep_memory_private()
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
