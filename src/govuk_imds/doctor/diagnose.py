"""`doctor` put together: every check and probe, in the order a person would fix things."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ..aws.endpoints import sts_url
from ..config.aws_config import Environments, credentials_file, load_environments
from ..config.settings import Settings
from ..core.clock import Clock, SystemClock
from ..errors import ConfigError, GovukImdsError
from .checks import (
    SERVING_STATES,
    check_clock,
    check_credentials_file,
    check_daemon,
    check_daemon_clock,
    check_default_profile,
    check_endpoint,
    check_profiles,
    check_runtime_dir,
    check_sessions,
    check_shell_endpoint,
    check_token_files,
    check_variables,
)
from .findings import Finding, Status, problem
from .probes import fetch_credentials, probe_daemon, read_sts_date


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
        environments = load_environments(settings, whole_file=True)
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
        lambda: check_token_files(settings.runtime, names, uid=uid, daemon_running=probe.running),
    )
    findings += token_findings
    if probe.running:
        findings += check_sessions(rows, names, named=focus is not None)
        findings += check_daemon_clock(probe.status or {})
        broken_tokens = {finding.subject for finding in token_findings if finding.status is not Status.OK}
        for name in unlocked:
            if name not in broken_tokens:
                runtime = settings.runtime
                answer = fetch_credentials(
                    settings.port, name, runtime.token_file(name), control_socket=runtime.control_socket
                )
                findings += check_endpoint(name, answer, clock.now())

    findings += _guarded("clock", lambda: check_clock(read_sts_date(sts_url(settings, region), clock)))
    return findings


def _guarded(check: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """A check that cannot run is itself a finding, never a traceback."""
    try:
        return run()
    except (GovukImdsError, OSError) as exc:
        return [problem(check, f"could not run this check: {exc}", "govuk-imds doctor --debug")]
