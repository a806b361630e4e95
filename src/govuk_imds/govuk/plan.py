"""What ``govuk-imds init`` adds to an AWS config, decided without touching a file.

Profiles follow GOV.UK's guidance (``role_arn``, ``mfa_serial``, ``source_profile``, ``region``). The first role
chosen is the default one and names the plain environment (``govuk-production``); every other role gets its own
environment, named after the role without its ``govuk-`` prefix (``govuk-production-powerusers``).

Nothing is ever replaced: a profile that already exists is kept as it is and reported, with what differs from what
init would have written. New profiles are appended after everything else, and the result is parsed again to prove
that every section that was there is still there, unchanged.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config.aws_config import parse_ini
from ..errors import ConfigError, InvalidInput
from .catalogue import Catalogue

#: The keys init writes, in the order GOV.UK's guidance writes them.
ENVIRONMENT_KEYS = ("role_arn", "mfa_serial", "source_profile", "region")


@dataclass(frozen=True)
class Choices:
    environments: tuple[str, ...]  # names from the catalogue
    roles: tuple[str, ...]  # the first is the default role
    mfa_serial: str
    source_profile: str
    region: str
    prefix: str  # the profile prefix that makes a profile an environment ("govuk-")


@dataclass(frozen=True)
class Profile:
    name: str
    values: tuple[tuple[str, str], ...]  # in the order they are written

    @property
    def section(self) -> str:
        return "default" if self.name == "default" else f"profile {self.name}"

    def render(self, newline: str = "\n") -> str:
        lines = [f"[{self.section}]", *(f"{key} = {value}" for key, value in self.values)]
        return newline.join(lines) + newline


@dataclass(frozen=True)
class Kept:
    """A profile init would have written that the file already has: left as it is."""

    name: str
    differences: tuple[str, ...]  # "role_arn is X (init would write Y)"


@dataclass(frozen=True)
class Plan:
    add: tuple[Profile, ...]
    kept: tuple[Kept, ...]


def role_suffix(role: str) -> str:
    """``govuk-powerusers`` -> ``powerusers``: every profile name already starts with ``govuk-``."""
    return role.removeprefix("govuk-")


def profile_name(prefix: str, environment: str, role: str, default_role: str) -> str:
    if role == default_role:
        return f"{prefix}{environment}"
    return f"{prefix}{environment}-{role_suffix(role)}"


def wanted_profiles(catalogue: Catalogue, choices: Choices) -> list[Profile]:
    """Every profile init would write for these choices: the environments, then the source profile."""
    if not choices.roles:
        raise InvalidInput("choose at least one role")
    suffixes = [role_suffix(role) for role in choices.roles]
    if len(set(suffixes)) != len(suffixes) or len(set(choices.roles)) != len(choices.roles):
        raise InvalidInput(f"these roles would share a profile name: {', '.join(choices.roles)}; name each once")
    profiles = []
    for environment in choices.environments:
        account = catalogue.accounts[environment]
        for role in choices.roles:
            name = profile_name(choices.prefix, environment, role, choices.roles[0])
            values = (f"arn:aws:iam::{account}:role/{role}", choices.mfa_serial, choices.source_profile, choices.region)
            profiles.append(Profile(name, tuple(zip(ENVIRONMENT_KEYS, values, strict=True))))
    source = (("mfa_serial", choices.mfa_serial), ("region", choices.region))
    profiles.append(Profile(choices.source_profile, source))
    return profiles


def plan(wanted: Iterable[Profile], existing: Mapping[str, Mapping[str, Any]]) -> Plan:
    """Split what init wants into what to add and what is already there (``existing``: profiles by name)."""
    add: list[Profile] = []
    kept: list[Kept] = []
    for profile in wanted:
        present = existing.get(profile.name)
        if present is None:
            add.append(profile)
            continue
        differences = tuple(
            f"{key} is {present.get(key) or 'not set'} (init would write {value})"
            for key, value in profile.values
            if present.get(key) != value
        )
        kept.append(Kept(profile.name, differences))
    return Plan(tuple(add), tuple(kept))


def appended(original: str, profiles: Sequence[Profile]) -> str:
    """``original`` with ``profiles`` added at the end, every byte before them untouched.

    The file's own line ending is used, and one blank line separates the new profiles from what was there. Raises
    ``ConfigError`` if the result would read differently for anything that was already in the file.
    """
    if not profiles:
        return original
    newline = "\r\n" if "\r\n" in original else "\n"
    text = original
    if text and not text.endswith(("\n", "\r")):
        text += newline
    if text.strip() and not text.endswith(newline * 2):
        text += newline  # one blank line between what was there and what init adds
    text += newline.join(profile.render(newline) for profile in profiles)
    _prove_only_added(original, text, profiles)
    return text


def _prove_only_added(before_text: str, after_text: str, profiles: Sequence[Profile]) -> None:
    try:
        before = parse_ini(before_text)
        after = parse_ini(after_text)
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"the AWS config cannot take the new profiles without changing how it reads ({first_line}); "
            "run `govuk-imds init --dry-run` and add them yourself"
        ) from exc
    expected = {**before, **{profile.section: dict(profile.values) for profile in profiles}}
    if after != expected:
        raise ConfigError(
            "adding the new profiles would change how the AWS config reads (an unusual layout); "
            "run `govuk-imds init --dry-run` and add them yourself"
        )
