"""What `doctor` reports: findings, their severity, the exit status, and the two renderings.

A finding is one line for a person (``message``) and what to type next (``fix``); ``subject`` names what it is about
(an environment, a variable, a file). No secret (key, token, credentials) ever goes into a finding.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


class Status(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    """One thing doctor found: ``fix`` is what to type (or do) next; ``subject`` names what it is about."""

    check: str
    status: Status
    message: str
    fix: str | None = None
    subject: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def ok(check: str, message: str, subject: str | None = None) -> Finding:
    return Finding(check, Status.OK, message, None, subject)


def warning(check: str, message: str, fix: str | None, subject: str | None = None) -> Finding:
    return Finding(check, Status.WARNING, message, fix, subject)


def problem(check: str, message: str, fix: str | None, subject: str | None = None) -> Finding:
    return Finding(check, Status.PROBLEM, message, fix, subject)



def split_hint(text: str, default_fix: str) -> tuple[str, str]:
    """Our error lines read "what happened; what to do": split them into message and fix."""
    message, separator, fix = text.partition("; ")
    return (message, fix) if separator else (text, default_fix)


def exit_status(findings: Iterable[Finding], *, strict: bool = False) -> int:
    """0 when nothing stops a tool from getting credentials; 1 when something does (or, with strict, might)."""
    failing = {Status.PROBLEM, Status.WARNING} if strict else {Status.PROBLEM}
    return 1 if any(finding.status in failing for finding in findings) else 0


MARKS = {Status.OK: "ok  ", Status.WARNING: "warn", Status.PROBLEM: "FAIL"}


def render_text(findings: Sequence[Finding]) -> str:
    lines = []
    for finding in findings:
        fix = f"; fix: {finding.fix}" if finding.fix and finding.status is not Status.OK else ""
        lines.append(f"{MARKS[finding.status]} {finding.message}{fix}")
    problems = sum(finding.status is Status.PROBLEM for finding in findings)
    warnings = sum(finding.status is Status.WARNING for finding in findings)
    if problems or warnings:
        lines.append(f"{_count(problems, 'problem')}, {_count(warnings, 'warning')}")
    else:
        lines.append("all is well")
    return "\n".join(lines)


def render_json(findings: Sequence[Finding], status: int) -> str:
    return json.dumps(
        {
            "ok": status == 0,
            "problems": sum(finding.status is Status.PROBLEM for finding in findings),
            "warnings": sum(finding.status is Status.WARNING for finding in findings),
            "findings": [finding.to_json() for finding in findings],
        },
        indent=2,
    )


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"
