"""The CLI imports only the group of the command it runs: the map from command to group must name every command
the groups register, and the partial parser must read a command line exactly as the whole one does."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys

import pytest

from govuk_imds.cli import COMMAND_GROUPS, GROUPS, _command_word, build_parser


def commands(parser: argparse.ArgumentParser) -> set[str]:
    [subparsers] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return set(subparsers.choices)


def test_every_command_is_mapped_to_the_group_that_registers_it() -> None:
    registered = {name: group for group in GROUPS for name in commands(build_parser(only=group))}
    assert registered == {**COMMAND_GROUPS, "completion": "shells"}
    assert set(registered) == commands(build_parser())


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["env", "production"], "env"),
        (["--debug", "status"], "status"),
        (["--config", "/x/config.toml", "--debug", "exec", "production", "--", "ls"], "exec"),
        (["--config=/x/config.toml", "lock"], "lock"),
        (["--help"], None),
        (["--version"], None),
        (["--config"], None),
        ([], None),
    ],
)
def test_the_command_word_is_found_past_the_options_before_it(argv: list[str], word: str | None) -> None:
    assert _command_word(argv) == word


def test_a_partial_parser_reads_a_command_line_as_the_whole_one_does() -> None:
    argv = ["--debug", "exec", "production", "--no-unlock", "--", "aws", "s3", "ls"]
    whole = vars(build_parser().parse_args(argv))
    partial = vars(build_parser(only="shell").parse_args(argv))
    whole.pop("root_parser"), partial.pop("root_parser")
    assert whole == partial


def test_a_light_command_imports_no_other_group() -> None:
    script = (
        "import sys\n"
        "from govuk_imds.cli import main\n"
        "try:\n    main(['env', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(name for name in sys.modules if name.startswith('govuk_imds.cli.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    loaded = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    groups = {name.rsplit(".", 1)[1] for name in loaded} & set(GROUPS)
    assert groups == {"shell"}
