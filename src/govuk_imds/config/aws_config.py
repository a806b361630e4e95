"""The user's AWS config and credentials files, read the way the SDKs read them; environments built from profiles.

This is the one place that parses those files: ``load_profiles`` (the INI reading botocore's config loader does,
and its own ``build_profile_map``, so a profile means here what it means to every AWS tool), ``parse_ini``/
``read_ini`` (the raw INI reading botocore applies to the credentials file) and ``credentials_file`` (where the SDKs
look for it). Environments are the profiles named ``<prefix><name>`` (``govuk-production``); a profile that defines
one badly is kept as a problem, not raised, so one bad profile never hides the others.

Files are read through ``files.read_user_file`` (a FIFO or ``/dev/zero`` is refused, not read) and parsed from
those bytes. A command about one environment parses only the sections it needs (``only``): configparser takes
~0.1 ms a section, so an organisation's generated config of 100,000 profiles would cost every `env` 10 s.

Light: botocore's ``configloader`` is a module of botocore's package root, not the SDK (no client, no session).
"""

from __future__ import annotations

import configparser
import io
import os
import re
import shlex
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..core.environment import EnvironmentSpec
from ..core.session import MIN_SERVED_LIFETIME
from ..core.shapes import ENVIRONMENT_NAME, MFA_SERIAL, REGION, ROLE_ARN, ROLE_SESSION_NAME, shown
from ..errors import ConfigError, UnknownEnvironment
from .files import read_user_file
from .settings import Settings

#: AWS caps a role session assumed with session credentials ("role chaining") at one hour.
DEFAULT_ROLE_DURATION = 3600
#: The largest AWS config or credentials file read: generated configs of thousands of profiles are a few MB.
MAX_AWS_FILE_BYTES = 64 * 1024 * 1024
#: More environments than anyone unlocks; a config that defines more is refused as a whole (each would get a token
#: file and a place in every status).
MAX_ENVIRONMENTS = 1000


def load_profiles(path: Path, only: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    """The profiles of an AWS config file, by name, as botocore reads them; empty if there is no file. With
    ``only``, just those profiles (the rest of the file is scanned for section headers, not parsed)."""
    text = _read_text(path)
    if text is None:
        return {}
    return _profiles(path, text, only)


def _read_text(path: Path) -> str | None:
    data = read_user_file(path, MAX_AWS_FILE_BYTES)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot be parsed (not UTF-8: {exc.reason}); fix the file and try again") from exc


def _profiles(
    path: Path, text: str, only: Collection[str] | None, wanted: Callable[[str], bool] | None = None
) -> dict[str, dict[str, Any]]:
    """The profiles in ``text``: all of them, or those named in ``only`` (or, with ``wanted``, those it accepts
    among the sections that mention one of ``only``)."""
    from botocore.configloader import build_profile_map

    if only is not None:
        accept = wanted or set(only).__contains__
        text = only_sections(text, only, lambda header: (name := _profile_named(header)) is not None and accept(name))
    try:
        sections = parse_ini(text)
        raw = {name: {key: _nested(value) for key, value in values.items()} for name, values in sections.items()}
    except (configparser.Error, ValueError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: cannot be parsed ({first_line}); fix the file and try again") from exc
    profiles: dict[str, dict[str, Any]] = build_profile_map(raw)["profiles"]
    return profiles


def _nested(value: str) -> str | dict[str, str]:
    """An indented block (``s3 =`` followed by ``key = value`` lines) as botocore's config loader reads it."""
    if not value.startswith("\n"):
        return value
    block: dict[str, str] = {}
    for line in value.splitlines():
        if line.strip():
            key, separator, inner = line.strip().partition("=")
            if not separator:
                raise ValueError(f"{line.strip()!r} in an indented block is not `key = value`")
            block[key.strip()] = inner.strip()
    return block


def _profile_named(header: str) -> str | None:
    """The profile a section header defines, by botocore's rule: ``default``, or ``profile <name>`` split like a
    shell line."""
    if header == "default":
        return header
    if not header.startswith("profile"):
        return None
    try:
        parts = shlex.split(header) if any(mark in header for mark in "\"'\\") else header.split()
    except ValueError:
        return None
    return parts[1] if len(parts) == 2 else None


# Patterns start at the newline before a line, not at ``^``: re then looks only at newlines (10 times faster).
_SECTION_LINE = re.compile(r"\n(\[[^\n]*)")
_INDENTED_SECTION_LINE = re.compile(r"\n[ \t]+\[[^\n]*\]")


def only_sections(text: str, names: Collection[str], keep: Callable[[str], bool]) -> str:
    """``text`` with only the sections whose header ``keep`` accepts (and whatever precedes the first header, and
    ``[DEFAULT]``, which applies to every section). ``keep`` accepts only headers that contain one of ``names``,
    or that are quoted or escaped (``[profile "x"]``): only those lines are looked at, in C, not every header.

    A header is a line that starts with ``[`` and that configparser takes as one; an indented ``[...]`` line may
    be a header or a value's continuation depending on the lines before it, so a file with one is returned whole
    rather than guessed at."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n" + text
    if _INDENTED_SECTION_LINE.search(text):
        return text
    section = configparser.RawConfigParser.SECTCRE
    defaults = configparser.DEFAULTSECT

    def next_header(position: int) -> int:
        while (line := _SECTION_LINE.search(text, position)) is not None:
            if section.match(line.group(1).strip()):
                return line.start()
            position = line.end()
        return len(text)

    mentions = "|".join(re.escape(name) for name in sorted({*names, defaults}) if name)
    candidates = re.compile(rf"\n(\[[^\n]*(?:{mentions}|[\"'\\])[^\n]*)")
    kept = [text[: next_header(0)]]
    for line in candidates.finditer(text):
        header = section.match(line.group(1).strip())
        if header is not None and (header.group("header") == defaults or keep(header.group("header"))):
            kept.append(text[line.start() : next_header(line.end())])
    return "".join(kept)


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


def read_ini(path: Path, only: Collection[str] | None = None) -> dict[str, dict[str, str]] | None:
    """``parse_ini`` of a file (with ``only``, of just those sections); ``None`` if it does not exist,
    ``ConfigError`` (naming the file) if it is broken."""
    text = _read_text(path)
    if text is None:
        return None
    if only is not None:
        wanted = set(only)
        text = only_sections(text, wanted, lambda header: header in wanted)
    try:
        return parse_ini(text)
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path} cannot be parsed ({first_line})") from exc


def source_profile_mfa_serial(settings: Settings, profile: str) -> str:
    """The MFA device of a source profile: its own ``mfa_serial``, else the one its environments all name."""
    path = settings.aws_config_file
    serial = load_profiles(path, only={profile}).get(profile, {}).get("mfa_serial")
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


def load_environments(
    settings: Settings, only: Collection[str] | None = None, *, whole_file: bool = False
) -> Environments:
    """Every ``[profile <prefix><name>]`` of the AWS config that defines an environment, and those that do so badly.

    Only those sections and their source profiles are parsed (configparser costs ~0.1 ms a section, and leaves
    cyclic garbage whose collection stops the daemon's event loop): a section elsewhere that no AWS tool could
    parse is `doctor`'s to report (``whole_file``). ``only``: the names a person typed (``production`` or
    ``govuk-production``); then just the profiles those can name. If one of them names nothing, every environment
    is loaded, so that the message lists the ones there are.
    """
    path = settings.aws_config_file
    prefix = settings.profile_prefix
    text = _read_text(path)
    if text is None:
        return _environments(settings, {})
    if whole_file:
        return _environments(settings, _profiles(path, text, None))
    if only is None:
        _refuse_too_many_environments(path, prefix, text)
        return _environments(settings, _with_sources(path, text, lambda name: name.startswith(prefix), {prefix}))
    candidates = {prefix + name for name in only} | {name for name in only if name.startswith(prefix)}
    environments = _environments(settings, _with_sources(path, text, candidates.__contains__, candidates))
    found = set(environments.specs) | set(environments.problems)
    if all(environments.canonical(name) in found for name in only):
        return environments
    return load_environments(settings)


def _with_sources(
    path: Path, text: str, wanted: Callable[[str], bool], mentions: Collection[str]
) -> dict[str, dict[str, Any]]:
    """The profiles ``wanted`` accepts (each named with one of ``mentions``), and the source profiles they name."""
    profiles = _profiles(path, text, mentions, wanted)
    sources = {str(values["source_profile"]) for values in profiles.values() if values.get("source_profile")}
    missing = sources - set(profiles)
    if missing:
        profiles.update(_profiles(path, text, missing, missing.__contains__))
    return profiles


def _refuse_too_many_environments(path: Path, prefix: str, text: str) -> None:
    """Count the environments' section headers before parsing any: a file of 100,000 is refused at once."""
    headers = len(re.findall(r"\n\[[ \t]*profile[ \t]+[\"']?" + re.escape(prefix), "\n" + text))
    if headers > MAX_ENVIRONMENTS:
        raise ConfigError(
            f"{path} defines {headers} environments ([profile {prefix}...]); govuk-imds serves at most "
            f"{MAX_ENVIRONMENTS}: is profile_prefix {prefix!r} right?"
        )


def _environments(settings: Settings, profiles: Mapping[str, Mapping[str, Any]]) -> Environments:
    path = settings.aws_config_file
    prefix = settings.profile_prefix
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
    if len(specs) + len(problems) > MAX_ENVIRONMENTS:
        raise ConfigError(
            f"{path} defines {len(specs) + len(problems)} environments ([profile {prefix}...]); govuk-imds serves at "
            f"most {MAX_ENVIRONMENTS}: is profile_prefix {prefix!r} right?"
        )
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
        duration = int(duration_text) if len(duration_text) <= 12 else -1
    except ValueError as exc:
        raise ConfigError(f"{where}: duration_seconds {shown(duration_text)} is not a number") from exc
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
    region = values.get("region") or source.get("region")
    if region is not None and not REGION.fullmatch(region):
        raise ConfigError(f"{where}: region {shown(region)} is not an AWS region (like eu-west-1)")
    session_name = values.get("role_session_name") or _session_name_from(mfa_serial)
    if not ROLE_SESSION_NAME.fullmatch(session_name):
        raise ConfigError(f"{where}: role_session_name {session_name!r} is not allowed by AWS ([\\w+=,.@-], 2-64)")
    return EnvironmentSpec(
        name=name,
        profile=profile,
        role_arn=role_arn,
        mfa_serial=mfa_serial,
        source_profile=source_profile,
        region=region,
        role_duration_seconds=duration,
        role_session_name=session_name,
    )


def _session_name_from(mfa_serial: str) -> str:
    """``arn:...:mfa/first.last@digital.cabinet-office.gov.uk`` -> ``first.last@digital.cabinet-office.gov.uk``,
    so CloudTrail shows who did what."""
    candidate = re.sub(r"[^\w+=,.@-]", "-", mfa_serial.rsplit("/", 1)[-1])[:64]
    return candidate if len(candidate) >= 2 else f"govuk-imds-{os.getuid()}"
