"""Sessions: ``unlock`` (one MFA code for one or more environments), ``lock`` and ``status``.

``unlock`` is the one command here that touches the long-term key: it reads it from the keyring, calls
GetSessionToken itself and hands only the MFA session to the daemon. keyring and boto3 are imported inside it;
``lock`` and ``status`` are light commands.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import control
from ..config.aws_config import load_environments
from ..config.settings import Settings
from ..core.clock import parse_rfc3339, rfc3339
from ..core.credentials import LongTermKey
from ..core.environment import EnvironmentSpec
from ..core.timefmt import local_time
from ..errors import DaemonNotRunning, InvalidInput, NoKeyStored
from ._common import AddCommand, read_mfa_code
from .audit import guardrail_lines

#: A second `unlock` that waited for a first one to finish does nothing if the first one finished this recently.
RECENT_UNLOCK = timedelta(seconds=60)


def add_commands(command: AddCommand) -> None:
    unlock = command("unlock", cmd_unlock, "turn one MFA code into sessions for one or more environments")
    unlock.add_argument("environments", nargs="+", metavar="ENVIRONMENT")
    unlock.add_argument("--code", help="the six-digit MFA code (otherwise prompted, or read from stdin)")
    lock = command("lock", cmd_lock, "forget environments' sessions and credentials now")
    lock.add_argument("environments", nargs="*", metavar="ENVIRONMENT")
    lock.add_argument("--all", action="store_true", help="lock every environment")
    lock.add_argument(
        "--new-tokens",
        action="store_true",
        help="also give them new endpoint tokens (copies of the old ones, e.g. in a shell's environment, stop working)",
    )
    status = command("status", cmd_status, "show each environment's state")
    status.add_argument("--json", action="store_true")


def cmd_unlock(arguments: argparse.Namespace, settings: Settings) -> int:
    environments = load_environments(settings)
    specs: list[EnvironmentSpec] = []
    for name in arguments.environments:
        spec = environments.resolve(name)
        if spec not in specs:
            specs.append(spec)
    devices = {(spec.source_profile, spec.mfa_serial) for spec in specs}
    if len(devices) > 1:
        raise InvalidInput("these environments use different source profiles or MFA devices; unlock them separately")
    first = specs[0]
    # Before spending a code: is the daemon there, and is there a key?
    control.request(settings.runtime.control_socket, {"op": "ping"}, timeout=5)
    from ..keystore.backends import open_keyring

    key = open_keyring(settings.keyring_backend).get(first.source_profile)
    if key is None:
        raise NoKeyStored(first.source_profile)
    with _unlock_lock(settings):
        # Another `unlock` may have finished while this one waited: AWS would refuse its code a second time, and
        # a second GetSessionToken would gain nothing.
        fresh = _recently_unlocked(settings, [spec.name for spec in specs])
        if fresh:
            print(f"{', '.join(fresh)}: unlocked a moment ago by another command; nothing to do")
            return 0
        code = read_mfa_code(arguments.code, first.mfa_serial)
        return _unlock_with_code(settings, specs, key, code)


def _unlock_with_code(settings: Settings, specs: list[EnvironmentSpec], key: LongTermKey, code: str) -> int:
    from ..aws.clients import isolate_from_environment
    from ..aws.sts import Sts

    isolate_from_environment(os.environ)
    first = specs[0]
    longest = max(settings.session_duration_for(spec.name) for spec in specs)
    mfa_session = Sts(settings).get_session_token(
        key,
        source_profile=first.source_profile,
        mfa_serial=first.mfa_serial,
        code=code,
        duration_seconds=int(longest.total_seconds()),
        region=first.region,
    )
    now = datetime.now(UTC)
    answer = control.request(
        settings.runtime.control_socket,
        {
            "op": "unlock",
            "environments": [spec.to_wire() for spec in specs],
            "session": mfa_session.to_wire(),
            "ends_at": {spec.name: rfc3339(now + settings.session_duration_for(spec.name)) for spec in specs},
        },
    )
    failed = False
    for result in answer["results"]:
        name = result["environment"]
        if result["state"] == "active":
            print(
                f"{name}: unlocked until {local_time(result['session_ends'])}; "
                f"credentials served until {local_time(result['credentials_expire'])} and renewed automatically"
            )
        elif result["state"] == "degraded":
            print(
                f"{name}: unlocked until {local_time(result['session_ends'])}, but the role could not be assumed "
                f"yet ({result['problem']}); the daemon keeps trying, see `govuk-imds status`"
            )
        else:
            failed = True
            print(f"govuk-imds: {name}: could not assume {result['role_arn']}: {result['problem']}", file=sys.stderr)
    return 4 if failed else 0


@contextlib.contextmanager
def _unlock_lock(settings: Settings) -> Iterator[None]:
    """One unlock at a time per user: a second one waits here instead of spending another code."""
    import fcntl

    path = settings.runtime.root / "unlock.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _recently_unlocked(settings: Settings, names: list[str]) -> list[str]:
    rows = control.request(settings.runtime.control_socket, {"op": "status"}, timeout=5)["environments"]
    now = datetime.now(UTC)
    recent = {
        row["environment"]
        for row in rows
        if row["state"] != "locked" and row.get("unlocked_at")
        and now - parse_rfc3339(row["unlocked_at"]) < RECENT_UNLOCK
    }
    return names if set(names) <= recent else []


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
        environments = load_environments(settings)
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
        shown = {key: answer[key] for key in ("pid", "port", "screen_lock", "audit") if key in answer}
        print(json.dumps({"running": True, **shown, "environments": rows}, indent=2))
        return 0
    print(f"govuk-imds running on 127.0.0.1:{answer['port']} (pid {answer['pid']})")
    if not rows:
        print(
            f"no environments yet: add a [profile {settings.profile_prefix}<name>] with role_arn, mfa_serial and "
            f"source_profile to {settings.aws_config_file}, then run `govuk-imds reload`"
        )
        return 0
    table = [("ENVIRONMENT", "STATE", "SESSION ENDS", "CREDENTIALS EXPIRE", "LAST SERVED")]
    for row in rows:
        table.append(
            (
                row["environment"],
                row["state"],
                local_time(row["session_ends"]),
                local_time(row["credentials_expire"]),
                local_time(row["last_served"]),
            )
        )
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip())
    for row in rows:
        if row["ending_soon"]:
            print(
                f"warning: the MFA session for {row['environment']} ends at {local_time(row['session_ends'])}; "
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
    for guardrail in guardrail_lines(answer):
        print(guardrail)
    return 0
