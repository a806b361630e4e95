"""What govuk-imds adds to a person's shell: ``completion`` (a TAB-completion script) and ``prompt`` (a prompt
segment showing the environment a shell points at). Both print text to load once from a shell's startup file.

Light commands: the scripts are written from the parser and from files inside the package, nothing else. The names
the completion scripts fetch come from ``govuk-imds __complete``, which ``entry`` answers on a lean path of its own.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..config.settings import Settings
from ..shells.completion import RENDERERS, command_tree
from ..shells.prompt import SNIPPETS, snippet
from ._common import AddCommand


def add_commands(command: AddCommand) -> None:
    completion = command("completion", cmd_completion, "print a TAB-completion script for bash, zsh or fish")
    completion.add_argument("shell", choices=sorted(RENDERERS))
    prompt = command("prompt", cmd_prompt, "print a prompt segment showing this shell's environment")
    prompt.add_argument("shell", choices=list(SNIPPETS))


def cmd_completion(arguments: argparse.Namespace, settings: Settings) -> int:
    tree = command_tree(arguments.root_parser)
    # Complete the name the person typed (a `govuk-imds` on PATH, or a symlink named otherwise).
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0].endswith("govuk-imds") else "govuk-imds"
    sys.stdout.write(RENDERERS[arguments.shell](tree, program))
    return 0


def cmd_prompt(arguments: argparse.Namespace, settings: Settings) -> int:
    sys.stdout.write(snippet(arguments.shell))
    return 0
