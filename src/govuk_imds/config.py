"""Settings (from our TOML file) and environments (from the user's AWS config), each built once, before any I/O.

Precedence is CLI flag > environment variable > file > default. Nothing is read from ``os.environ`` at import
time: callers pass the environment in. Bad configuration is one ``ConfigError`` line that names the file, the
profile or table, and the key. This module stays light (no boto3, no aiohttp): the quick CLI commands use it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .errors import ConfigError, UnknownEnvironment
from .paths import RuntimePaths, default_config_file, default_runtime_dir
from .session import MIN_SERVED_LIFETIME

DEFAULT_PORT = 9911
DEFAULT_ROTATION_MARGIN = timedelta(minutes=30)
DEFAULT_SESSION_DURATION = timedelta(hours=8)
DEFAULT_ROLE_DURATION = 3600  # AWS caps role chaining at one hour
DEFAULT_PREFIX = "govuk-"
# GetSessionToken accepts 15 minutes to 36 hours.
SESSION_DURATION_RANGE = (timedelta(minutes=15), timedelta(hours=36))

ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
MFA_SERIAL = re.compile(r"[\w+=/:,.@-]{9,256}")
ROLE_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: object, where: str) -> timedelta:
    """``"8h"``, ``"30m"``, ``"1h30m"``, ``"900s"`` or a number of seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match and any(match.groups()):
            hours, minutes, seconds = (int(part or 0) for part in match.groups())
            duration = timedelta(hours=hours, minutes=minutes, seconds=seconds)
            if duration > timedelta(0):
                return duration
    raise ConfigError(f'{where}: {value!r} is not a duration; write it like "30m", "8h" or "1h30m"')


@dataclass(frozen=True)
class Settings:
    config_file: Path
    runtime: RuntimePaths
    aws_config_file: Path
    port: int = DEFAULT_PORT
    rotation_margin: timedelta = DEFAULT_ROTATION_MARGIN
    session_duration: timedelta = DEFAULT_SESSION_DURATION
    session_duration_overrides: Mapping[str, timedelta] = field(default_factory=dict)
    profile_prefix: str = DEFAULT_PREFIX
    sts_endpoint_url: str | None = None
    sts_region: str | None = None
    iam_endpoint_url: str | None = None
    keyring_backend: str | None = None
    log_level: str = "INFO"

    def session_duration_for(self, environment: str) -> timedelta:
        return self.session_duration_overrides.get(environment, self.session_duration)

    @property
    def endpoint_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/credentials/"


_TOP_KEYS = {
    "port",
    "rotation_margin",
    "session_duration",
    "profile_prefix",
    "log_level",
    "keyring_backend",
    "environments",
    "sts",
    "iam",
}


def load_settings(
    environ: Mapping[str, str], *, config_file: str | None = None, port: int | None = None, log_level: str | None = None
) -> Settings:
    """Build the settings once: flags, then ``GOVUK_IMDS_*`` variables, then the TOML file, then defaults."""
    path = Path(config_file) if config_file else default_config_file(environ)
    document = _read_toml(path)
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(_TOP_KEYS))}")

    chosen_port, port_source = port, "--port"
    if chosen_port is None:
        chosen_port, port_source = _env_int(environ, "GOVUK_IMDS_PORT"), "$GOVUK_IMDS_PORT"
    if chosen_port is None:
        chosen_port, port_source = _typed(document, "port", int, path, DEFAULT_PORT), f"{path}: port"
    if not 1 <= chosen_port <= 65535:
        raise ConfigError(f"{port_source}: {chosen_port} is not a port between 1 and 65535")

    margin = (
        parse_duration(document["rotation_margin"], f"{path}: rotation_margin")
        if "rotation_margin" in document
        else DEFAULT_ROTATION_MARGIN
    )
    if margin < MIN_SERVED_LIFETIME or margin > timedelta(minutes=45):
        raise ConfigError(f"{path}: rotation_margin must be between 15m and 45m (role credentials last 1h)")

    session_duration = _session_duration(document, path, "session_duration", DEFAULT_SESSION_DURATION)
    overrides: dict[str, timedelta] = {}
    environments = document.get("environments", {})
    if not isinstance(environments, dict):
        raise ConfigError(f"{path}: [environments] must be a table of [environments.<name>] tables")
    prefix = _typed(document, "profile_prefix", str, path, DEFAULT_PREFIX)
    for name, table in environments.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [environments.{name}] must be a table")
        extra = sorted(set(table) - {"session_duration"})
        if extra:
            raise ConfigError(f"{path}: unknown setting environments.{name}.{extra[0]}; only session_duration")
        if "session_duration" in table:
            # [environments.govuk-production] and [environments.production] name the same environment.
            canonical = name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else name
            overrides[canonical] = _session_duration(
                table, path, f"environments.{name}.session_duration", session_duration, key="session_duration"
            )

    sts = _table(document, "sts", {"endpoint_url", "region"}, path)
    iam = _table(document, "iam", {"endpoint_url"}, path)
    if log_level:
        level, level_source = log_level, "--log-level"
    elif environ.get("GOVUK_IMDS_LOG_LEVEL"):
        level, level_source = environ["GOVUK_IMDS_LOG_LEVEL"], "$GOVUK_IMDS_LOG_LEVEL"
    else:
        level, level_source = _typed(document, "log_level", str, path, "INFO"), f"{path}: log_level"
    if level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{level_source}: {level!r} must be DEBUG, INFO, WARNING or ERROR")
    home = Path(environ.get("HOME", "~")).expanduser()
    return Settings(
        config_file=path,
        runtime=RuntimePaths(default_runtime_dir(environ)),
        aws_config_file=Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config").expanduser(),
        port=chosen_port,
        rotation_margin=margin,
        session_duration=session_duration,
        session_duration_overrides=overrides,
        profile_prefix=prefix,
        sts_endpoint_url=_optional_str(sts, "endpoint_url", path, "sts"),
        sts_region=_optional_str(sts, "region", path, "sts"),
        iam_endpoint_url=_optional_str(iam, "endpoint_url", path, "iam"),
        keyring_backend=_typed(document, "keyring_backend", str, path, None),
        log_level=level.upper(),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or move it aside") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"${name}={value!r} is not a number") from exc


def _typed(document: Mapping[str, Any], key: str, kind: type, path: Path, default: Any) -> Any:
    if key not in document:
        return default
    value = document[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be a {kind.__name__}, not {value!r}")
    return value


def _table(document: Mapping[str, Any], name: str, allowed: set[str], path: Path) -> dict[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {name}.{unknown[0]}; known: {', '.join(sorted(allowed))}")
    return table


def _optional_str(table: Mapping[str, Any], key: str, path: Path, prefix: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: {prefix}.{key} must be a string")
    return value


def _session_duration(
    table: Mapping[str, Any], path: Path, where: str, default: timedelta, key: str = "session_duration"
) -> timedelta:
    if key not in table:
        return default
    duration = parse_duration(table[key], f"{path}: {where}")
    low, high = SESSION_DURATION_RANGE
    if not low <= duration <= high:
        raise ConfigError(f"{path}: {where} must be between 15m and 36h")
    return duration


@dataclass(frozen=True)
class EnvironmentSpec:
    """One environment: a role to assume with an MFA session made from a source profile's key."""

    name: str
    profile: str
    role_arn: str
    mfa_serial: str
    source_profile: str
    region: str | None
    role_duration_seconds: int
    role_session_name: str

    @property
    def account_id(self) -> str:
        return self.role_arn.split(":")[4]

    def to_wire(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_wire(cls, document: Mapping[str, Any]) -> EnvironmentSpec:
        """Rebuild a spec sent over the control socket, checking every field's type and shape."""
        try:
            values = {key: document[key] for key in cls.__dataclass_fields__}
        except (KeyError, TypeError) as exc:
            raise ConfigError("malformed environment description") from exc
        strings = [key for key in values if key not in ("region", "role_duration_seconds")]
        well_typed = (
            all(isinstance(values[key], str) for key in strings)
            and (values["region"] is None or isinstance(values["region"], str))
            and type(values["role_duration_seconds"]) is int
        )
        if not well_typed or not ENVIRONMENT_NAME.fullmatch(values["name"]) \
                or not ROLE_ARN.fullmatch(values["role_arn"]) or not MFA_SERIAL.fullmatch(values["mfa_serial"]):
            raise ConfigError("malformed environment description")
        return cls(**values)


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
            raise UnknownEnvironment(name, self.names())
        return self.specs[name]


def load_environments(settings: Settings) -> Environments:
    """Read every ``[profile <prefix><name>]`` from the AWS config with botocore's own loader."""
    from botocore.configloader import load_config  # light: botocore's package root, not the SDK
    from botocore.exceptions import BotoCoreError

    path = settings.aws_config_file
    prefix = settings.profile_prefix
    if not path.exists():
        return Environments(path, prefix, {}, {})
    try:
        profiles: dict[str, dict[str, Any]] = load_config(str(path)).get("profiles", {})
    except (BotoCoreError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be parsed ({exc}); fix the file and try again") from exc
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
