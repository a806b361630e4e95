"""`govuk-imds env` output, run through real shells with hostile values, and `exec`'s environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from govuk_imds.core.shellenv import SHADOWING_VARIABLES, apply, endpoint_variables, render

URL = "http://127.0.0.1:9911/v1/credentials/production"
TOKEN_FILE = "/run/user/1000/govuk-imds/tokens/production"
TOKEN = "Ab3_-" * 8 + "xyz"  # the shape of `secrets.token_urlsafe(32)`
OURS = {
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "GOVUK_IMDS_ENVIRONMENT",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
}
HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch pwned-dollar)",
    "`touch pwned-backtick`",
    "a; touch pwned-semicolon",
    "two\nlines",
    "trailing space ",
    "*",
    "~",
    "a\\b",
    "ends with backslash\\",
    "$HOME and ${HOME}",
    "",
]


def test_shadowing_variables_cover_everything_the_sdks_consult_first() -> None:
    required = {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    }
    assert required <= set(SHADOWING_VARIABLES)
    assert not OURS & set(SHADOWING_VARIABLES)


def test_endpoint_variables_with_and_without_region() -> None:
    assert endpoint_variables(URL, TOKEN_FILE, "eu-west-1", "production") == {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": URL,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": TOKEN_FILE,
        "GOVUK_IMDS_ENVIRONMENT": "production",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    without = endpoint_variables(URL, TOKEN_FILE, None, "production")
    assert "AWS_REGION" not in without
    assert "AWS_DEFAULT_REGION" not in without
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" not in without  # no token given: none to set


# -- sh / bash / zsh ----------------------------------------------------------------------------------------------


def _shells() -> list[str]:
    return [shell for shell in ("sh", "bash", "dash", "zsh") if shutil.which(shell)]


def _run_in_shell(shell: str, script: str, preset: dict[str, str], cwd: Path) -> dict[str, str]:
    """``eval`` the script in a real shell and return the environment a program started from it would see."""
    dump = f"{sys.executable} -c 'import json, os; print(json.dumps(dict(os.environ)))'"
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GOVUK_IMDS_SCRIPT": script, **preset}
    result = subprocess.run(
        [shell, "-c", f'eval "$GOVUK_IMDS_SCRIPT" && {dump}'],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    environ: dict[str, str] = json.loads(result.stdout)
    return environ


@pytest.mark.parametrize("shell", _shells())
def test_sh_output_clears_shadowing_variables_and_exports_ours(shell: str, tmp_path: Path) -> None:
    variables = endpoint_variables(URL, TOKEN_FILE, "eu-west-1", "production")
    preset = {name: "$(touch pwned-preset); AKIAIOSFODNN7EXAMPLE" for name in SHADOWING_VARIABLES}
    preset["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://169.254.170.2/somewhere-else"
    preset["AWS_REGION"] = "us-east-1"
    preset["KEEP_ME"] = "kept 'as is'"
    environ = _run_in_shell(shell, render(variables, "sh"), preset, tmp_path)
    for name in SHADOWING_VARIABLES:
        assert name not in environ, name
    for name, value in variables.items():
        assert environ[name] == value
    assert environ["KEEP_ME"] == "kept 'as is'"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shell", _shells())
@pytest.mark.parametrize("hostile", HOSTILE)
def test_sh_output_quotes_every_value(shell: str, hostile: str, tmp_path: Path) -> None:
    variables = endpoint_variables(URL, f"/tmp/{hostile}/production", hostile or "x", "production")
    variables["GOVUK_IMDS_ENVIRONMENT"] = hostile
    environ = _run_in_shell(shell, render(variables, "sh"), {}, tmp_path)
    for name, value in variables.items():
        assert environ[name] == value, name
    assert list(tmp_path.iterdir()) == []  # nothing was executed


@pytest.mark.parametrize("shell_name", ["sh", "bash", "zsh"])
def test_sh_family_shells_get_the_same_code(shell_name: str) -> None:
    variables = endpoint_variables(URL, TOKEN_FILE, "eu-west-1", "production")
    assert render(variables, shell_name) == render(variables, "sh")


def test_sh_output_unsets_before_exporting() -> None:
    lines = render(endpoint_variables(URL, TOKEN_FILE, "eu-west-1", "production"), "sh").splitlines()
    assert lines[0].startswith("unset ")
    assert set(lines[0].removeprefix("unset ").rstrip(";").split()) == set(SHADOWING_VARIABLES)
    assert all(line.startswith("export ") for line in lines[1:])


# -- fish ---------------------------------------------------------------------------------------------------------


class FishSyntaxError(ValueError):
    pass


def parse_fish(script: str) -> list[list[str]]:
    """Split a fish script into commands of words, following fish's quoting rules (enough for `set` lines):
    in '...' only \\' and \\\\ are escapes; in "..." $ expands; unquoted, $ and other specials are not plain text."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: list[str] | None = None
    index = 0

    def end_word() -> None:
        nonlocal word
        if word is not None:
            words.append("".join(word))
            word = None

    def end_command() -> None:
        nonlocal words
        end_word()
        if words:
            commands.append(words)
        words = []

    while index < len(script):
        char = script[index]
        if char in " \t":
            end_word()
            index += 1
        elif char in ";\n":
            end_command()
            index += 1
        elif char == "'":
            word = word if word is not None else []
            index += 1
            while True:
                if index >= len(script):
                    raise FishSyntaxError("unterminated single quote")
                char = script[index]
                if char == "\\" and index + 1 < len(script) and script[index + 1] in "\\'":
                    word.append(script[index + 1])
                    index += 2
                elif char == "'":
                    index += 1
                    break
                else:
                    word.append(char)
                    index += 1
        elif char == '"':
            word = word if word is not None else []
            index += 1
            while True:
                if index >= len(script):
                    raise FishSyntaxError("unterminated double quote")
                char = script[index]
                if char == "\\" and index + 1 < len(script) and script[index + 1] in '\\"$\n':
                    word.append(script[index + 1])
                    index += 2
                elif char == "$":
                    raise FishSyntaxError("variable expansion inside double quotes")
                elif char == '"':
                    index += 1
                    break
                else:
                    word.append(char)
                    index += 1
        elif char in "$\\*?~{}()[]#|&<>`":
            raise FishSyntaxError(f"unquoted special character {char!r}")
        else:
            word = word if word is not None else []
            word.append(char)
            index += 1
    end_command()
    return commands


def _fish_result(script: str) -> tuple[set[str], dict[str, str]]:
    erased: set[str] = set()
    exported: dict[str, str] = {}
    for command in parse_fish(script):
        if command[:2] == ["set", "-e"] and len(command) == 3:
            erased.add(command[2])
        elif command[:2] == ["set", "-gx"] and len(command) == 4:
            exported[command[2]] = command[3]
        else:
            raise AssertionError(f"unexpected fish command {command!r}")
    return erased, exported


def test_fish_output_erases_shadowing_variables_and_exports_ours() -> None:
    variables = endpoint_variables(URL, TOKEN_FILE, "eu-west-1", "production")
    erased, exported = _fish_result(render(variables, "fish"))
    assert erased == set(SHADOWING_VARIABLES)
    assert exported == variables


@pytest.mark.parametrize(
    "hostile",
    [
        *[value for value in HOSTILE if not value.endswith("\\")],
        "two\\\\backslashes",
        "ends with backslash\\",
    ],
)
def test_fish_output_quotes_every_value(hostile: str) -> None:
    variables = endpoint_variables(URL, f"/tmp/{hostile}/production", "eu-west-1", hostile)
    _, exported = _fish_result(render(variables, "fish"))
    assert exported == variables


# -- JSON ---------------------------------------------------------------------------------------------------------


def test_json_output_lists_what_to_set_and_unset() -> None:
    variables = endpoint_variables(URL, TOKEN_FILE, None, "production")
    document = json.loads(render(variables, "json"))
    assert document == {"set": variables, "unset": list(SHADOWING_VARIABLES)}


def test_json_output_keeps_hostile_values_intact() -> None:
    variables = {"GOVUK_IMDS_ENVIRONMENT": "\n".join(HOSTILE)}
    assert json.loads(render(variables, "json"))["set"] == variables


# -- exec ---------------------------------------------------------------------------------------------------------


def test_apply_removes_shadowing_variables_and_sets_ours() -> None:
    caller = {name: "shadow" for name in SHADOWING_VARIABLES}
    caller.update({"PATH": "/usr/bin", "HOME": "/home/me", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://old"})
    before = dict(caller)
    variables = endpoint_variables(URL, TOKEN_FILE, "eu-west-1", "production")
    result = apply(caller, variables)
    assert not set(SHADOWING_VARIABLES) & set(result)
    assert result == {"PATH": "/usr/bin", "HOME": "/home/me", **variables}
    assert caller == before  # the caller's mapping is not changed


# -- the token variable -------------------------------------------------------------------------------------------

def test_with_the_token_both_token_variables_are_set_and_the_variable_is_not_unset() -> None:
    variables = endpoint_variables(URL, TOKEN_FILE, "eu-west-1", "production", TOKEN)
    assert variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == TOKEN_FILE
    assert variables["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == TOKEN
    unset = set(SHADOWING_VARIABLES) - {"AWS_CONTAINER_AUTHORIZATION_TOKEN"}
    assert json.loads(render(variables, "json")) == {"set": variables, "unset": [
        name for name in SHADOWING_VARIABLES if name in unset]}
    assert set(render(variables, "sh").splitlines()[0].removeprefix("unset ").rstrip(";").split()) == unset
    assert _fish_result(render(variables, "fish")) == (unset, variables)


@pytest.mark.parametrize("shell", _shells())
def test_sh_output_replaces_a_stale_token_variable_with_the_token(shell: str, tmp_path: Path) -> None:
    variables = endpoint_variables(URL, TOKEN_FILE, "eu-west-1", "production", TOKEN)
    environ = _run_in_shell(shell, render(variables, "sh"), {"AWS_CONTAINER_AUTHORIZATION_TOKEN": "stale"}, tmp_path)
    assert environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == TOKEN
    assert apply({"AWS_CONTAINER_AUTHORIZATION_TOKEN": "stale"}, variables) == variables

