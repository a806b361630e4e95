"""Tab completion in real shells: each script loaded as `govuk-imds completion <shell>` prints it, completing a
command, an environment (read from the AWS config by the light `__complete` path) and an option.

bash and fish are asked through their own completion APIs (``COMP_WORDS`` and ``complete -C``), which list every
candidate; zsh has no such API outside its line editor, so it is driven through a pseudo-terminal: type, press TAB,
and let the shell echo the completed line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.terminal import Terminal, plain
from tests.support.world import ACCOUNTS, BIN, SECOND_ROLES, aws_config, require

SERIAL = "arn:aws:iam::123456789012:mfa/first.last@digital.cabinet-office.gov.uk"

def summary(command: str) -> str:
    """The one-line summary the CLI registered for ``command``: what fish shows beside it."""
    from govuk_imds.cli import build_parser

    for action in build_parser()._subparsers._group_actions:  # type: ignore[union-attr]
        for choice in getattr(action, "_choices_actions", []):
            if choice.dest == command:
                return str(choice.help)
    raise AssertionError(f"no command {command}")


#: Every environment the test world's AWS config defines, as completion lists them.
ENVIRONMENTS = sorted([*ACCOUNTS, *SECOND_ROLES])


@pytest.fixture
def user(tmp_path: Path) -> dict[str, str]:
    """A HOME with the integration, staging and production environments, and govuk-imds on PATH."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(aws_config(ACCOUNTS, SERIAL))
    return {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GOVUK_IMDS_RUNTIME_DIR": str(tmp_path / "run"),
        "LANG": "C.UTF-8",
        "TERM": "xterm",
    }


def script(shell: str, user: dict[str, str], tmp_path: Path) -> Path:
    printed = subprocess.run([str(BIN / "govuk-imds"), "completion", shell], env=user, capture_output=True,
                             text=True, timeout=60, check=True)
    path = tmp_path / f"completion.{shell}"
    path.write_text(printed.stdout)
    return path


def need(shell: str) -> str:
    found = shutil.which(shell)
    require(found is not None, f"{shell} (Debian: apt-get install {shell})")
    assert found is not None
    return found


# -- bash ----------------------------------------------------------------------------------------------------------

BASH_ASK = r"""
source "$1"; shift
complete -p govuk-imds
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
_govuk_imds
printf 'candidate:%s\n' "${COMPREPLY[@]}"
"""


def bash_candidates(user: dict[str, str], completion: Path, *words: str) -> list[str]:
    answer = subprocess.run([need("bash"), "--norc", "--noprofile", "-c", BASH_ASK, "bash", str(completion), *words],
                            env=user, capture_output=True, text=True, timeout=60, check=True)
    assert "complete -F _govuk_imds govuk-imds" in answer.stdout  # registered for the command
    return sorted(line.removeprefix("candidate:") for line in answer.stdout.splitlines()
                  if line.startswith("candidate:") and line != "candidate:")


def test_bash_completes_commands_environments_and_options(user: dict[str, str], tmp_path: Path) -> None:
    completion = script("bash", user, tmp_path)
    assert bash_candidates(user, completion, "govuk-imds", "unl") == ["unlock"]
    assert bash_candidates(user, completion, "govuk-imds", "s") == ["serve", "service", "start", "status", "stop"]
    assert bash_candidates(user, completion, "govuk-imds", "unlock", "") == ENVIRONMENTS
    production_roles = ["production", "production-readonly"]
    assert bash_candidates(user, completion, "govuk-imds", "unlock", "staging", "prod") == production_roles
    assert bash_candidates(user, completion, "govuk-imds", "env", "production", "--sh") == ["--shell"]
    assert bash_candidates(user, completion, "govuk-imds", "env", "production", "--shell", "f") == ["fish"]
    assert bash_candidates(user, completion, "govuk-imds", "service", "") == ["install", "status", "uninstall"]
    assert bash_candidates(user, completion, "govuk-imds", "import", "") == ["gds"]  # source profiles
    assert bash_candidates(user, completion, "govuk-imds", "--config", "x", "exe") == ["exec"]
    assert "bash" in bash_candidates(user, completion, "govuk-imds", "exec", "staging", "--", "bas")  # commands


# -- fish ----------------------------------------------------------------------------------------------------------


def fish_candidates(user: dict[str, str], completion: Path, line: str) -> list[str]:
    answer = subprocess.run([need("fish"), "--no-config", "-c", f"source {completion}; complete -C{line!r}"],
                            env=user, capture_output=True, text=True, timeout=60, check=True)
    return sorted(candidate.split("\t")[0] for candidate in answer.stdout.splitlines())


def test_fish_completes_commands_environments_and_options(user: dict[str, str], tmp_path: Path) -> None:
    completion = script("fish", user, tmp_path)
    assert fish_candidates(user, completion, "govuk-imds unl") == ["unlock"]
    assert fish_candidates(user, completion, "govuk-imds unlock ") == ENVIRONMENTS
    assert fish_candidates(user, completion, "govuk-imds lock --all prod") == ["production", "production-readonly"]
    assert fish_candidates(user, completion, "govuk-imds env production --sh") == ["--shell"]
    assert fish_candidates(user, completion, "govuk-imds env production --shell ") == ["bash", "fish", "sh", "zsh"]
    assert fish_candidates(user, completion, "govuk-imds service ") == ["install", "status", "uninstall"]
    described = subprocess.run([need("fish"), "--no-config", "-c", f"source {completion}; complete -C'govuk-imds unl'"],
                               env=user, capture_output=True, text=True, timeout=60, check=True).stdout
    assert described.strip() == f"unlock\t{summary('unlock')}"


# -- zsh -----------------------------------------------------------------------------------------------------------


def zsh_completes(terminal: Terminal, typed: str) -> str:
    """Type ``typed``, press TAB, then turn the line into an `echo` and return what it printed."""
    terminal.send(typed + "\t")
    # Wait for the completion to land (the line grows past what was typed), then prefix the line and run it.
    terminal.send("\x01echo RESULT:$((6*7)) \r")
    found = terminal.expect(rb"RESULT:42 ([^\r\n]*)\r?\n")
    return found.group(1).decode().strip()


def test_zsh_completes_commands_environments_and_options(user: dict[str, str], tmp_path: Path) -> None:
    completion = script("zsh", user, tmp_path)
    with Terminal([need("zsh"), "-f", "-i"], user) as terminal:
        terminal.send("PS1='zsh> '; bindkey -e; autoload -Uz compinit && compinit -u -D\r")
        terminal.send(f"source {completion}; echo READY:$((1+1))\r")
        terminal.expect("READY:2")
        assert zsh_completes(terminal, "govuk-imds unl") == "govuk-imds unlock"
        assert zsh_completes(terminal, "govuk-imds unlock stag") == "govuk-imds unlock staging"
        assert zsh_completes(terminal, "govuk-imds env production --sh") == "govuk-imds env production --shell"
        assert zsh_completes(terminal, "govuk-imds service inst") == "govuk-imds service install"
        terminal.send("exit\r")
    assert "command not found" not in plain(terminal.screen)
    assert not re.search(r"_govuk_imds.*(error|not found)", plain(terminal.screen))
