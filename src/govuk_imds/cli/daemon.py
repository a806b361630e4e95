"""The daemon's life: ``start`` (in the background, or through the installed service), ``serve`` (the foreground
form systemd and launchd run), ``stop`` and ``reload``."""

from __future__ import annotations

import argparse
import os
import sys

from .. import control
from ..config.settings import Settings
from ..errors import DaemonError, DaemonNotRunning
from ._common import AddCommand


def add_commands(command: AddCommand) -> None:
    start = command("start", cmd_start, "start the daemon in the background")
    start.add_argument("--port", type=int, help="credential endpoint port on 127.0.0.1")
    serve = command("serve", cmd_serve, "run the daemon in the foreground (for systemd and launchd)")
    serve.add_argument("--port", type=int, help="credential endpoint port on 127.0.0.1")
    command("stop", cmd_stop, "stop the daemon")
    command("reload", cmd_reload, "re-read the AWS config and the guard-rails without dropping unlocked environments")


def cmd_serve(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..daemon import logs
    from ..daemon.app import serve
    from ..daemon.readiness import notifier

    logs.configure(settings.log_level, sys.stderr, os.environ)
    return serve(settings, notifier(os.environ))


def cmd_start(arguments: argparse.Namespace, settings: Settings) -> int:
    import select
    import subprocess

    from ..autostart.platform import installed, start_service
    from ..config.files import ensure_private_dir, open_private_append
    from ..daemon.readiness import READY_FD_VARIABLE

    if installed(os.environ):
        print("\n".join(start_service(settings).lines))
        return 0
    try:
        answer = control.request(settings.runtime.control_socket, {"op": "ping"}, timeout=2)
    except DaemonNotRunning:
        pass
    else:
        print(f"govuk-imds is already running on 127.0.0.1:{answer['port']} (pid {answer['pid']})")
        return 0
    ensure_private_dir(settings.runtime.root)
    log_descriptor = open_private_append(settings.runtime.log_file)
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "govuk_imds"]
    if arguments.config:
        command += ["--config", arguments.config]
    command += ["serve", "--port", str(settings.port)]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_descriptor,
            stderr=log_descriptor,
            pass_fds=(write_end,),
            start_new_session=True,
            env={**os.environ, READY_FD_VARIABLE: str(write_end)},
        )
    finally:
        os.close(write_end)
        os.close(log_descriptor)
    report = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        ready, _, _ = select.select([pipe], [], [], control.START_TIMEOUT_SECONDS)
        if ready:
            report = pipe.read(4096).strip()
    if report == b"READY=1":
        print(
            f"govuk-imds is running on 127.0.0.1:{settings.port} (pid {process.pid}); "
            "next: `govuk-imds unlock <environment>`"
        )
        return 0
    if report.startswith(b"ERROR="):
        raise DaemonError(report[len(b"ERROR=") :].decode(errors="replace"))
    if process.poll() is None:
        raise DaemonError(
            f"the daemon did not become ready within {control.START_TIMEOUT_SECONDS:.0f} s; "
            f"see {settings.runtime.log_file}"
        )
    raise DaemonError(f"the daemon exited during start-up; see {settings.runtime.log_file}")


def cmd_stop(arguments: argparse.Namespace, settings: Settings) -> int:
    import time

    from ..autostart.platform import installed, stop_service

    if installed(os.environ):
        print("\n".join(stop_service().lines))
        return 0
    try:
        answer = control.request(settings.runtime.control_socket, {"op": "stop"}, timeout=5)
    except DaemonNotRunning:
        print("govuk-imds is not running")
        return 0
    pid = int(answer["pid"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"govuk-imds stopped (pid {pid})")
            return 0
        time.sleep(0.05)
    raise DaemonError(f"the daemon (pid {pid}) is still running after 10 s; `kill {pid}` ends it")


def cmd_reload(arguments: argparse.Namespace, settings: Settings) -> int:
    answer = control.request(settings.runtime.control_socket, {"op": "reload"})
    print(f"reloaded; environments: {', '.join(answer['environments']) or 'none'}")
    return 0
