"""Which command gives MFA codes (``mfa_process``), and where the user wrote it.

govuk-imds's own config.toml wins over the AWS config: it is where a person says what govuk-imds should do, while
the AWS config is shared with other tools (aws-vault reads the same key). ``mfa_process = ""`` there turns the
command off even when the AWS config names one. In the AWS config, as aws-vault reads it: the environment's own
profile, then its source profile.

The command is split into words as a shell would (``shlex``) but run without one: a pipe or ``&&`` written in it
is refused with the fix (``sh -c '...'``), since it would otherwise reach the program as an argument. Its text may
hold a secret (``oathtool --totp <seed>``), so it is never printed whole: messages name the program and the file.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..config.aws_config import load_profiles
from ..config.settings import Settings
from ..errors import ConfigError

#: Shell operators: written unquoted in mfa_process, they mean the person expected a shell.
SHELL_OPERATORS = frozenset({"|", "||", "&", "&&", ";", "<", ">", ">>", "(", ")"})


@dataclass(frozen=True)
class ConfiguredCommand:
    text: str = field(repr=False)
    #: Where it is written, for messages: the file, and the profile in an AWS config.
    where: str

    def argv(self) -> list[str]:
        """The words to run; ``ConfigError`` naming the file for what cannot be run without a shell."""
        try:
            words = shlex.split(self.text)
            operators = [token for token in _tokens(self.text) if token in SHELL_OPERATORS]
        except ValueError as exc:
            raise ConfigError(f"{self.where}: mfa_process cannot be split into words ({exc}); check its quotes"
                              ) from exc
        if not words:
            raise ConfigError(f"{self.where}: mfa_process is empty; name the command that prints an MFA code")
        if operators:
            raise ConfigError(
                f"{self.where}: mfa_process uses the shell's {operators[0]!r}, and govuk-imds runs it without a "
                "shell; write it as `sh -c '...'` if you need one"
            )
        return [os.path.expanduser(words[0]), *words[1:]]

    @property
    def program(self) -> str:
        """The program's name alone, for messages."""
        try:
            words = shlex.split(self.text)
        except ValueError:
            return "?"
        return os.path.basename(words[0]) if words else "?"


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def configured_command(settings: Settings, profiles: Sequence[str]) -> ConfiguredCommand | None:
    """The ``mfa_process`` that applies to these AWS config profiles (an environment's, then its source profile's),
    or ``None`` when none is configured or config.toml turns it off."""
    if settings.mfa_process is not None:
        if not settings.mfa_process.strip():
            return None
        return ConfiguredCommand(settings.mfa_process, str(settings.config_file))
    path = settings.aws_config_file
    loaded = load_profiles(path, only=list(profiles))
    for profile in profiles:
        value = loaded.get(profile, {}).get("mfa_process")
        if value is None or value == "":
            continue
        section = profile if profile == "default" else f"profile {profile}"
        if not isinstance(value, str):
            raise ConfigError(f"{path}: [{section}]: mfa_process must be a single value")
        return ConfiguredCommand(value, f"{path} [{section}]")
    return None
