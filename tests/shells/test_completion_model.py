"""The completion scripts are written from the CLI's own parser: every command and option is there, and every
positional word says what it completes to, so a new command cannot silently go without completion."""

from __future__ import annotations

import argparse

import pytest

from govuk_imds.cli import build_parser
from govuk_imds.shells.completion import (
    COMMANDS,
    ENVIRONMENTS,
    FILES,
    SOURCE_PROFILES,
    TEXT,
    Command,
    bash_script,
    command_tree,
    completes_to,
    fish_script,
    walk,
    zsh_script,
)


@pytest.fixture(scope="module")
def tree() -> Command:
    return command_tree(build_parser())


def by_path(tree: Command) -> dict[str, Command]:
    return {" ".join(command.path): command for command in walk(tree)}


def test_every_command_of_the_cli_is_in_the_tree(tree: Command) -> None:
    parser = build_parser()
    [subparsers] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    assert {sub.path[-1] for sub in tree.subcommands} == set(subparsers.choices)
    assert "unlock" in by_path(tree)
    assert by_path(tree)["service"].subcommands


def test_every_positional_word_says_what_it_completes_to(tree: Command) -> None:
    """A positional that completes to nothing is a decision: name it here (or give it `completes_to`)."""
    free_text: set[str] = set()  # none today
    for command in walk(tree):
        if TEXT in command.positionals:
            free_text.add(" ".join(command.path))
    assert free_text == set()


def test_what_the_words_complete_to(tree: Command) -> None:
    commands = by_path(tree)
    assert commands["unlock"].positionals == (ENVIRONMENTS,)
    assert commands["exec"].positionals == (ENVIRONMENTS, COMMANDS, FILES)
    assert commands["rotate-key"].positionals == (SOURCE_PROFILES,)
    assert commands["completion"].positionals == (("bash", "fish", "zsh"),)
    options = {flag: option.value for option in commands["env"].options for flag in option.flags}
    assert options["--shell"] == ("sh", "bash", "zsh", "fish")
    assert options["--json"] is None
    root = {flag: option.value for option in tree.options for flag in option.flags}
    assert root["--config"] == FILES
    init = {flag: option.value for option in commands["init"].options for flag in option.flags}
    assert init["--role"] == ("govuk-administrators", "govuk-powerusers", "govuk-users")
    assert init["--environment"] == ("test", "integration", "staging", "production", "tools")


def test_hidden_commands_are_not_offered() -> None:
    parser = argparse.ArgumentParser(prog="x")
    commands = parser.add_subparsers()
    commands.add_parser("shown", help="a command")
    commands.add_parser("_hidden", help="internal")
    assert [sub.path for sub in command_tree(parser).subcommands] == [("shown",)]


def test_a_choice_the_scripts_cannot_carry_safely_is_refused() -> None:
    parser = argparse.ArgumentParser(prog="x")
    completes_to(parser.add_argument("--evil"), lambda: ["a b; rm -rf ~"])
    tree = command_tree(parser)
    for render in (bash_script, zsh_script, fish_script):
        with pytest.raises(ValueError, match="cannot carry safely"):
            render(tree)


def test_descriptions_with_quotes_stay_inside_their_words(tree: Command) -> None:
    # "GOV.UK's accounts" has a single quote; each script must still parse (checked for real in the e2e tests).
    assert "GOV.UK'\\''s accounts" in zsh_script(tree)
    assert "GOV.UK\\'s accounts" in fish_script(tree)
