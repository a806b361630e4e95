"""The `govuk-imds` executable. `credential-process` is run by tools on every credential fetch, and `__complete` by
completion scripts on every TAB, so both take a lean path that skips argparse and every command module; everything
else goes to the full CLI."""

from __future__ import annotations

import sys


def main() -> int:
    arguments = sys.argv[1:]
    if len(arguments) == 2 and arguments[0] == "credential-process":
        from .credential_process import run

        answered = run(arguments[1])
        if answered is not None:
            return answered
    if arguments[:1] == ["__complete"]:
        # A completion script asks for names on every TAB: no argparse, no command modules.
        from .shells.names import main as complete_names

        return complete_names(arguments[1:])
    from .cli import main as full_cli

    return full_cli(arguments)
