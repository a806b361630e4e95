"""The prompt snippets in their own shells (zsh, fish, and the sh that starship runs), reading state files written
by the daemon's own writer. The bash snippet is driven through a real terminal against a real daemon in
tests/e2e/test_day_one.py; starship itself is not packaged for Debian, so its modules' `when` and `command` are run
here the way starship runs them (with `sh`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govuk_imds.config.paths import RuntimePaths
from govuk_imds.daemon.state_files import StateFiles
from govuk_imds.shells.prompt import snippet
from tests.support.world import require

SOON = datetime.now(UTC) + timedelta(hours=1)
PAST = datetime.now(UTC) - timedelta(minutes=1)


@pytest.fixture
def runtime(tmp_path: Path) -> RuntimePaths:
    root = tmp_path / "run"
    root.mkdir(mode=0o700)
    return RuntimePaths(root)


def shell_environment(runtime: RuntimePaths, name: str | None) -> dict[str, str]:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(runtime.root), "TERM": "xterm"}
    if name is not None:
        environment["GOVUK_IMDS_ENVIRONMENT"] = name
        environment["GOVUK_IMDS_STATE_FILE"] = str(runtime.environment_state(name))
    return environment


def run(argv: list[str], environment: dict[str, str]) -> str:
    return subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=60, check=True).stdout


@pytest.mark.parametrize(
    ("name", "until", "segment"),
    [
        ("production", SOON, "%B%F{red}(production)%f%b "),
        ("staging", SOON, "%F{yellow}(staging)%f%b "),
        ("integration-users", SOON, "%F{green}(integration-users)%f%b "),
        ("staging", None, "%F{yellow}(staging locked)%f%b "),
        ("staging", PAST, "%F{yellow}(staging locked)%f%b "),  # the session's end has passed
        ("odd%name", SOON, "%F{green}(odd%%name)%f%b "),  # a % in a name is not a prompt escape
    ],
)
def test_zsh_segment(runtime: RuntimePaths, name: str, until: datetime | None, segment: str) -> None:
    zsh = shutil.which("zsh")
    require(zsh is not None, "zsh (Debian: apt-get install zsh)")
    StateFiles(runtime).changed(name, until)
    code = f"{snippet('zsh')}\nfalse; __govuk_imds_segment; print -r -- \"status=$? [$__govuk_imds_ps1]\""
    assert run([str(zsh), "-f", "-c", code], shell_environment(runtime, name)).strip() == f"status=1 [{segment}]"


def test_zsh_segment_is_empty_outside_an_environment(runtime: RuntimePaths) -> None:
    zsh = shutil.which("zsh")
    require(zsh is not None, "zsh (Debian: apt-get install zsh)")
    code = f"PROMPT='%# '\n{snippet('zsh')}\n__govuk_imds_segment; print -r -- \"[$__govuk_imds_ps1] $PROMPT\""
    assert run([str(zsh), "-f", "-c", code], shell_environment(runtime, None)).strip() == "[] ${__govuk_imds_ps1}%#"


@pytest.mark.parametrize(
    ("name", "until", "colour", "text"),
    [
        ("production", SOON, "\x1b[1m\x1b[31m", "(production) "),
        ("staging", None, "\x1b[33m", "(staging locked) "),
        ("test", PAST, "\x1b[32m", "(test locked) "),
    ],
)
def test_fish_segment(runtime: RuntimePaths, name: str, until: datetime | None, colour: str, text: str) -> None:
    fish = shutil.which("fish")
    require(fish is not None, "fish (Debian: apt-get install fish)")
    StateFiles(runtime).changed(name, until)
    code = f"function fish_prompt; echo -n '> '; end\n{snippet('fish')}\nfalse; fish_prompt"
    printed = run([str(fish), "--no-config", "-c", code], shell_environment(runtime, name))
    assert printed.startswith(colour)
    assert text in printed
    assert printed.endswith("> ")  # the person's own prompt follows


def test_starship_modules_show_one_segment_coloured_by_environment(runtime: RuntimePaths) -> None:
    modules = tomllib.loads(snippet("starship"))["custom"]
    styles = {"production": "bold red", "staging-users": "yellow", "integration": "green"}
    for name, style in styles.items():
        StateFiles(runtime).changed(name, SOON if name != "staging-users" else None)
        environment = shell_environment(runtime, name)
        shown = [module for module in modules.values()
                 if subprocess.run(["sh", "-c", module["when"]], env=environment, check=False).returncode == 0]
        assert [module["style"] for module in shown] == [style]
        output = run([*shown[0]["shell"], "-c", shown[0]["command"]], environment).strip()
        assert output == (f"{name} locked" if name == "staging-users" else name)
    outside = shell_environment(runtime, None)
    assert all(subprocess.run(["sh", "-c", module["when"]], env=outside, check=False).returncode != 0
               for module in modules.values())
