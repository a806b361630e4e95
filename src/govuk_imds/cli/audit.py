"""``govuk-imds audit [ENVIRONMENT] [--since 2h] [--json]``: who fetched credentials, from the daemon's audit record;
and the guard-rails' lines under ``status`` (each environment's last client, the screen-lock watcher).

A light command: it reads the record's files itself (``daemon/audit.py`` knows their names and format), so it
works with the daemon stopped and imports no SDK, server or keyring.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from ..config.settings import Settings, parse_duration
from ..core.clock import parse_rfc3339
from ..core.timefmt import local_time
from ..errors import ConfigError, InvalidInput
from ._common import AddCommand

#: How much of a User-Agent the table shows (the JSON has it all, redacted).
USER_AGENT_SHOWN = 32
#: How many of a caller's parents the table names.
PARENTS_SHOWN = 3


def add_commands(command: AddCommand) -> None:
    audit = command("audit", cmd_audit, "show which processes fetched credentials, and what they got")
    audit.add_argument("environment", nargs="?", metavar="ENVIRONMENT")
    audit.add_argument("--since", help="only the last span of time, like 2h, 30m or 1d")
    audit.add_argument("--json", action="store_true", help="the records as a JSON list, every field")


def cmd_audit(arguments: argparse.Namespace, settings: Settings) -> int:
    # Here, not at the top: every other command would pay for the record's module (logging, threading) at start.
    from ..daemon.audit import read_records

    if settings.audit is None:
        raise InvalidInput("no audit settings")
    since = None
    if arguments.since is not None:
        try:
            since = datetime.now(UTC) - parse_duration(arguments.since, "--since")
        except ConfigError as exc:
            raise InvalidInput(f"--since takes a span like 2h, 30m or 1d, not {arguments.since!r}") from exc
    name = arguments.environment
    if name and name.startswith(settings.profile_prefix) and len(name) > len(settings.profile_prefix):
        name = name[len(settings.profile_prefix):]
    records, unreadable = [], 0
    for record in read_records(settings.audit.file):
        if record is None:
            unreadable += 1
        elif _wanted(record, name, since):
            records.append(record)
    records.sort(key=lambda record: str(record.get("time", "")))
    if unreadable:
        print(f"govuk-imds: warning: skipped {unreadable} unreadable lines in {settings.audit.file}", file=sys.stderr)
    if arguments.json:
        print(json.dumps(records, indent=1))
        return 0
    if not records:
        off = "" if settings.audit.enabled else "; auditing is off ([audit] enabled = false in your config.toml)"
        print(f"no audit records{f' for {name}' if name else ''}"
              f"{f' in the last {arguments.since}' if since else ''} in {settings.audit.file}{off}")
        return 0
    table = [("TIME", "ENVIRONMENT", "RESULT", "PID", "PROGRAM", "CALLED FROM", "USER AGENT")]
    table += [_row(record) for record in records]
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0


def _wanted(record: dict[str, Any], name: str | None, since: datetime | None) -> bool:
    if name and record.get("environment") != name:
        return False
    if since is None:
        return True
    try:
        return parse_rfc3339(str(record.get("time"))) >= since
    except ValueError:
        return False


def _row(record: dict[str, Any]) -> tuple[str, str, str, str, str, str, str]:
    caller = record.get("caller") or {}
    parents = [str(parent.get("name", "?")).split(" ")[0] for parent in caller.get("parents") or []]
    called_from = " ← ".join(parents[:PARENTS_SHOWN]) + (" ← …" if len(parents) > PARENTS_SHOWN else "")
    if "pid" not in caller:
        called_from = f"(not identified: {caller.get('unknown', 'unknown')})"
    return (
        local_time(record.get("time")),
        str(record.get("environment", "?")),
        str(record.get("result", "?")),
        str(caller.get("pid", "-")),
        str(caller.get("name", "?")),
        called_from,
        str(record.get("user_agent") or "-")[:USER_AGENT_SHOWN],
    )


def guardrail_lines(answer: dict[str, Any]) -> list[str]:
    """What ``status`` adds for the guard-rails: each environment's last client, the screen-lock watcher, and a
    problem with the audit record."""
    lines = []
    for row in answer.get("environments") or []:
        client = row.get("last_client")
        if client:
            who = (f"{client['program']} (pid {client['pid']})" if client.get("pid")
                   else f"a caller that could not be identified ({client.get('problem')})")
            agent = f", {str(client['user_agent']).split(' ')[0]}" if client.get("user_agent") else ""
            lines.append(f"last client of {row['environment']}: {who}{agent} at {local_time(client['at'])}, "
                         f"{client['result']}")
    screen = answer.get("screen_lock") or {}
    if screen.get("environments"):
        sources: dict[str, str] = screen.get("sources") or {}
        watching = [source for source, state in sources.items() if state == "watching"]
        environments = ", ".join(screen["environments"])
        if watching:
            lines.append(f"screen lock: watching {' and '.join(watching)}; it locks {environments}")
        else:
            why = "; ".join(f"{source}: {state}" for source, state in sources.items()) or "not started"
            lines.append(f"screen lock watcher off ({why}): {environments} will not lock with the screen")
    audit = answer.get("audit") or {}
    if audit.get("problem"):
        lines.append(f"the audit record is not being written: {audit['problem']}")
    return lines
