"""govuk-imds's own settings, from its TOML file, built once before any I/O.

Precedence is CLI flag > environment variable > file > default. Nothing is read from ``os.environ`` at import
time: callers pass the environment in. Bad configuration is one ``ConfigError`` line that names the file, the
table and the key. This module stays light (no boto3, no aiohttp): the quick CLI commands use it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..core.guards import NO_GUARDS, Guards
from ..core.session import MIN_SERVED_LIFETIME
from ..core.shapes import REGION, shown
from ..errors import ConfigError
from .files import read_user_file
from .guards import GUARD_KEYS, read_guards
from .paths import RuntimePaths, default_config_file, default_runtime_dir, default_state_dir

DEFAULT_PORT = 9911
DEFAULT_ROTATION_MARGIN = timedelta(minutes=30)
DEFAULT_SESSION_DURATION = timedelta(hours=8)
DEFAULT_PREFIX = "govuk-"
#: How long a source of MFA codes (``mfa_process``, a GUI prompt) may take: a YubiKey waits about 15 s for a touch,
#: and a person needs some time to find a phone and type.
DEFAULT_CODE_TIMEOUT = timedelta(seconds=60)
CODE_TIMEOUT_RANGE = (timedelta(seconds=1), timedelta(minutes=10))
#: What the daemon does when a tool asks for a locked environment (besides answering 423 at once).
PROMPT_MODES = ("notify", "gui", "off")
# GetSessionToken accepts 15 minutes to 36 hours.
SESSION_DURATION_RANGE = (timedelta(minutes=15), timedelta(hours=36))
#: Far beyond any duration that makes sense here, and far inside what ``timedelta`` holds: a longer number of seconds
#: is refused as a duration, never an overflow (a string's units take at most 9 digits each, days 5, for the same
#: reason).
MAX_DURATION = timedelta(days=1000)
_DURATION = re.compile(r"(?:(\d{1,5})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?")
#: config.toml is a few lines; anything this big is not it.
MAX_SETTINGS_BYTES = 1024 * 1024
_SIZE = re.compile(r"(\d{1,12})\s*(?:([KMG])(?:i?B)?|B)?", re.IGNORECASE)
#: The audit file is rotated at ``max_size`` and ``files`` of them are kept (the live one included).
DEFAULT_AUDIT_MAX_SIZE = 8 * 1024 * 1024
DEFAULT_AUDIT_FILES = 4


def parse_duration(value: object, where: str) -> timedelta:
    """``"8h"``, ``"30m"``, ``"1h30m"``, ``"900s"``, ``"2d"`` or a number of seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_DURATION.total_seconds():
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match and any(match.groups()):
            days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
            # at most 5 digits of days and 9 of each other unit: no overflow
            duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
            if duration > timedelta(0):
                return duration
    raise ConfigError(f'{where}: {shown(value)} is not a duration; write it like "30m", "8h" or "1h30m"')


def parse_size(value: object, where: str) -> int:
    """``"8MB"``, ``"512KB"``, ``"1GB"`` (binary multiples: 1 MB = 1024 KB) or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 1024**4:
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match:
            unit = (match.group(2) or "").upper()
            return int(match.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]
    raise ConfigError(f'{where}: {shown(value)} is not a size; write it like "8MB" or "512KB"')


@dataclass(frozen=True)
class AuditSettings:
    """``[audit]``: the record of who fetched credentials (``daemon/audit.py``)."""

    file: Path
    enabled: bool = True
    max_size: int = DEFAULT_AUDIT_MAX_SIZE
    files: int = DEFAULT_AUDIT_FILES


@dataclass(frozen=True)
class Settings:
    config_file: Path
    runtime: RuntimePaths
    aws_config_file: Path
    port: int = DEFAULT_PORT
    rotation_margin: timedelta = DEFAULT_ROTATION_MARGIN
    session_duration: timedelta = DEFAULT_SESSION_DURATION
    session_duration_overrides: Mapping[str, timedelta] = field(default_factory=dict)
    #: Environments that spend a new MFA code at every unlock (``fresh_code = true``).
    fresh_code_environments: frozenset[str] = frozenset()
    profile_prefix: str = DEFAULT_PREFIX
    sts_endpoint_url: str | None = None
    sts_region: str | None = None
    iam_endpoint_url: str | None = None
    signin_endpoint_url: str | None = None
    keyring_backend: str | None = None
    log_level: str = "INFO"
    #: ``mfa_process`` from config.toml: ``None`` when it is not set there (the AWS config's is used), ``""`` for
    #: none at all.
    mfa_process: str | None = None
    #: When a tool asks for a locked environment: a desktop notification, a GUI prompt, or nothing.
    prompt: str = "notify"
    code_timeout: timedelta = DEFAULT_CODE_TIMEOUT
    #: Per-environment guard-rails (confirm, deny_callers, lock_on_screen_lock, idle_lock), by canonical name.
    guards: Mapping[str, Guards] = field(default_factory=dict)
    audit: AuditSettings | None = None

    def session_duration_for(self, environment: str) -> timedelta:
        return self.session_duration_overrides.get(environment, self.session_duration)

    def fresh_code_for(self, environment: str) -> bool:
        return environment in self.fresh_code_environments

    def guards_for(self, environment: str) -> Guards:
        return self.guards.get(environment, NO_GUARDS)

    def guards_setting(self, environment: str) -> str:
        """Where a person changes ``environment``'s guard-rails: the table in the config file."""
        return f"[environments.{environment}] of {self.config_file}"

    @property
    def endpoint_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/credentials/"


_ENVIRONMENT_KEYS = {"session_duration", "fresh_code"}
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
    "signin",
    "mfa_process",
    "prompt",
    "code_timeout",
    "audit",
}


def load_settings(environ: Mapping[str, str], *, config_file: str | None = None, port: int | None = None) -> Settings:
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
        raise ConfigError(f"{port_source}: {shown(chosen_port)} is not a port between 1 and 65535")

    margin = (
        parse_duration(document["rotation_margin"], f"{path}: rotation_margin")
        if "rotation_margin" in document
        else DEFAULT_ROTATION_MARGIN
    )
    if margin < MIN_SERVED_LIFETIME or margin > timedelta(minutes=45):
        raise ConfigError(f"{path}: rotation_margin must be between 15m and 45m (role credentials last 1h)")

    session_duration = _session_duration(document, path, "session_duration", DEFAULT_SESSION_DURATION)
    overrides: dict[str, timedelta] = {}
    fresh_code: set[str] = set()
    guards: dict[str, Guards] = {}
    environments = document.get("environments", {})
    if not isinstance(environments, dict):
        raise ConfigError(f"{path}: [environments] must be a table of [environments.<name>] tables")
    prefix = _typed(document, "profile_prefix", str, path, DEFAULT_PREFIX)
    for name, table in environments.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [environments.{name}] must be a table")
        known = _ENVIRONMENT_KEYS | GUARD_KEYS
        extra = sorted(set(table) - known)
        if extra:
            raise ConfigError(
                f"{path}: unknown setting environments.{name}.{extra[0]}; known: {', '.join(sorted(known))}"
            )
        # [environments.govuk-production] and [environments.production] name the same environment.
        canonical = name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else name
        if set(table) & GUARD_KEYS:
            guards[canonical] = read_guards(table, f"{path}: environments.{name}", parse_duration)
        if "session_duration" in table:
            overrides[canonical] = _session_duration(
                table, path, f"environments.{name}.session_duration", session_duration, key="session_duration"
            )
        if "fresh_code" in table:
            if not isinstance(table["fresh_code"], bool):
                raise ConfigError(f"{path}: environments.{name}.fresh_code must be true or false")
            if table["fresh_code"]:
                fresh_code.add(canonical)

    sts = _table(document, "sts", {"endpoint_url", "region"}, path)
    iam = _table(document, "iam", {"endpoint_url"}, path)
    signin = _table(document, "signin", {"endpoint_url"}, path)
    audit = _audit(_table(document, "audit", {"enabled", "max_size", "files"}, path), path, environ)
    if environ.get("GOVUK_IMDS_LOG_LEVEL"):
        level, level_source = environ["GOVUK_IMDS_LOG_LEVEL"], "$GOVUK_IMDS_LOG_LEVEL"
    else:
        level, level_source = _typed(document, "log_level", str, path, "INFO"), f"{path}: log_level"
    if level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{level_source}: {level!r} must be DEBUG, INFO, WARNING or ERROR")
    home = Path(environ.get("HOME", "~")).expanduser()
    prompt = _typed(document, "prompt", str, path, "notify")
    if prompt not in PROMPT_MODES:
        raise ConfigError(f'{path}: prompt must be "notify", "gui" or "off", not {prompt!r}')
    code_timeout = DEFAULT_CODE_TIMEOUT
    if "code_timeout" in document:
        code_timeout = parse_duration(document["code_timeout"], f"{path}: code_timeout")
        if not CODE_TIMEOUT_RANGE[0] <= code_timeout <= CODE_TIMEOUT_RANGE[1]:
            raise ConfigError(f"{path}: code_timeout must be between 1s and 10m")
    return Settings(
        config_file=path,
        runtime=RuntimePaths(default_runtime_dir(environ)),
        aws_config_file=Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config").expanduser(),
        port=chosen_port,
        rotation_margin=margin,
        session_duration=session_duration,
        session_duration_overrides=overrides,
        fresh_code_environments=frozenset(fresh_code),
        profile_prefix=prefix,
        sts_endpoint_url=_optional_str(sts, "endpoint_url", path, "sts"),
        sts_region=_optional_str(sts, "region", path, "sts"),
        iam_endpoint_url=_optional_str(iam, "endpoint_url", path, "iam"),
        signin_endpoint_url=_optional_str(signin, "endpoint_url", path, "signin"),
        keyring_backend=_typed(document, "keyring_backend", str, path, None),
        log_level=level.upper(),
        mfa_process=_typed(document, "mfa_process", str, path, None),
        prompt=prompt,
        code_timeout=code_timeout,
        guards=guards,
        audit=audit,
    )


def _audit(table: Mapping[str, Any], path: Path, environ: Mapping[str, str]) -> AuditSettings:
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{path}: audit.enabled must be true or false")
    max_size = parse_size(table["max_size"], f"{path}: audit.max_size") if "max_size" in table else None
    if max_size is not None and not 16 * 1024 <= max_size <= 1024**3:
        raise ConfigError(f"{path}: audit.max_size must be between 16KB and 1GB")
    files = table.get("files", DEFAULT_AUDIT_FILES)
    if not isinstance(files, int) or isinstance(files, bool) or not 1 <= files <= 100:
        raise ConfigError(f"{path}: audit.files must be a number from 1 to 100 (the live file included)")
    return AuditSettings(
        file=default_state_dir(environ) / "audit.jsonl",
        enabled=enabled,
        max_size=max_size or DEFAULT_AUDIT_MAX_SIZE,
        files=files,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    data = read_user_file(path, MAX_SETTINGS_BYTES)
    if data is None:
        return {}
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or move it aside") from exc
    except ValueError as exc:  # an integer of thousands of digits, which Python refuses to convert
        raise ConfigError(f"{path}: not usable TOML ({exc}); fix the file or move it aside") from exc


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"${name}={shown(value)} is not a number") from exc


def _typed(document: Mapping[str, Any], key: str, kind: type, path: Path, default: Any) -> Any:
    if key not in document:
        return default
    value = document[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be a {kind.__name__}, not {shown(value)}")
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
    if key == "region" and value is not None and not REGION.fullmatch(value):
        raise ConfigError(f"{path}: {prefix}.{key} {shown(value)} is not an AWS region (like eu-west-1)")
    return value


def _session_duration(
    table: Mapping[str, Any], path: Path, where: str, default: timedelta, key: str = "session_duration"
) -> timedelta:
    if key not in table:
        return default
    return checked_session_duration(parse_duration(table[key], f"{path}: {where}"), f"{path}: {where}")


def checked_session_duration(duration: timedelta, where: str) -> timedelta:
    """An MFA session's length as GetSessionToken accepts it, or ``ConfigError`` naming ``where``."""
    low, high = SESSION_DURATION_RANGE
    if not low <= duration <= high:
        raise ConfigError(f"{where} must be between 15m and 36h")
    return duration


