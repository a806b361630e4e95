"""The `govuk-imds` command: the parser, and one catch of ``GovukImdsError`` at the top.

Each command group lives in its own module and registers its subcommands through ``add_commands``; this module
holds only ``main`` and the parser. The light commands (env, exec, status, lock, credential-process, audit) import
neither boto3 nor aiohttp nor keyring: the groups import those inside the handlers that need them.

A command imports only its own group: ``env`` does not pay for the console's, the keys' or init's modules (about
half of the CLI's import time). The whole parser is built for top-level help, for an unknown or misspelt command
(argparse's message lists them all) and for ``completion``, which writes its scripts from it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..config.settings import load_settings
from ..errors import GovukImdsError
from ._common import Handler

#: The command groups, in the order ``--help`` lists their commands.
GROUPS = ("daemon", "sessions", "shell", "console", "keys", "doctor", "autostart", "accounts", "shells", "audit")
#: Which group registers each command (tests/cli/test_parser.py holds it to what the groups really register).
#: ``completion`` is left out on purpose: it needs the whole parser.
COMMAND_GROUPS = {
    **dict.fromkeys(("start", "serve", "stop", "reload"), "daemon"),
    **dict.fromkeys(("unlock", "lock", "status"), "sessions"),
    **dict.fromkeys(("env", "exec", "shell", "credential-process", "profile"), "shell"),
    "console": "console",
    **dict.fromkeys(("add", "import", "rotate-key", "keys", "remove"), "keys"),
    "doctor": "doctor",
    "service": "autostart",
    **dict.fromkeys(("init", "accounts"), "accounts"),
    "prompt": "shells",
    "audit": "audit",
}


def main(argv: Sequence[str] | None = None) -> int:
    group = COMMAND_GROUPS.get(_command_word(sys.argv[1:] if argv is None else argv) or "")
    parser = build_parser(only=group)
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


def _command_word(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``, past the options that come before it; None for ``--help``, ``--version``
    and anything else this cannot be sure of (then the whole parser decides)."""
    words = iter(argv)
    for word in words:
        if word == "--debug" or word.startswith("--config="):
            continue
        if word == "--config":
            next(words, None)
            continue
        return None if word.startswith("-") else word
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser: with ``only``, that group's commands alone."""
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

    for group in GROUPS if only is None else (only,):
        importlib.import_module(f"{__name__}.{group}").add_commands(command)
    return parser
