"""The `govuk-imds` command: the parser, and one catch of ``GovukImdsError`` at the top.

Each command group lives in its own module and registers its subcommands through ``add_commands``; this module
holds only ``main`` and the parser. The light commands (env, exec, status, lock, credential-process, audit) import
neither boto3 nor aiohttp nor keyring: the groups import those inside the handlers that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..config.settings import load_settings
from ..errors import GovukImdsError
from . import accounts, audit, autostart, console, daemon, doctor, keys, sessions, shell, shells
from ._common import Handler

GROUPS = (daemon, sessions, shell, console, keys, doctor, autostart, accounts, shells, audit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if not getattr(arguments, "command", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(os.environ, config_file=arguments.config, port=getattr(arguments, "port", None))
        status = int(arguments.handler(arguments, settings))
        sys.stdout.flush()  # here, where a closed pipe can still be answered, not at interpreter exit
        return status
    except GovukImdsError as exc:
        if arguments.debug:
            raise
        print(f"govuk-imds: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("govuk-imds: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `govuk-imds ... | head`: the reader went away, which is not an error worth a traceback. Point stdout at
        # /dev/null so that Python's own flush at exit does not raise again, and exit as a shell would (SIGPIPE).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govuk-imds",
        description="Short-lived AWS credentials for GOV.UK environments, served on 127.0.0.1 like the ECS endpoint.",
    )
    parser.add_argument("--config", help="govuk-imds config file (default: ~/.config/govuk-imds/config.toml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"govuk-imds {__version__}")
    # `completion` writes its scripts from the whole parser.
    parser.set_defaults(root_parser=parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Handler, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    for group in GROUPS:
        group.add_commands(command)
    return parser
