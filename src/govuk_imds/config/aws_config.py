"""The user's AWS config and credentials files, read the way the SDKs read them; environments built from profiles.

This is the one place that parses those files: ``load_profiles`` (botocore's own config loader, so a profile means
here what it means to every AWS tool), ``parse_ini``/``read_ini`` (the raw INI reading botocore applies to the
credentials file) and ``credentials_file`` (where the SDKs look for it). Environments are the profiles named
``<prefix><name>`` (``govuk-production``); a profile that defines one badly is kept as a problem, not raised, so one
bad profile never hides the others.

Light: botocore's ``configloader`` is a module of botocore's package root, not the SDK (no client, no session).
"""

from __future__ import annotations

import configparser
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..core.environment import EnvironmentSpec
from ..core.session import MIN_SERVED_LIFETIME
from ..core.shapes import ENVIRONMENT_NAME, MFA_SERIAL, ROLE_ARN, ROLE_SESSION_NAME
from ..errors import ConfigError, UnknownEnvironment
from .settings import Settings

#: AWS caps a role session assumed with session credentials ("role chaining") at one hour.
DEFAULT_ROLE_DURATION = 3600


def load_profiles(path: Path) -> dict[str, dict[str, Any]]:
    """The profiles of an AWS config file, by name, as botocore reads them; empty if there is no file."""
    from botocore.configloader import load_config
    from botocore.exceptions import BotoCoreError

    if not path.exists():
        return {}
    try:
        profiles: dict[str, dict[str, Any]] = load_config(str(path)).get("profiles", {})
    except (BotoCoreError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be parsed ({exc}); fix the file and try again") from exc
    return profiles


def credentials_file(environ: Mapping[str, str]) -> Path:
    """Where the SDKs look for the shared credentials file."""
    explicit = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(environ.get("HOME", "~")).expanduser() / ".aws" / "credentials"


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """Sections of raw values, as botocore reads an AWS ini file (a strict ``RawConfigParser``).

    Raises ``configparser.Error`` for a file no AWS tool can read.
    """
    parser = configparser.RawConfigParser()
    parser.read_file(io.StringIO(text, newline=None))  # universal newlines, as when reading the file
    parsed = {section: dict(parser.items(section)) for section in parser.sections()}
    if parser.defaults():
        parsed[parser.default_section] = dict(parser.defaults())
    return parsed


def read_ini(path: Path) -> dict[str, dict[str, str]] | None:
    """``parse_ini`` of a file; ``None`` if it does not exist, ``ConfigError`` (naming the file) if it is broken."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc})") from exc
    try:
        return parse_ini(text)
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path} cannot be parsed ({first_line})") from exc


def source_profile_mfa_serial(settings: Settings, profile: str) -> str:
    """The MFA device of a source profile: its own ``mfa_serial``, else the one its environments all name."""
    path = settings.aws_config_file
    serial = load_profiles(path).get(profile, {}).get("mfa_serial")
    if not serial:
        serials = {
            spec.mfa_serial for spec in load_environments(settings).specs.values() if spec.source_profile == profile
        }
        serial = serials.pop() if len(serials) == 1 else None
    if not serial or not isinstance(serial, str):
        raise ConfigError(
            f"{path}: [profile {profile}] has no mfa_serial; add `mfa_serial = arn:aws:iam::<account>:mfa/<device>`"
        )
    return serial


@dataclass(frozen=True)
class Environments:
    """The environments defined in the AWS config, and the profiles that define one badly."""

    source: Path
    prefix: str
    specs: Mapping[str, EnvironmentSpec]
    problems: Mapping[str, ConfigError]

    def names(self) -> list[str]:
        return sorted(self.specs)

    def canonical(self, name: str) -> str:
        """``govuk-production`` and ``production`` are the same environment."""
        if name.startswith(self.prefix) and name not in self.specs and name not in self.problems:
            return name[len(self.prefix) :]
        return name

    def resolve(self, name: str) -> EnvironmentSpec:
        name = self.canonical(name)
        if name in self.problems:
            raise self.problems[name]
        if name not in self.specs:
            raise UnknownEnvironment(name, self.names(), self.prefix)
        return self.specs[name]


def load_environments(settings: Settings) -> Environments:
    """Every ``[profile <prefix><name>]`` of the AWS config that defines an environment, and those that do so badly."""
    path = settings.aws_config_file
    prefix = settings.profile_prefix
    profiles = load_profiles(path)
    specs: dict[str, EnvironmentSpec] = {}
    problems: dict[str, ConfigError] = {}
    for profile, values in profiles.items():
        if not profile.startswith(prefix) or len(profile) == len(prefix):
            continue
        name = profile[len(prefix) :]
        try:
            specs[name] = _spec_from_profile(path, name, profile, values, profiles, settings.rotation_margin)
        except ConfigError as problem:
            problems[name] = problem
    return Environments(path, prefix, specs, problems)


def _spec_from_profile(
    path: Path,
    name: str,
    profile: str,
    values: Mapping[str, Any],
    profiles: Mapping[str, Mapping[str, Any]],
    rotation_margin: timedelta,
) -> EnvironmentSpec:
    where = f"{path}: [profile {profile}]"
    for key in ("role_arn", "source_profile", "mfa_serial", "region", "duration_seconds", "role_session_name"):
        if key in values and not isinstance(values[key], str):
            raise ConfigError(f"{where}: {key} must be a single value, not an indented block")
    if not ENVIRONMENT_NAME.fullmatch(name):
        raise ConfigError(f"{where}: {name!r} is not a usable environment name (letters, digits, . _ -)")
    role_arn = values.get("role_arn")
    if not role_arn:
        raise ConfigError(f"{where} has no role_arn; add `role_arn = arn:aws:iam::<account>:role/<role>`")
    if not ROLE_ARN.fullmatch(role_arn):
        raise ConfigError(f"{where}: role_arn {role_arn!r} is not a role ARN (arn:aws:iam::<account>:role/<role>)")
    source_profile = values.get("source_profile")
    if not source_profile:
        raise ConfigError(f"{where} has no source_profile; add `source_profile = gds`")
    source = profiles.get(source_profile, {})
    for key in ("mfa_serial", "region"):
        if key in source and not isinstance(source[key], str):
            raise ConfigError(f"{path}: [profile {source_profile}]: {key} must be a single value")
    mfa_serial = values.get("mfa_serial") or source.get("mfa_serial")
    if not mfa_serial:
        raise ConfigError(f"{where} has no mfa_serial; add `mfa_serial = arn:aws:iam::<account>:mfa/<your device>`")
    if not MFA_SERIAL.fullmatch(mfa_serial):
        raise ConfigError(f"{where}: mfa_serial {mfa_serial!r} is not an MFA device ARN or serial")
    duration_text = values.get("duration_seconds", str(DEFAULT_ROLE_DURATION))
    try:
        duration = int(duration_text)
    except ValueError as exc:
        raise ConfigError(f"{where}: duration_seconds {duration_text!r} is not a number") from exc
    if not 900 <= duration <= 43200:
        raise ConfigError(f"{where}: duration_seconds must be between 900 and 43200")
    # Credentials are renewed `rotation_margin` before they expire and served only with 15 minutes left: a shorter
    # role session could never be served, or would be renewed over and over.
    shortest = int((rotation_margin + MIN_SERVED_LIFETIME).total_seconds())
    if duration < shortest:
        raise ConfigError(
            f"{where}: duration_seconds {duration} is too short to serve and renew; use at least {shortest} "
            "(rotation_margin plus 15 minutes)"
        )
    session_name = values.get("role_session_name") or _session_name_from(mfa_serial)
    if not ROLE_SESSION_NAME.fullmatch(session_name):
        raise ConfigError(f"{where}: role_session_name {session_name!r} is not allowed by AWS ([\\w+=,.@-], 2-64)")
    return EnvironmentSpec(
        name=name,
        profile=profile,
        role_arn=role_arn,
        mfa_serial=mfa_serial,
        source_profile=source_profile,
        region=values.get("region") or source.get("region"),
        role_duration_seconds=duration,
        role_session_name=session_name,
    )


def _session_name_from(mfa_serial: str) -> str:
    """``arn:...:mfa/first.last@digital.cabinet-office.gov.uk`` -> ``first.last@digital.cabinet-office.gov.uk``,
    so CloudTrail shows who did what."""
    candidate = re.sub(r"[^\w+=,.@-]", "-", mfa_serial.rsplit("/", 1)[-1])[:64]
    return candidate if len(candidate) >= 2 else f"govuk-imds-{os.getuid()}"
