"""What `doctor` checks, one judging function per subject, in the order a person would fix things.

Each check takes explicit inputs (an environ mapping, a path it reads, a probe's result, the time) and returns
``Finding``s, so it is tested without a daemon. Checks read at most the local files they are given; talking to the
daemon, the endpoint or STS is ``probes``'s job.

Exit status: 0 when no finding is a problem (warnings are advice: tools still get credentials), 1 when at least one
is; ``--strict`` counts warnings as problems too. No boto3, aiohttp or keyring here.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..config.aws_config import Environments, read_ini
from ..config.files import read_private
from ..config.paths import RuntimePaths
from ..config.settings import Settings
from ..core.clock import parse_rfc3339
from ..core.session import MIN_SERVED_LIFETIME
from ..core.shapes import TOKEN
from ..core.shellenv import SHADOWING_VARIABLES, TOKEN_VARIABLE
from ..core.skew import describe, worth_telling
from ..core.timefmt import local_time, span
from ..endpoint_client import EndpointAnswer
from ..errors import ConfigError, GovukImdsError, UnknownEnvironment
from .findings import Finding, ok, problem, split_hint, warning
from .probes import ClockReading, DaemonProbe

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
}
#: The clients that read only the token variable, never the file (README, "Clients"), named when it is missing.
VARIABLE_ONLY_CLIENTS = (
    "aws CLI v2 before 2.15.0, Go SDK v1 before 1.47.11 (rclone), minio-go before 7.0.69 (restic), "
    "the JS SDK's fromContainerMetadata"
)
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


# -- the shell ----------------------------------------------------------------------------------------------------


def check_variables(environ: Mapping[str, str]) -> list[Finding]:
    """Variables that shadow the endpoint: a problem when they change what tools do, a warning for leftovers."""
    findings: list[Finding] = []
    for name in SHADOWING_VARIABLES:
        value = environ.get(name)
        if not value or name == TOKEN_VARIABLE:  # ours: `check_shell_endpoint` compares it with the token
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
    pointing = ok(check, f"this shell points AWS tools at {named}", named)
    return [pointing, *check_token_variable(environ, named, expected)]


def check_token_variable(environ: Mapping[str, str], name: str, token_file: str) -> list[Finding]:
    """``AWS_CONTAINER_AUTHORIZATION_TOKEN`` must hold the token file's token: some clients read only the variable,
    and Java and the JS SDK v2 send it rather than the file's when both are set. The token is never shown."""
    check = "token-variable"
    fix = f'eval "$(govuk-imds env {name})"'
    try:
        token = read_private(token_file)
    except (OSError, GovukImdsError):
        return []  # no usable token file: the token-file check says why
    value = environ.get(TOKEN_VARIABLE)
    if not value:
        return [
            problem(
                check,
                f"${TOKEN_VARIABLE} is not set: tools that read only the variable get a 401 ({VARIABLE_ONLY_CLIENTS})",
                fix,
                name,
            )
        ]
    import hmac  # here: `env` imports this module for two other checks

    if not hmac.compare_digest(value.encode("utf-8", "replace"), token):
        return [
            problem(
                check,
                f"${TOKEN_VARIABLE} is not {name}'s current token (it changes when the daemon starts without its "
                "port held, or on `lock --new-tokens`): tools that read the variable get a 403, and Java and the JS "
                "SDK v2 read it first",
                fix,
                name,
            )
        ]
    return [ok(check, f"${TOKEN_VARIABLE} holds {name}'s current token", name)]


# -- the AWS files --------------------------------------------------------------------------------------------------


def check_credentials_file(path: Path, *, only_default: bool = False) -> list[Finding]:
    """Plaintext key pairs: in ``[default]`` they shadow the endpoint (a problem), elsewhere they should be imported.
    ``only_default``: just the first kind (what `env` warns about; a huge file is then not parsed whole)."""
    check = "credentials-file"
    try:
        sections = read_ini(path, only={"default"} if only_default else None)
    except ConfigError as exc:
        return [problem(check, f"{exc}; every AWS tool fails on it", f"edit {path}")]
    if sections is None:
        return [ok(check, f"no {path}: no plaintext keys", str(path))]
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
    try:
        sections = read_ini(path, only={"default", "profile default"})
    except ConfigError:
        return []  # a broken config file is the profiles check's to report
    if sections is None:
        return []
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


def check_profiles(environments: Environments, wanted: str | None) -> list[Finding]:
    """Profiles that define an environment badly; a named environment that does not exist."""
    check = "profiles"
    findings: list[Finding] = []
    focus = environments.canonical(wanted) if wanted else None
    for name, error in sorted(environments.problems.items()):
        message, fix = split_hint(str(error), f"edit {environments.source}")
        severity = problem if focus in (None, name) else warning
        findings.append(severity(check, message, fix, name))
    prefix = environments.prefix
    if focus is not None and focus not in environments.specs and focus not in environments.problems:
        message, _ = split_hint(str(UnknownEnvironment(focus, environments.names(), environments.prefix)), "")
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
    runtime: RuntimePaths, names: Sequence[str], *, uid: int, daemon_running: bool
) -> list[Finding]:
    """Each environment's token file: present, a regular file of ours, 0600, one token with no newline."""
    check = "token-file"
    findings: list[Finding] = []
    good: list[str] = []
    for name in names:
        path = runtime.token_file(name)
        # The daemon writes the token files at start, and at reload puts back the file of a token it holds.
        rewrite = "govuk-imds reload" if daemon_running else "govuk-imds start"
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
    return TOKEN.fullmatch(token) is not None


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
            findings.append(ok(check, f"{name} is {state} until {local_time(row.get('session_ends'))}", name))
    return findings


def check_endpoint(name: str, answer: EndpointAnswer | str, now: datetime) -> list[Finding]:
    """``answer`` is the endpoint's answer, or why there was none."""
    check = "endpoint"
    if isinstance(answer, str):
        return [problem(check, f"{name}: no answer from the endpoint ({answer})", "govuk-imds status", name)]
    message = str(answer.document.get("message") or "")
    if answer.status == 200:
        try:
            expiry = parse_rfc3339(str(answer.document["Expiration"]))
        except (KeyError, ValueError):
            return [problem(check, f"{name}: the endpoint answered 200 without a valid Expiration",
                            "govuk-imds stop && govuk-imds start", name)]
        left = expiry - now
        if left < MIN_SERVED_LIFETIME:
            return [warning(check, f"{name}: the endpoint serves credentials with only {span(left)} left",
                            "govuk-imds status", name)]
        return [ok(check, f"{name}: the endpoint serves credentials valid for {span(left)}", name)]
    if answer.status in (401, 403):
        # The daemon holds another token than the file: reload writes the file back from the daemon's.
        return [problem(check, f"{name}: the endpoint refused the token file's token ({message or answer.status})",
                        "govuk-imds reload", name)]
    if answer.status == 423:
        return [problem(check, f"{name}: {message or 'locked'}", f"govuk-imds unlock {name}", name)]
    return [problem(check, f"{name}: the endpoint answered {answer.status} ({message or 'no message'})",
                    "govuk-imds status", name)]


def check_clock(reading: ClockReading, *, platform: str = sys.platform) -> list[Finding]:
    """The local clock against STS's ``Date``: off by a minute or more (``core.skew``) is a problem, because SDKs
    judge expiry on the local clock and AWS refuses signatures more than five minutes off."""
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
    offset = reading.remote - reading.local
    if worth_telling(offset):
        return [
            problem(
                check,
                f"the local clock is {describe(offset).removesuffix(' AWS')} STS ({reading.url}): credentials look "
                "expired too early or too late, and AWS refuses requests signed more than 5 min off",
                _clock_fix(platform),
            )
        ]
    return [ok(check, f"the local clock agrees with STS within {span(abs(offset))}")]


def check_daemon_clock(status: Mapping[str, Any], *, platform: str = sys.platform) -> list[Finding]:
    """What the daemon measured from its own STS answers (status ``clock_offset_seconds``)."""
    check = "daemon-clock"
    seconds = status.get("clock_offset_seconds")
    if not isinstance(seconds, int | float):
        return []  # no STS answer yet since the daemon started
    offset = timedelta(seconds=seconds)
    if worth_telling(offset):
        return [
            warning(
                check,
                f"the daemon measured this machine's clock {describe(offset)} from STS's answers: it judges "
                "lifetimes on AWS's clock and serves expiries on yours, but set the clock right",
                _clock_fix(platform),
            )
        ]
    return [ok(check, f"the daemon's STS answers agree with the local clock within {span(abs(offset))}")]


def _clock_fix(platform: str) -> str:
    return "sudo sntp -sS time.apple.com" if platform == "darwin" else "sudo timedatectl set-ntp true"
