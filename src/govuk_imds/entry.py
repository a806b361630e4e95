"""The `govuk-imds` executable. `credential-process` is run by tools on every credential fetch, so it takes a lean
path that skips argparse and every command module; everything else goes to the full CLI."""

from __future__ import annotations

import sys


def main() -> int:
    arguments = sys.argv[1:]
    if len(arguments) == 2 and arguments[0] == "credential-process":
        from .credential_process import run

        answered = run(arguments[1])
        if answered is not None:
            return answered
    from .cli import main as full_cli

    return full_cli(arguments)
