"""The `govuk-imds` command: one plain function per subcommand, one catch of ``GovukImdsError`` at the top.

The light commands (env, exec, status, lock, stop) import neither boto3 nor aiohttp nor keyring, so they answer in
a few tens of milliseconds; those libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import control, service_manager, shellenv
from .clock import parse_rfc3339, rfc3339
from .config import EnvironmentSpec, Settings, load_environments, load_settings
from .credentials import LongTermKey
from .errors import (
    CommandNotFound,
    CredentialProcessRefused,
    DaemonError,
    DaemonNotRunning,
    GovukImdsError,
    InvalidInput,
    NoKeyStored,
    UnknownEnvironmentToken,
)

#: A subcommand: receives its parsed arguments and the settings, returns the exit status.
Handler = Callable[[argparse.Namespace, Settings], int]
#: Registers a subcommand; command modules (keys, service) take one of these in their ``add_commands``.
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]

MFA_CODE = re.compile(r"\d{6}")
START_TIMEOUT_SECONDS = 20.0
#: A second `unlock` that waited for a first one to finish does nothing if the first one finished this recently.
RECENT_UNLOCK = timedelta(seconds=60)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    if not getattr(arguments, "command", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(os.environ, config_file=arguments.config, port=getattr(arguments, "port", None))
        return int(arguments.handler(arguments, settings))
    except GovukImdsError as exc:
        if arguments.debug:
            raise
        print(f"govuk-imds: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("govuk-imds: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govuk-imds",
        description=("Short-lived AWS credentials for GOV.UK environments, served on 127.0.0.1 like the ECS endpoint."),
    )
    parser.add_argument("--config", help="govuk-imds config file (default: ~/.config/govuk-imds/config.toml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Handler, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    add = command("add", cmd_add, "store a source profile's long-term key pair in the OS keyring")
    add.add_argument("source_profile", help="e.g. gds")
    start = command("start", cmd_start, "start the daemon in the background")
    start.add_argument("--port", type=int, help="credential endpoint port on 127.0.0.1")
    serve = command("serve", cmd_serve, "run the daemon in the foreground (for systemd and launchd)")
    serve.add_argument("--port", type=int, help="credential endpoint port on 127.0.0.1")
    command("stop", cmd_stop, "stop the daemon")
    command("reload", cmd_reload, "re-read the AWS config without dropping unlocked environments")
    unlock = command("unlock", cmd_unlock, "turn one MFA code into sessions for one or more environments")
    unlock.add_argument("environments", nargs="+", metavar="ENVIRONMENT")
    unlock.add_argument("--code", help="the six-digit MFA code (otherwise prompted, or read from stdin)")
    lock = command("lock", cmd_lock, "forget environments' sessions and credentials now")
    lock.add_argument("environments", nargs="*", metavar="ENVIRONMENT")
    lock.add_argument("--all", action="store_true", help="lock every environment")
    status = command("status", cmd_status, "show each environment's state")
    status.add_argument("--json", action="store_true")
    env = command("env", cmd_env, "print shell code that points AWS tools at an environment")
    env.add_argument("environment")
    env.add_argument("--shell", choices=["sh", "bash", "zsh", "fish"], default="sh")
    env.add_argument("--json", action="store_true")
    process = command("credential-process", cmd_credential_process,
                      "print credentials as credential_process JSON, for tools that only read profiles")
    process.add_argument("environment")
    profile = command("profile", cmd_profile, "print a ~/.aws/config profile that uses credential-process")
    profile.add_argument("environment")
    run = command("exec", cmd_exec, "run a command with an environment's credentials")
    run.add_argument("environment")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    from . import doctor

    doctor.add_commands(command)
    service_manager.add_commands(command)
    from . import keys

    keys.add_commands(command)
    return parser


# -- keys ---------------------------------------------------------------------------------------------------------


def cmd_add(arguments: argparse.Namespace, settings: Settings) -> int:
    from .credentials import LongTermKey
    from .keystore import open_keyring

    source_profile = arguments.source_profile
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", source_profile):
        raise InvalidInput(f"{source_profile!r} is not a profile name (letters, digits, . _ -)")
    if sys.stdin.isatty():
        key = LongTermKey.parse(getpass.getpass("Access key id: "), getpass.getpass("Secret access key: "))
    else:
        text = sys.stdin.read(65536)
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(
                'stdin is not JSON; pipe {"AccessKeyId": ..., "SecretAccessKey": ...} or what '
                "`aws iam create-access-key` prints, or run the command in a terminal to be prompted"
            ) from exc
        key = LongTermKey.from_json(document)
    store = open_keyring(settings.keyring_backend)
    store.put(source_profile, key)
    print(f"stored key {key!r} for {source_profile!r} in {store.backend_name}")
    return 0


# -- the daemon ---------------------------------------------------------------------------------------------------


def cmd_serve(arguments: argparse.Namespace, settings: Settings) -> int:
    from . import logs
    from .daemon import serve
    from .notify import notifier

    logs.configure(settings.log_level, sys.stderr, os.environ)
    return serve(settings, notifier(os.environ))


def cmd_start(arguments: argparse.Namespace, settings: Settings) -> int:
    import select
    import subprocess

    from .notify import READY_FD_VARIABLE
    from .paths import ensure_private_dir

    if service_manager.installed(os.environ):
        print("\n".join(service_manager.start_service(settings).lines))
        return 0
    try:
        answer = control.request(settings.runtime.control_socket, {"op": "ping"}, timeout=2)
    except DaemonNotRunning:
        pass
    else:
        print(f"govuk-imds is already running on 127.0.0.1:{answer['port']} (pid {answer['pid']})")
        return 0
    ensure_private_dir(settings.runtime.root)
    log_descriptor = os.open(settings.runtime.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "govuk_imds"]
    if arguments.config:
        command += ["--config", arguments.config]
    command += ["serve", "--port", str(settings.port)]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_descriptor,
            stderr=log_descriptor,
            pass_fds=(write_end,),
            start_new_session=True,
            env={**os.environ, READY_FD_VARIABLE: str(write_end)},
        )
    finally:
        os.close(write_end)
        os.close(log_descriptor)
    report = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        ready, _, _ = select.select([pipe], [], [], START_TIMEOUT_SECONDS)
        if ready:
            report = pipe.read(4096).strip()
    if report == b"READY=1":
        print(
            f"govuk-imds is running on 127.0.0.1:{settings.port} (pid {process.pid}); "
            "next: `govuk-imds unlock <environment>`"
        )
        return 0
    if report.startswith(b"ERROR="):
        raise DaemonError(report[len(b"ERROR=") :].decode(errors="replace"))
    if process.poll() is None:
        raise DaemonError(
            f"the daemon did not become ready within {START_TIMEOUT_SECONDS:.0f} s; see {settings.runtime.log_file}"
        )
    raise DaemonError(f"the daemon exited during start-up; see {settings.runtime.log_file}")


def cmd_stop(arguments: argparse.Namespace, settings: Settings) -> int:
    import time

    if service_manager.installed(os.environ):
        print("\n".join(service_manager.stop_service().lines))
        return 0
    try:
        answer = control.request(settings.runtime.control_socket, {"op": "stop"}, timeout=5)
    except DaemonNotRunning:
        print("govuk-imds is not running")
        return 0
    pid = int(answer["pid"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"govuk-imds stopped (pid {pid})")
            return 0
        time.sleep(0.05)
    raise DaemonError(f"the daemon (pid {pid}) is still running after 10 s; `kill {pid}` ends it")


def cmd_reload(arguments: argparse.Namespace, settings: Settings) -> int:
    answer = control.request(settings.runtime.control_socket, {"op": "reload"})
    print(f"reloaded; environments: {', '.join(answer['environments']) or 'none'}")
    return 0


# -- sessions -----------------------------------------------------------------------------------------------------


def cmd_unlock(arguments: argparse.Namespace, settings: Settings) -> int:
    environments = load_environments(settings)
    specs: list[EnvironmentSpec] = []
    for name in arguments.environments:
        spec = environments.resolve(name)
        if spec not in specs:
            specs.append(spec)
    devices = {(spec.source_profile, spec.mfa_serial) for spec in specs}
    if len(devices) > 1:
        raise InvalidInput("these environments use different source profiles or MFA devices; unlock them separately")
    first = specs[0]
    # Before spending a code: is the daemon there, and is there a key?
    control.request(settings.runtime.control_socket, {"op": "ping"}, timeout=5)
    from .keystore import open_keyring

    key = open_keyring(settings.keyring_backend).get(first.source_profile)
    if key is None:
        raise NoKeyStored(first.source_profile)
    with _unlock_lock(settings):
        # Another `unlock` may have finished while this one waited: AWS would refuse its code a second time, and
        # a second GetSessionToken would gain nothing.
        fresh = _recently_unlocked(settings, [spec.name for spec in specs])
        if fresh:
            print(f"{', '.join(fresh)}: unlocked a moment ago by another command; nothing to do")
            return 0
        code = _read_code(arguments.code, first.mfa_serial)
        return _unlock_with_code(settings, specs, key, code)


def _unlock_with_code(settings: Settings, specs: list[EnvironmentSpec], key: LongTermKey, code: str) -> int:
    from .sts import Sts, isolate_from_environment

    isolate_from_environment(os.environ)
    longest = max(settings.session_duration_for(spec.name) for spec in specs)
    mfa_session = Sts(settings).get_session_token(key, specs[0], code, int(longest.total_seconds()))
    now = datetime.now(UTC)
    answer = control.request(
        settings.runtime.control_socket,
        {
            "op": "unlock",
            "environments": [spec.to_wire() for spec in specs],
            "session": mfa_session.to_wire(),
            "ends_at": {spec.name: rfc3339(now + settings.session_duration_for(spec.name)) for spec in specs},
        },
    )
    failed = False
    for result in answer["results"]:
        name = result["environment"]
        if result["state"] == "active":
            print(
                f"{name}: unlocked until {_local(result['session_ends'])}; "
                f"credentials served until {_local(result['credentials_expire'])} and renewed automatically"
            )
        elif result["state"] == "degraded":
            print(
                f"{name}: unlocked until {_local(result['session_ends'])}, but the role could not be assumed yet "
                f"({result['problem']}); the daemon keeps trying, see `govuk-imds status`"
            )
        else:
            failed = True
            print(f"govuk-imds: {name}: could not assume {result['role_arn']}: {result['problem']}", file=sys.stderr)
    return 4 if failed else 0


@contextlib.contextmanager
def _unlock_lock(settings: Settings) -> Iterator[None]:
    """One unlock at a time per user: a second one waits here instead of spending another code."""
    import fcntl

    path = settings.runtime.root / "unlock.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _recently_unlocked(settings: Settings, names: list[str]) -> list[str]:
    rows = control.request(settings.runtime.control_socket, {"op": "status"}, timeout=5)["environments"]
    now = datetime.now(UTC)
    recent = {
        row["environment"]
        for row in rows
        if row["state"] != "locked" and row.get("unlocked_at")
        and now - parse_rfc3339(row["unlocked_at"]) < RECENT_UNLOCK
    }
    return names if set(names) <= recent else []


def _read_code(flag: str | None, serial: str) -> str:
    if flag is not None:
        code = flag
    elif sys.stdin.isatty():
        code = getpass.getpass(f"MFA code for {serial}: ")
    else:
        code = sys.stdin.readline()
    code = code.strip()
    if not MFA_CODE.fullmatch(code):
        raise InvalidInput("an MFA code is six digits; run the command again with the code your device shows")
    return code


def cmd_lock(arguments: argparse.Namespace, settings: Settings) -> int:
    if arguments.all == bool(arguments.environments):
        raise InvalidInput("name the environments to lock, or use --all")
    socket_path = settings.runtime.control_socket
    if arguments.all:
        answer = control.request(socket_path, {"op": "lock", "all": True}, timeout=10)
        locked = answer["locked"]
        print(f"locked: {', '.join(locked)}" if locked else "nothing was unlocked")
        return 0
    environments = load_environments(settings)
    names = [environments.canonical(name) for name in arguments.environments]
    control.request(socket_path, {"op": "lock", "environments": names}, timeout=10)
    print(f"locked: {', '.join(names)}")
    return 0


def cmd_status(arguments: argparse.Namespace, settings: Settings) -> int:
    try:
        answer = control.request(settings.runtime.control_socket, {"op": "status"}, timeout=5)
    except DaemonNotRunning:
        if arguments.json:
            print(json.dumps({"running": False, "environments": []}))
            return DaemonNotRunning.exit_code
        raise
    rows: list[dict[str, Any]] = answer["environments"]
    if arguments.json:
        print(
            json.dumps({"running": True, "pid": answer["pid"], "port": answer["port"], "environments": rows}, indent=2)
        )
        return 0
    print(f"govuk-imds running on 127.0.0.1:{answer['port']} (pid {answer['pid']})")
    if not rows:
        print(
            f"no environments yet: add a [profile {settings.profile_prefix}<name>] with role_arn, mfa_serial and "
            f"source_profile to {settings.aws_config_file}, then run `govuk-imds reload`"
        )
        return 0
    table = [("ENVIRONMENT", "STATE", "SESSION ENDS", "CREDENTIALS EXPIRE", "LAST SERVED")]
    for row in rows:
        table.append(
            (
                row["environment"],
                row["state"],
                _local(row["session_ends"]),
                _local(row["credentials_expire"]),
                _local(row["last_served"]),
            )
        )
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip())
    for row in rows:
        if row["ending_soon"]:
            print(
                f"warning: the MFA session for {row['environment']} ends at {_local(row['session_ends'])}; "
                f"run `govuk-imds unlock {row['environment']}` when it suits you"
            )
        if row["problem"] and row["state"] != "locked":
            print(f"{row['environment']}: {row['problem']}")
    return 0


def _local(timestamp: str | None) -> str:
    """A time for a person: local clock time, with the date when it is not today."""
    if not timestamp:
        return "-"
    moment = parse_rfc3339(timestamp).astimezone()
    if moment.date() == datetime.now().astimezone().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


# -- pointing tools at the endpoint --------------------------------------------------------------------------------


def _variables(settings: Settings, name: str) -> dict[str, str]:
    spec = load_environments(settings).resolve(name)
    return shellenv.endpoint_variables(
        settings.endpoint_base + spec.name, str(settings.runtime.token_file(spec.name)), spec.region, spec.name
    )


def _warn_if_not_running(settings: Settings) -> None:
    if not settings.runtime.control_socket.exists():
        print("govuk-imds: the daemon is not running; run `govuk-imds start`", file=sys.stderr)


def _warn_about_shadowing_files(settings: Settings) -> None:
    """A key pair in ``[default]`` wins over the endpoint in every SDK, and no variable can hide it without hiding
    the user's other profiles too: so say it on stderr (``eval`` still applies the variables), with the fix."""
    from .doctor import Status, check_credentials_file, check_default_profile, credentials_file

    findings = check_credentials_file(credentials_file(os.environ)) + check_default_profile(settings.aws_config_file)
    for finding in findings:
        if finding.status is Status.PROBLEM:
            print(f"govuk-imds: warning: {finding.message}; fix: {finding.fix}", file=sys.stderr)


def cmd_env(arguments: argparse.Namespace, settings: Settings) -> int:
    variables = _variables(settings, arguments.environment)
    _warn_if_not_running(settings)
    _warn_about_shadowing_files(settings)
    shell = "json" if arguments.json else arguments.shell
    print(shellenv.render(variables, shell))
    return 0


def cmd_exec(arguments: argparse.Namespace, settings: Settings) -> int:
    argv = list(arguments.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise InvalidInput(f"name a command to run: `govuk-imds exec {arguments.environment} -- <command>`")
    variables = _variables(settings, arguments.environment)
    _warn_if_not_running(settings)
    _warn_about_shadowing_files(settings)
    environment = shellenv.apply(os.environ, variables)
    sys.stdout.flush()
    try:
        os.execvpe(argv[0], argv, environment)  # noqa: S606 - exec is the point: the command's own exit status
    except FileNotFoundError as exc:
        raise CommandNotFound(f"command not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise CommandNotFound(f"command not executable: {argv[0]}") from exc


def cmd_credential_process(arguments: argparse.Namespace, settings: Settings) -> int:
    """Fetch from our own endpoint exactly as an SDK would, and print the credential_process form (Version 1)."""
    import http.client

    from .paths import read_private

    name = load_environments(settings).canonical(arguments.environment)
    try:
        token = read_private(settings.runtime.token_file(name))  # no symlink, nobody else's file
    except FileNotFoundError as exc:
        if not settings.runtime.control_socket.exists():
            raise DaemonNotRunning() from exc
        raise UnknownEnvironmentToken(f"no token for {name!r}; is it an environment? see `govuk-imds status`") from exc
    connection = http.client.HTTPConnection("127.0.0.1", settings.port, timeout=5)
    try:
        connection.request("GET", f"/v1/credentials/{name}", headers={"Authorization": token.decode("ascii")})
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        raise DaemonNotRunning() from exc
    finally:
        connection.close()
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise DaemonError(f"the daemon answered {response.status} with something that is not JSON") from exc
    if response.status != 200:
        raise CredentialProcessRefused(str(document.get("message") or f"the daemon answered {response.status}"))
    print(json.dumps({
        "Version": 1,
        "AccessKeyId": document["AccessKeyId"],
        "SecretAccessKey": document["SecretAccessKey"],
        "SessionToken": document["Token"],
        "Expiration": document["Expiration"],
    }))
    return 0


def cmd_profile(arguments: argparse.Namespace, settings: Settings) -> int:
    import shlex

    spec = load_environments(settings).resolve(arguments.environment)
    command_line = " ".join(shlex.quote(part) for part in (*_this_program(), "credential-process", spec.name))
    print(f"[profile imds-{spec.name}]")
    print(f"credential_process = {command_line}")
    if spec.region:
        print(f"region = {spec.region}")
    return 0


def _this_program() -> list[str]:
    """The absolute command that runs this very govuk-imds, for files that outlive the shell (profiles, units)."""
    entry = Path(sys.argv[0])
    if entry.name == "govuk-imds" and entry.exists():
        return [str(entry.resolve())]
    return [sys.executable, "-m", "govuk_imds"]

