"""`govuk-imds doctor`: why is a tool not getting credentials, and what fixes it?

Each check is a plain function that returns ``Finding``s: a check id, a status (ok, warning, problem), one line for a
person and one fix. The judging functions take explicit inputs (an environ mapping, file paths, a probe's result, a
clock) so they are tested without a daemon; the few probes that touch the outside (the control socket, a TCP
connect, one HTTP request to our endpoint and one to STS) are small and separate.

Exit status: 0 when no finding is a problem (warnings are advice: tools still get credentials), 1 when at least one
is; ``--strict`` counts warnings as problems too.

This module must stay light: it is imported whenever the CLI builds its parser. No boto3, aiohttp or keyring; no
secret (key, token, credentials) ever goes into a finding.
"""

from __future__ import annotations

import enum
import json
import os
import socket
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import control
from .clock import Clock, SystemClock, parse_rfc3339
from .config import Environments, Settings, load_environments
from .errors import ConfigError, DaemonNotRunning, GovukImdsError, UnknownEnvironment
from .paths import RuntimePaths
from .shellenv import SHADOWING_VARIABLES

if TYPE_CHECKING:
    import argparse

    from .cli import AddCommand

#: More skew than this between the local clock and STS is a problem: SDKs judge expiry on the local clock, and
#: AWS refuses signatures more than five minutes off.
CLOCK_TOLERANCE = timedelta(minutes=1)
#: The daemon never serves credentials with less than this left; less means something is wrong.
MIN_SERVED_LIFETIME = timedelta(minutes=15)
STS_TIMEOUT_SECONDS = 3.0
DAEMON_TIMEOUT_SECONDS = 2.0
TOKEN_SHAPE_CHARACTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

#: Variables that make every SDK take credentials from somewhere else before it asks our endpoint.
SHADOWING_REASONS = {
    "AWS_ACCESS_KEY_ID": "AWS tools use the access key in it instead of asking govuk-imds",
    "AWS_SECRET_ACCESS_KEY": "AWS tools use the key pair in the environment instead of asking govuk-imds",
    "AWS_SESSION_TOKEN": "AWS tools use the session in the environment instead of asking govuk-imds",
    "AWS_PROFILE": "AWS tools use that profile instead of asking govuk-imds",
    "AWS_DEFAULT_PROFILE": "AWS tools use that profile instead of asking govuk-imds",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": (
        "AWS tools ask the ECS agent at 169.254.170.2 instead of govuk-imds (it beats the full URI)"
    ),
    "AWS_WEB_IDENTITY_TOKEN_FILE": "AWS tools assume a role with that web identity token instead of asking govuk-imds",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": (
        "the Java SDK sends it instead of the token file's, and it goes stale when the daemon rotates tokens"
    ),
}
#: Names whose value is not a secret and helps the reader.
SHOWN_VALUES = frozenset({"AWS_PROFILE", "AWS_DEFAULT_PROFILE"})
#: Keys that make an SDK take credentials from the [default] profile of ~/.aws/config before the container provider.
DEFAULT_PROFILE_SOURCES = (
    "aws_access_key_id",
    "role_arn",
    "web_identity_token_file",
    "credential_process",
    "sso_session",
    "sso_start_url",
)
SERVING_STATES = frozenset({"active", "rotating", "degraded", "unlocking"})


class Status(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    """One thing doctor found: ``fix`` is what to type (or do) next; ``subject`` names what it is about."""

    check: str
    status: Status
    message: str
    fix: str | None = None
    subject: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def ok(check: str, message: str, subject: str | None = None) -> Finding:
    return Finding(check, Status.OK, message, None, subject)


def warning(check: str, message: str, fix: str | None, subject: str | None = None) -> Finding:
    return Finding(check, Status.WARNING, message, fix, subject)


def problem(check: str, message: str, fix: str | None, subject: str | None = None) -> Finding:
    return Finding(check, Status.PROBLEM, message, fix, subject)


# -- the shell ----------------------------------------------------------------------------------------------------


def check_variables(environ: Mapping[str, str]) -> list[Finding]:
    """Variables that shadow the endpoint: a problem when they change what tools do, a warning for leftovers."""
    findings: list[Finding] = []
    for name in SHADOWING_VARIABLES:
        value = environ.get(name)
        if not value:
            continue
        shown = f"${name} is set ({value})" if name in SHOWN_VALUES else f"${name} is set"
        reason = SHADOWING_REASONS.get(name)
        if reason:
            findings.append(problem("shadowing-variable", f"{shown}: {reason}", f"unset {name}", name))
        else:
            findings.append(
                warning(
                    "shadowing-variable",
                    f"{shown}: a leftover from another tool; harmless alone, but `govuk-imds env` clears it",
                    f"unset {name}",
                    name,
                )
            )
    if not findings:
        findings.append(ok("shadowing-variable", "no variable in this shell shadows the endpoint"))
    return findings


def check_shell_endpoint(environ: Mapping[str, str], settings: Settings, wanted: str | None) -> list[Finding]:
    """Whether this shell points AWS tools at our endpoint (``govuk-imds env`` output applied), and correctly."""
    check = "shell-endpoint"
    uri = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not uri:
        if wanted:
            return [
                warning(
                    check,
                    f"this shell does not point AWS tools at govuk-imds "
                    f"(`govuk-imds exec {wanted} -- ...` works without it)",
                    f'eval "$(govuk-imds env {wanted})"',
                    wanted,
                )
            ]
        return [ok(check, "this shell is not pointed at an environment (tools run with `govuk-imds exec` are)")]
    named = uri.rstrip("/").rsplit("/", 1)[-1] or "<environment>"
    target = wanted or named
    fix = f'eval "$(govuk-imds env {target})"'
    if not uri.startswith(settings.endpoint_base):
        return [
            problem(
                check,
                f"$AWS_CONTAINER_CREDENTIALS_FULL_URI is {uri}, not govuk-imds on 127.0.0.1:{settings.port}",
                fix,
                named,
            )
        ]
    token_file = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    expected = str(settings.runtime.token_file(named))
    if not token_file:
        return [problem(check, "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is not set: tools send no token", fix, named)]
    if token_file != expected:
        return [
            problem(check, f"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is {token_file}, not {expected}", fix, named)
        ]
    if wanted and wanted != named:
        return [warning(check, f"this shell points AWS tools at {named}, not {wanted}", fix, named)]
    return [ok(check, f"this shell points AWS tools at {named}", named)]


# -- the AWS files --------------------------------------------------------------------------------------------------


def credentials_file(environ: Mapping[str, str]) -> Path:
    """Where the SDKs look for the shared credentials file."""
    explicit = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(environ.get("HOME", "~")).expanduser() / ".aws" / "credentials"


def check_credentials_file(path: Path) -> list[Finding]:
    """Plaintext key pairs: in ``[default]`` they shadow the endpoint (a problem), elsewhere they should be imported."""
    check = "credentials-file"
    sections = _read_ini(path)
    if sections is None:
        return [ok(check, f"no {path}: no plaintext keys", str(path))]
    if isinstance(sections, str):
        return [problem(check, f"{path} cannot be parsed ({sections}); every AWS tool fails on it", f"edit {path}")]
    findings: list[Finding] = []
    for section, values in sections.items():
        if not values.get("aws_access_key_id"):
            continue
        if section == "default":
            findings.append(
                problem(
                    check,
                    f"{path} has a key pair in [default]: AWS tools use it before asking govuk-imds, "
                    "and it is a long-term key in plaintext",
                    "govuk-imds import default",
                    "default",
                )
            )
        else:
            findings.append(
                warning(
                    check,
                    f"{path} has a plaintext key pair in [{section}]; move it into the keyring",
                    f"govuk-imds import {section}",
                    section,
                )
            )
    if not findings:
        findings.append(ok(check, f"{path} holds no key pairs", str(path)))
    return findings


def check_default_profile(path: Path) -> list[Finding]:
    """A ``[default]`` profile in ~/.aws/config that yields credentials shadows the endpoint like one in credentials."""
    check = "default-profile"
    sections = _read_ini(path)
    if not isinstance(sections, dict):
        return []  # a missing or broken config file is the profiles check's to report
    values = sections.get("default") or sections.get("profile default") or {}
    sources = [key for key in DEFAULT_PROFILE_SOURCES if values.get(key)]
    if sources:
        return [
            problem(
                check,
                f"[default] in {path} has {', '.join(sources)}: AWS tools take credentials from it before asking "
                "govuk-imds",
                f"move {', '.join(sources)} out of [default] in {path} (into a named [profile ...])",
                "default",
            )
        ]
    return [ok(check, f"[default] in {path} does not shadow the endpoint")]


def _read_ini(path: Path) -> dict[str, dict[str, str]] | str | None:
    """An AWS ini file as botocore reads it: sections of raw values; ``None`` if absent, the error text if broken."""
    import configparser

    parser = configparser.RawConfigParser()
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        return None
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {section: dict(parser.items(section)) for section in parser.sections()}


def check_profiles(environments: Environments, wanted: str | None) -> list[Finding]:
    """Profiles that define an environment badly; a named environment that does not exist."""
    check = "profiles"
    findings: list[Finding] = []
    focus = environments.canonical(wanted) if wanted else None
    for name, error in sorted(environments.problems.items()):
        message, fix = _split_hint(str(error), f"edit {environments.source}")
        severity = problem if focus in (None, name) else warning
        findings.append(severity(check, message, fix, name))
    prefix = environments.prefix
    if focus is not None and focus not in environments.specs and focus not in environments.problems:
        message, _ = _split_hint(str(UnknownEnvironment(focus, environments.names())), "")
        findings.append(
            problem(
                check,
                message,
                f"add a [profile {prefix}{focus}] with role_arn, mfa_serial, source_profile and region to "
                f"{environments.source}",
                focus,
            )
        )
    elif not environments.specs and not environments.problems:
        findings.append(
            problem(
                check,
                f"{environments.source} defines no environment (no [profile {prefix}<name>])",
                f"add a [profile {prefix}production] with role_arn, mfa_serial, source_profile and region to "
                f"{environments.source}",
            )
        )
    if not findings:
        findings.append(
            ok(check, f"{environments.source} defines {', '.join(environments.names())}", str(environments.source))
        )
    return findings


def _split_hint(text: str, default_fix: str) -> tuple[str, str]:
    """Our error lines read "what happened; what to do": split them into message and fix."""
    message, separator, fix = text.partition("; ")
    return (message, fix) if separator else (text, default_fix)


# -- runtime files --------------------------------------------------------------------------------------------------


def check_runtime_dir(runtime: RuntimePaths, *, uid: int) -> list[Finding]:
    """The runtime dir and the tokens dir must be ours and 0700; the daemon refuses to start otherwise."""
    findings: list[Finding] = []
    for path in (runtime.root, runtime.tokens_dir):
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            findings.append(problem("runtime-dir", f"{path} is not a directory", f"rm {path}", str(path)))
        elif info.st_uid != uid:
            findings.append(problem("runtime-dir", f"{path} belongs to uid {info.st_uid}, not to you",
                                    f"rm -r {path}", str(path)))
        elif info.st_mode & 0o077:
            findings.append(problem("runtime-dir", f"{path} has mode {stat.S_IMODE(info.st_mode):04o}, not 0700",
                                    f"chmod 700 {path}", str(path)))
    return findings


def check_token_files(
    runtime: RuntimePaths, names: Sequence[str], *, uid: int, daemon_running: bool, unlocked: Iterable[str] = ()
) -> list[Finding]:
    """Each environment's token file: present, a regular file of ours, 0600, one token with no newline."""
    check = "token-file"
    findings: list[Finding] = []
    good: list[str] = []
    serving = set(unlocked)
    for name in names:
        path = runtime.token_file(name)
        if not daemon_running:
            rewrite = "govuk-imds start"
        elif name in serving:
            rewrite = f"govuk-imds lock {name} && govuk-imds unlock {name}"
        else:
            rewrite = f"govuk-imds lock {name}"  # locking rotates the token, which writes a fresh file
        try:
            info = path.lstat()
        except FileNotFoundError:
            findings.append(problem(check, f"{name}: no token file at {path}: tools cannot authenticate", rewrite,
                                    name))
            continue
        if not stat.S_ISREG(info.st_mode):
            findings.append(problem(check, f"{name}: {path} is not a regular file (a symlink or something else)",
                                    f"rm {path} && {rewrite}", name))
        elif info.st_uid != uid:
            findings.append(problem(check, f"{name}: {path} belongs to uid {info.st_uid}, not to you",
                                    f"rm {path} && {rewrite}", name))
        elif info.st_mode & 0o077:
            findings.append(problem(check,
                                    f"{name}: {path} has mode {stat.S_IMODE(info.st_mode):04o}, not 0600: "
                                    "other users could read the token", f"chmod 600 {path}", name))
        elif not _token_shaped(path):
            findings.append(problem(check, f"{name}: {path} does not hold a token (a newline breaks every SDK)",
                                    rewrite, name))
        else:
            good.append(name)
    if good:
        findings.append(ok(check, f"token files for {', '.join(good)} are present and private (0600)"))
    return findings


def _token_shaped(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            token = handle.read(257)
    except OSError:
        return False
    return 43 <= len(token) <= 128 and set(token) <= TOKEN_SHAPE_CHARACTERS


# -- the daemon -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonProbe:
    """What the control socket and the TCP port said. ``status`` is the daemon's status answer when it gave one."""

    status: Mapping[str, Any] | None
    error: str | None  # the control socket is there but did not answer properly
    port_open: bool
    pid_hint: int | None = None  # from state.json, for a daemon that does not answer

    @property
    def running(self) -> bool:
        return self.status is not None

    def rows(self) -> dict[str, Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = list((self.status or {}).get("environments") or [])
        return {str(row.get("environment")): row for row in rows}


def probe_daemon(runtime: RuntimePaths, port: int, *, timeout: float = DAEMON_TIMEOUT_SECONDS) -> DaemonProbe:
    status: Mapping[str, Any] | None = None
    error: str | None = None
    try:
        status = control.request(runtime.control_socket, {"op": "status"}, timeout=timeout)
    except DaemonNotRunning:
        pass
    except GovukImdsError as exc:
        error = str(exc)
    except (OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return DaemonProbe(status, error, port_open(port, timeout=timeout), _pid_from_state(runtime.state_file))


def port_open(port: int, *, timeout: float = DAEMON_TIMEOUT_SECONDS) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_from_state(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_daemon(probe: DaemonProbe, port: int, log_file: Path) -> list[Finding]:
    check = "daemon"
    if probe.status is not None:
        pid, listening = probe.status.get("pid"), probe.status.get("port")
        if listening != port:
            return [
                problem(
                    check,
                    f"the daemon (pid {pid}) serves 127.0.0.1:{listening}, but your settings say port {port}, "
                    "where `govuk-imds env` points tools",
                    "govuk-imds stop && govuk-imds start",
                )
            ]
        if not probe.port_open:
            return [
                problem(
                    check,
                    f"the daemon (pid {pid}) answers on its control socket, but nothing accepts connections on "
                    f"127.0.0.1:{port} (see {log_file})",
                    "govuk-imds stop && govuk-imds start",
                )
            ]
        return [ok(check, f"the daemon is running (pid {pid}) and accepts connections on 127.0.0.1:{port}")]
    if probe.error is not None:
        fix = f"kill {probe.pid_hint} && govuk-imds start" if probe.pid_hint else "govuk-imds stop && govuk-imds start"
        return [problem(check, f"the daemon does not answer on its control socket: {probe.error}", fix)]
    if probe.port_open:
        return [
            problem(
                check,
                f"the daemon is not running, and another program holds 127.0.0.1:{port}",
                f"lsof -nP -iTCP:{port} -sTCP:LISTEN  # then stop it, or set `port = <other>` in config.toml",
            )
        ]
    return [problem(check, "the daemon is not running", "govuk-imds start")]


def check_sessions(rows: Mapping[str, Mapping[str, Any]], names: Sequence[str], *, named: bool) -> list[Finding]:
    """Locked environments: a problem for the one you asked about, a warning otherwise (you may not need it now)."""
    check = "session"
    findings: list[Finding] = []
    for name in names:
        row = rows.get(name)
        if row is None:
            findings.append(problem(check, f"the daemon does not know {name} (the AWS config changed since it "
                                           "started)", "govuk-imds reload", name))
            continue
        state, reason = row.get("state"), row.get("problem")
        if state == "locked":
            why = f" ({reason})" if reason else ""
            severity = problem if named else warning
            findings.append(severity(check, f"{name} is locked{why}", f"govuk-imds unlock {name}", name))
        elif state == "degraded":
            findings.append(warning(check, f"{name} is unlocked, but renewing its credentials failed ({reason}); "
                                           "the daemon keeps retrying", "govuk-imds status", name))
        else:
            findings.append(ok(check, f"{name} is {state} until {_when(row.get('session_ends'))}", name))
    return findings


# -- the endpoint ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointAnswer:
    status: int | None  # None: no HTTP answer at all
    document: Mapping[str, Any]
    error: str | None = None


def fetch_credentials(port: int, name: str, token_file: Path, *, timeout: float = 5.0) -> EndpointAnswer:
    """Ask our endpoint exactly as an SDK does. Only the status, the expiry and an error message are kept."""
    import http.client

    try:
        token = token_file.read_bytes().decode("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        return EndpointAnswer(None, {}, f"cannot read {token_file}: {exc}")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", f"/v1/credentials/{name}", headers={"Authorization": token})
        response = connection.getresponse()
        body = response.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        return EndpointAnswer(None, {}, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    kept = {key: document[key] for key in ("Expiration", "code", "message") if key in document}
    return EndpointAnswer(response.status, kept)


def check_endpoint(name: str, answer: EndpointAnswer, now: datetime) -> list[Finding]:
    check = "endpoint"
    message = str(answer.document.get("message") or "")
    if answer.status is None:
        return [problem(check, f"{name}: no answer from the endpoint ({answer.error})", "govuk-imds status", name)]
    if answer.status == 200:
        try:
            expiry = parse_rfc3339(str(answer.document["Expiration"]))
        except (KeyError, ValueError):
            return [problem(check, f"{name}: the endpoint answered 200 without a valid Expiration",
                            "govuk-imds stop && govuk-imds start", name)]
        left = expiry - now
        if left < MIN_SERVED_LIFETIME:
            return [warning(check, f"{name}: the endpoint serves credentials with only {_duration(left)} left",
                            "govuk-imds status", name)]
        return [ok(check, f"{name}: the endpoint serves credentials valid for {_duration(left)}", name)]
    if answer.status in (401, 403):
        return [problem(check, f"{name}: the endpoint refused the token file's token ({message or answer.status})",
                        f"govuk-imds lock {name} && govuk-imds unlock {name}", name)]
    if answer.status == 423:
        return [problem(check, f"{name}: {message or 'locked'}", f"govuk-imds unlock {name}", name)]
    return [problem(check, f"{name}: the endpoint answered {answer.status} ({message or 'no message'})",
                    "govuk-imds status", name)]


# -- the clock ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockReading:
    """The local time halfway through one HTTP exchange with STS, and the ``Date`` STS answered with."""

    url: str
    local: datetime
    remote: datetime | None
    error: str | None = None


def sts_url(settings: Settings, region: str | None) -> str:
    """The STS endpoint the CLI and daemon use (same rule as the STS adapter)."""
    if settings.sts_endpoint_url:
        return settings.sts_endpoint_url
    return f"https://sts.{settings.sts_region or region or 'eu-west-1'}.amazonaws.com"


def read_sts_date(url: str, clock: Clock, *, timeout: float = STS_TIMEOUT_SECONDS) -> ClockReading:
    """One GET on the STS endpoint: any answer (even an error) carries the server's ``Date``."""
    import http.client
    from email.utils import parsedate_to_datetime
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    before = clock.now()
    try:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=timeout)
        try:
            connection.request("GET", parts.path or "/")
            response = connection.getresponse()
            response.read(65536)
            header = response.getheader("Date")
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return ClockReading(url, before, None, f"{type(exc).__name__}: {exc}")
    after = clock.now()
    local = before + (after - before) / 2
    if not header:
        return ClockReading(url, local, None, "the answer had no Date header")
    try:
        remote = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return ClockReading(url, local, None, f"the Date header {header!r} is not a date")
    if remote.tzinfo is None:
        remote = remote.replace(tzinfo=UTC)
    return ClockReading(url, local, remote)


def check_clock(reading: ClockReading, *, tolerance: timedelta = CLOCK_TOLERANCE,
                platform: str = sys.platform) -> list[Finding]:
    check = "clock"
    if reading.remote is None:
        return [
            warning(
                check,
                f"could not read the time from STS at {reading.url} ({reading.error}): the clock was not checked, "
                "and unlock and renewal need STS too",
                f"curl -sI {reading.url}",
            )
        ]
    # The Date header has whole seconds, so it lags the true time by up to one second.
    skew = reading.local - (reading.remote + timedelta(seconds=0.5))
    if abs(skew) > tolerance:
        direction = "ahead of" if skew > timedelta(0) else "behind"
        fix = "sudo sntp -sS time.apple.com" if platform == "darwin" else "sudo timedatectl set-ntp true"
        return [
            problem(
                check,
                f"the local clock is {_duration(abs(skew))} {direction} STS ({reading.url}): credentials look "
                "expired too early or too late, and AWS refuses requests signed more than 5 min off",
                fix,
            )
        ]
    return [ok(check, f"the local clock agrees with STS within {_duration(abs(skew))}")]


# -- putting it together ----------------------------------------------------------------------------------------------


def diagnose(
    settings: Settings,
    environ: Mapping[str, str],
    wanted: str | None = None,
    *,
    clock: Clock | None = None,
    uid: int | None = None,
) -> list[Finding]:
    """Run every check, in the order a person would fix things."""
    clock = clock or SystemClock()
    uid = os.getuid() if uid is None else uid
    environments: Environments | None = None
    broken_config: ConfigError | None = None
    try:
        environments = load_environments(settings)
    except ConfigError as exc:
        broken_config = exc
    focus = environments.canonical(wanted) if environments is not None and wanted else wanted

    findings: list[Finding] = []
    findings += _guarded("shadowing-variable", lambda: check_variables(environ))
    findings += _guarded("shell-endpoint", lambda: check_shell_endpoint(environ, settings, focus))
    findings += _guarded("credentials-file", lambda: check_credentials_file(credentials_file(environ)))
    findings += _guarded("default-profile", lambda: check_default_profile(settings.aws_config_file))
    names: list[str] = []
    region: str | None = None
    if environments is None:
        findings.append(problem("profiles", str(broken_config), f"edit {settings.aws_config_file}"))
    else:
        findings += check_profiles(environments, wanted)
        wanted_names = [focus] if focus else environments.names()
        names = [name for name in wanted_names if name in environments.specs]
        specs = [environments.specs[name] for name in names] or list(environments.specs.values())
        region = next((spec.region for spec in specs if spec.region), None)

    probe = probe_daemon(settings.runtime, settings.port)
    findings += check_daemon(probe, settings.port, settings.runtime.log_file)
    findings += _guarded("runtime-dir", lambda: check_runtime_dir(settings.runtime, uid=uid))
    rows = probe.rows()
    unlocked = [name for name in names if rows.get(name, {}).get("state") in SERVING_STATES]
    token_findings = _guarded(
        "token-file",
        lambda: check_token_files(settings.runtime, names, uid=uid, daemon_running=probe.running, unlocked=unlocked),
    )
    findings += token_findings
    if probe.running:
        findings += check_sessions(rows, names, named=focus is not None)
        broken_tokens = {finding.subject for finding in token_findings if finding.status is not Status.OK}
        for name in unlocked:
            if name not in broken_tokens:
                answer = fetch_credentials(settings.port, name, settings.runtime.token_file(name))
                findings += check_endpoint(name, answer, clock.now())

    findings += _guarded("clock", lambda: check_clock(read_sts_date(sts_url(settings, region), clock)))
    return findings


def _guarded(check: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """A check that cannot run is itself a finding, never a traceback."""
    try:
        return run()
    except (GovukImdsError, OSError) as exc:
        return [problem(check, f"could not run this check: {exc}", "govuk-imds doctor --debug")]


def exit_status(findings: Iterable[Finding], *, strict: bool = False) -> int:
    """0 when nothing stops a tool from getting credentials; 1 when something does (or, with strict, might)."""
    failing = {Status.PROBLEM, Status.WARNING} if strict else {Status.PROBLEM}
    return 1 if any(finding.status in failing for finding in findings) else 0


MARKS = {Status.OK: "ok  ", Status.WARNING: "warn", Status.PROBLEM: "FAIL"}


def render_text(findings: Sequence[Finding]) -> str:
    lines = []
    for finding in findings:
        fix = f"; fix: {finding.fix}" if finding.fix and finding.status is not Status.OK else ""
        lines.append(f"{MARKS[finding.status]} {finding.message}{fix}")
    problems = sum(finding.status is Status.PROBLEM for finding in findings)
    warnings = sum(finding.status is Status.WARNING for finding in findings)
    if problems or warnings:
        lines.append(f"{_count(problems, 'problem')}, {_count(warnings, 'warning')}")
    else:
        lines.append("all is well")
    return "\n".join(lines)


def render_json(findings: Sequence[Finding], status: int) -> str:
    return json.dumps(
        {
            "ok": status == 0,
            "problems": sum(finding.status is Status.PROBLEM for finding in findings),
            "warnings": sum(finding.status is Status.WARNING for finding in findings),
            "findings": [finding.to_json() for finding in findings],
        },
        indent=2,
    )


def cmd_doctor(arguments: argparse.Namespace, settings: Settings) -> int:
    findings = diagnose(settings, os.environ, arguments.environment)
    status = exit_status(findings, strict=arguments.strict)
    print(render_json(findings, status) if arguments.json else render_text(findings))
    return status


def add_commands(command: AddCommand) -> None:
    doctor = command("doctor", cmd_doctor, "find out why an AWS tool is not getting credentials, and how to fix it")
    doctor.add_argument("environment", nargs="?", metavar="ENVIRONMENT", help="check this environment only")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.add_argument("--strict", action="store_true", help="exit 1 on warnings too")


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def _duration(span: timedelta) -> str:
    seconds = round(abs(span).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def _when(timestamp: object) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "-"
    try:
        moment = parse_rfc3339(timestamp).astimezone()
    except ValueError:
        return timestamp
    return moment.strftime("%Y-%m-%d %H:%M")
