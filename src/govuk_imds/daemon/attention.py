"""Telling the person at the screen that a tool found an environment locked: a desktop notification, or (with
``prompt = "gui"``) an unlock started for them, so that the tool's next retry succeeds.

The policy (what, and at most once per environment per interval) is ``core.attention``; this module does it in the
background, so the request that was refused has had its 423 long before anything here runs. The unlock is the CLI
(``govuk-imds unlock ENV --prompt gui``) in a process of its own: it reads the long-term key and calls
GetSessionToken itself, so the key never enters the daemon, exactly as when a person types ``unlock``. Whatever the
unlock prints goes to the daemon's log (it never prints a code); its last line, when it fails, goes in a
notification. No bus, no notification server, no display: logged, and the daemon serves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..config.settings import Settings
from ..core.attention import (
    Action,
    Reminders,
    Response,
    client_label,
    failed_notice,
    locked_notice,
    response,
    unlocked_notice,
)
from ..core.clock import Clock
from ..desktop.notify import Notification, show

log = logging.getLogger(__name__)

#: A GUI prompt asks up to three times (something that is not six digits typed), and the unlock then needs the
#: keyring and STS: the unlock process is stopped after three prompts' time and this much more.
UNLOCK_OVERHEAD_SECONDS = 60.0
INTERRUPT_GRACE_SECONDS = 2.0


class Notifier(Protocol):
    async def __call__(self, summary: str, body: str) -> bool: ...


@dataclass(frozen=True)
class UnlockOutcome:
    unlocked: bool
    #: The unlock's own last line on failure (``govuk-imds: ...`` without the prefix); never a code.
    line: str = ""


class Unlocker(Protocol):
    async def __call__(self, environment: str, *, mfa_process: bool) -> UnlockOutcome: ...


class Attention:
    """``refused`` is the service's callback for every request refused as locked; it costs a dictionary look-up
    unless something is due."""

    def __init__(
        self,
        mode: str,
        fresh_code: Callable[[str], bool],
        clock: Clock,
        notifier: Notifier,
        unlocker: Unlocker,
        reminders: Reminders | None = None,
    ) -> None:
        self._mode = mode
        self._fresh_code = fresh_code
        self._clock = clock
        self._notifier = notifier
        self._unlocker = unlocker
        self._reminders = reminders or Reminders()
        self._unlocking: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def refused(self, environment: str, user_agent: str | None) -> None:
        wanted = response(self._mode, self._fresh_code(environment))
        if wanted.action is Action.NOTHING or environment in self._unlocking:
            return
        if not self._reminders.due(environment, self._clock.now()):
            return
        if wanted.action is Action.PROMPT:
            self._unlocking.add(environment)
        self._start(self._act(environment, client_label(user_agent), wanted))

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, environment: str, client: str | None, wanted: Response) -> None:
        try:
            if wanted.action is Action.NOTIFY:
                shown = await self._notifier(*locked_notice(environment, client))
                log.info("%s is locked and %s asked for it; %s", environment, client or "a tool",
                         "the desktop was told" if shown else "no desktop notification could be shown")
                return
            log.info("%s is locked and %s asked for it; starting `govuk-imds unlock %s --prompt gui`%s",
                     environment, client or "a tool", environment, "" if wanted.mfa_process else
                     " (fresh_code: a person types the code, mfa_process is not used)")
            outcome = await self._unlocker(environment, mfa_process=wanted.mfa_process)
            notice = unlocked_notice(environment) if outcome.unlocked else failed_notice(environment, outcome.line)
            await self._notifier(*notice)
        except Exception:  # a courtesy must never take anything else down with it
            log.exception("could not tell the desktop about %s", environment)
        finally:
            self._unlocking.discard(environment)

    async def close(self) -> None:
        """Stop what is under way (an unlock started here is stopped with its prompt)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


class DesktopNotifier:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    async def __call__(self, summary: str, body: str) -> bool:
        return await show(Notification(summary, body), self._environ)


class CliUnlocker:
    """``govuk-imds unlock ENV --prompt gui`` in a process of its own, with this daemon's config file."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._limit = 3 * settings.code_timeout.total_seconds() + UNLOCK_OVERHEAD_SECONDS

    def argv(self, environment: str, *, mfa_process: bool) -> list[str]:
        argv = [sys.executable, "-m", "govuk_imds", "--config", str(self._settings.config_file), "unlock",
                environment, "--prompt", "gui"]
        return argv if mfa_process else [*argv, "--no-mfa-process"]

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The daemon's environment, with the files it has hidden from botocore (``isolate_from_environment``)
        named again, and its runtime dir: the unlock reads the same AWS config and talks to this daemon."""
        environment = dict(environ)
        environment["AWS_CONFIG_FILE"] = str(self._settings.aws_config_file)
        environment["GOVUK_IMDS_RUNTIME_DIR"] = str(self._settings.runtime.root)
        return environment

    async def __call__(self, environment: str, *, mfa_process: bool) -> UnlockOutcome:
        process = await asyncio.create_subprocess_exec(
            *self.argv(environment, mfa_process=mfa_process),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.environment(os.environ), start_new_session=True,
        )
        try:
            async with asyncio.timeout(self._limit):
                out, err = await process.communicate()
        except (TimeoutError, asyncio.CancelledError) as exc:
            await _interrupt(process)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return UnlockOutcome(False, f"the unlock did not finish within {self._limit:g} s and was stopped")
        for line in out.decode("utf-8", "replace").splitlines():
            log.info("unlock %s: %s", environment, line)
        said = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        for line in said:
            log.warning("unlock %s: %s", environment, line)
        last = said[-1].removeprefix("govuk-imds: ") if said else ""
        return UnlockOutcome(process.returncode == 0, last)


async def _interrupt(process: asyncio.subprocess.Process) -> None:
    """Stop the unlock as Ctrl-C would (it then stops its own command and takes its dialog off the screen), and
    kill what is left of its process group if that does not do."""
    for signum, grace in ((signal.SIGINT, INTERRUPT_GRACE_SECONDS), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            async with asyncio.timeout(grace):
                await process.wait()
            return
        except TimeoutError:
            continue
