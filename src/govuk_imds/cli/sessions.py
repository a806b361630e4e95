"""Sessions: ``unlock`` (one MFA code for one or more environments), ``lock`` and ``status``.

``unlock`` is the one command here that touches the long-term key: it reads it from the keyring, calls
GetSessionToken itself and hands only the MFA session to the daemon. It first keeps its memory private (no core
dump, no ptrace: ``hardening``) and reads the key only once the code is typed. keyring and boto3 are imported
inside it; ``lock`` and ``status`` are light commands.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from .. import control
from ..config.aws_config import Environments, load_environments
from ..config.settings import Settings, checked_session_duration, parse_duration
from ..core.clock import parse_rfc3339
from ..core.credentials import LongTermKey, MfaSession
from ..core.environment import EnvironmentSpec
from ..core.held import Device
from ..core.shapes import role_arn_parts
from ..core.skew import describe, worth_telling
from ..core.timefmt import local_time, span
from ..errors import DaemonNotRunning, InvalidInput, NoKeyStored
from ..hardening import keep_memory_private
from ._common import AddCommand
from .audit import guardrail_lines
from .codes import add_code_options


def add_commands(command: AddCommand) -> None:
    unlock = command("unlock", cmd_unlock, "unlock environments, with the held MFA session or one new MFA code")
    unlock.add_argument("environments", nargs="+", metavar="ENVIRONMENT")
    add_code_options(unlock, prompt=True)
    unlock.add_argument(
        "--duration",
        help="how long this unlock lasts (15m-36h, e.g. 3h or 1h30m) instead of each environment's session_duration; "
        "longer than the held MFA session has left needs a new code",
    )
    lock = command("lock", cmd_lock, "forget environments' sessions and credentials now")
    lock.add_argument("environments", nargs="*", metavar="ENVIRONMENT")
    lock.add_argument("--all", action="store_true", help="lock every environment and forget every MFA session")
    lock.add_argument(
        "--new-tokens",
        action="store_true",
        help="also give them new endpoint tokens (copies of the old ones, e.g. in a shell's environment, stop working)",
    )
    status = command("status", cmd_status, "show each environment's state")
    status.add_argument("--json", action="store_true")


def cmd_unlock(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..codes.sources import checked_code, read_code
    from .codes import code_sources

    keep_memory_private()
    # A code typed on the command line is checked before anything else, so a typo is never mistaken for anything.
    given_code = checked_code(arguments.code) if arguments.code is not None else None
    explicit = _duration_flag(arguments.duration)
    environments = load_environments(settings)
    specs: list[EnvironmentSpec] = []
    for name in arguments.environments:
        spec = environments.resolve(name)
        if spec not in specs:
            specs.append(spec)
    devices = {Device.of(spec) for spec in specs}
    if len(devices) > 1:
        raise InvalidInput("these environments use different source profiles or MFA devices; unlock them separately")
    device = devices.pop()
    durations = {spec.name: explicit or settings.session_duration_for(spec.name) for spec in specs}
    request: dict[str, Any] = {
        "op": "unlock",
        "environments": [spec.to_wire() for spec in specs],
        "durations": {name: int(duration.total_seconds()) for name, duration in durations.items()},
        "explicit_seconds": int(explicit.total_seconds()) if explicit else None,
        "fresh": [spec.name for spec in specs if settings.fresh_code_for(spec.name)],
    }
    socket_path = settings.runtime.control_socket
    control.request(socket_path, {"op": "ping"}, timeout=5)  # before anything is asked of the person
    with _unlock_lock(settings):
        # One unlock at a time: one that waited here finds the MFA session the other one just made, and uses it.
        answer = control.request(socket_path, request)
        if "needs_code" not in answer:
            print(f"no MFA code needed: using the MFA session held for {device}")
            _note_unused_code(arguments.code)
            return _report(answer["results"], durations)
        from ..keystore.backends import open_keyring

        store = open_keyring(settings.keyring_backend)
        if not store.holds(device.source_profile):  # before the person is asked for a code
            raise NoKeyStored(device.source_profile)
        print(f"an MFA code is needed: {answer['needs_code']}", flush=True)
        sources = code_sources(settings, specs, given=given_code, mfa_process=not arguments.no_mfa_process,
                               prompt=arguments.prompt, stdin=sys.stdin)
        code = read_code(sources, _no_code_fix(specs))
        key = store.get(device.source_profile)  # as late as it can be: after the code, right before it is used
        if key is None:
            raise NoKeyStored(device.source_profile)
        # As long as the longest session of any environment of this source profile, so that every later unlock of
        # any of them (and of any role) reuses it: one code a day.
        granted = max([explicit or timedelta(0), *_session_durations(settings, environments, device)])
        session = _get_session_token(settings, key, specs[0], code, granted)
        answer = control.request(
            socket_path, {**request, "session": session.to_wire(), "granted_seconds": int(granted.total_seconds())}
        )
        return _report(answer["results"], durations)


def _no_code_fix(specs: list[EnvironmentSpec]) -> str:
    names = " ".join(spec.name for spec in specs)
    return (f"run `govuk-imds unlock {names}` in a terminal, pass --code, pipe the code in, or set mfa_process "
            '(README: "MFA codes")')


def _duration_flag(text: str | None) -> timedelta | None:
    if text is None:
        return None
    return checked_session_duration(parse_duration(text, "--duration"), f"--duration {text}")


def _session_durations(settings: Settings, environments: Environments, device: Device) -> list[timedelta]:
    return [
        settings.session_duration_for(name)
        for name, spec in environments.specs.items()
        if Device.of(spec) == device
    ]


def _get_session_token(
    settings: Settings, key: LongTermKey, spec: EnvironmentSpec, code: str, duration: timedelta
) -> MfaSession:
    from ..aws.clients import isolate_from_environment
    from ..aws.sts import Sts

    isolate_from_environment(os.environ)
    return Sts(settings).get_session_token(
        key,
        source_profile=spec.source_profile,
        mfa_serial=spec.mfa_serial,
        code=code,
        duration_seconds=int(duration.total_seconds()),
        region=spec.region,
    )


def _note_unused_code(flag: str | None) -> None:
    """Say so when a code was given and not needed: on --code, or waiting on stdin (never block to find out)."""
    if flag is not None:
        print("the code given with --code was not needed and was not used")
        return
    if sys.stdin is None or sys.stdin.closed or sys.stdin.isatty():
        return
    try:
        ready, _, _ = select.select([sys.stdin], [], [], 0)
    except (OSError, ValueError):
        return
    if ready and sys.stdin.readline().strip():
        print("the code on stdin was not needed and was not used")


def _report(results: list[dict[str, Any]], durations: dict[str, timedelta]) -> int:
    """What each unlock came to, truthfully: when it ends and why then; credentials renewed until then."""
    failed = False
    for result in results:
        name = result["environment"]
        ends = result["session_ends"]
        if result["state"] in ("active", "degraded"):
            why = _why_it_ends_then(result, durations[name])
            if result["state"] == "active":
                print(f"{name}: unlocked until {local_time(ends)}{why}; role credentials are renewed until then")
            else:
                print(
                    f"{name}: unlocked until {local_time(ends)}{why}, but the role could not be assumed yet "
                    f"({result['problem']}); the daemon keeps trying, see `govuk-imds status`"
                )
        else:
            failed = True
            print(f"govuk-imds: {name}: could not assume {result['role_arn']}: {result['problem']}", file=sys.stderr)
    return 4 if failed else 0


def _why_it_ends_then(result: dict[str, Any], asked: timedelta) -> str:
    """When the MFA session cuts an unlock short, say so and how to get the whole of it."""
    ends, mfa_ends, unlocked_at = result["session_ends"], result["mfa_session_ends"], result["unlocked_at"]
    if not (ends and mfa_ends and unlocked_at) or ends != mfa_ends:
        return ""
    short_by = parse_rfc3339(unlocked_at) + asked - parse_rfc3339(ends)
    if short_by < timedelta(minutes=1):
        return ""
    return (
        f", when the MFA session for {result['source_profile']} ends ({span(short_by)} short of {span(asked)}; "
        f"`govuk-imds unlock {result['environment']} --duration {_flag(asked)}` spends a new code for all of it)"
    )


def _flag(duration: timedelta) -> str:
    hours, rest = divmod(int(duration.total_seconds()), 3600)
    minutes = rest // 60
    return f"{hours}h{minutes}m" if hours and minutes else f"{hours}h" if hours else f"{minutes}m"


@contextlib.contextmanager
def _unlock_lock(settings: Settings) -> Iterator[None]:
    """One unlock at a time per user: a second one waits here instead of spending another code, and says so (the
    first may be waiting for a person: a prompt in another terminal, or one the daemon opened on the screen)."""
    import fcntl

    path = settings.runtime.root / "unlock.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for another unlock to finish (it may be asking for a code in another terminal or on "
                  "your screen)", flush=True)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def cmd_lock(arguments: argparse.Namespace, settings: Settings) -> int:
    if arguments.all == bool(arguments.environments):
        raise InvalidInput("name the environments to lock, or use --all")
    socket_path = settings.runtime.control_socket
    new_tokens = bool(arguments.new_tokens)
    if arguments.all:
        answer = control.request(socket_path, {"op": "lock", "all": True, "new_tokens": new_tokens}, timeout=10)
        locked = answer["locked"]
        print(f"locked: {', '.join(locked)}" if locked else "nothing was unlocked")
    else:
        environments = load_environments(settings, only=arguments.environments)
        names = [environments.canonical(name) for name in arguments.environments]
        control.request(socket_path, {"op": "lock", "environments": names, "new_tokens": new_tokens}, timeout=10)
        print(f"locked: {', '.join(names)}")
    if new_tokens:
        print('new tokens written; shells that ran `eval "$(govuk-imds env ENV)"` before must run it again')
    return 0


def cmd_status(arguments: argparse.Namespace, settings: Settings) -> int:
    try:
        answer = control.request(settings.runtime.control_socket, {"op": "status"}, timeout=5)
    except DaemonNotRunning:
        if arguments.json:
            print(json.dumps({"running": False, "environments": []}))
            return DaemonNotRunning.exit_code
        raise
    rows: list[dict[str, Any]] = answer["environments"]
    if arguments.json:
        print(json.dumps({"running": True, **{key: value for key, value in answer.items() if key != "ok"}}, indent=2))
        return 0
    print(f"govuk-imds running on 127.0.0.1:{answer['port']} (pid {answer['pid']})")
    if not rows:
        print(
            f"no environments yet: add a [profile {settings.profile_prefix}<name>] with role_arn, mfa_serial and "
            f"source_profile to {settings.aws_config_file}, then run `govuk-imds reload`"
        )
        return 0
    table = [
        ("ENVIRONMENT", "STATE", "ACCOUNT", "ROLE", "SESSION ENDS", "MFA SESSION ENDS", "CREDENTIALS EXPIRE",
         "LAST SERVED")
    ]
    for row in rows:
        account, role = role_arn_parts(str(row.get("role_arn"))) or ("-", "-")  # as the old tool's `-d` showed
        table.append(
            (
                row["environment"],
                row["state"],
                account,
                role,
                local_time(row["session_ends"]),
                local_time(row.get("mfa_session_ends")),
                local_time(row["credentials_expire"]),
                local_time(row["last_served"]),
            )
        )
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip())
    for held in answer.get("held_sessions") or []:
        users = ", ".join(held["environments"]) or "no environment now; the next unlock uses it with no code"
        print(f"MFA session for {held['source_profile']}: until {local_time(held['ends'])}, used by {users}")
    for row in rows:
        if row["ending_soon"]:
            print(
                f"warning: the session of {row['environment']} ends at {local_time(row['session_ends'])}; "
                f"run `govuk-imds unlock {row['environment']}` when it suits you"
            )
        if row["problem"]:  # why it is degraded, or why it was locked ("locked because the screen locked at ...")
            print(f"{row['environment']}: {row['problem']}")
        refusal = row.get("refused_while_locked")
        if refusal and row["state"] == "locked":
            client = refusal["client"] or "a client that sent no User-Agent"
            print(
                f"{row['environment']}: locked, and refused {client} at {local_time(refusal['at'])}; "
                f"run `govuk-imds unlock {row['environment']}`"
            )
    offset = answer.get("clock_offset_seconds")
    if isinstance(offset, int | float) and worth_telling(timedelta(seconds=offset)):
        print(
            f"clock: this machine's clock is {describe(timedelta(seconds=offset))} (measured from STS's answers); "
            "govuk-imds judges lifetimes on AWS's clock, but set yours right: sudo timedatectl set-ntp true"
        )
    if answer.get("sessions_not_kept"):
        print(f"MFA sessions are not kept across a restart of the daemon: {answer['sessions_not_kept']}")
    for guardrail in guardrail_lines(answer):
        print(guardrail)
    return 0
