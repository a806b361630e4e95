"""``govuk-imds doctor [ENVIRONMENT]``: the findings of ``doctor/``, as text or JSON, and an exit status."""

from __future__ import annotations

import argparse
import os

from ..config.settings import Settings
from ._common import AddCommand


def add_commands(command: AddCommand) -> None:
    doctor = command("doctor", cmd_doctor, "find out why an AWS tool is not getting credentials, and how to fix it")
    doctor.add_argument("environment", nargs="?", metavar="ENVIRONMENT", help="check this environment only")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.add_argument("--strict", action="store_true", help="exit 1 on warnings too")


def cmd_doctor(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..doctor.diagnose import diagnose
    from ..doctor.findings import exit_status, render_json, render_text

    findings = diagnose(settings, os.environ, arguments.environment)
    status = exit_status(findings, strict=arguments.strict)
    print(render_json(findings, status) if arguments.json else render_text(findings))
    return status
