"""Pointing tools at the endpoint: ``env`` (shell code to eval), ``exec`` (run one command), ``shell`` (a shell of
your own), ``credential-process`` (the full form of the lean path, with its explanations) and ``profile`` (a
``credential_process`` profile).

All five are light commands: no boto3, aiohttp or keyring on their import path. ``env``, ``exec`` and ``shell``
unlock a locked environment first (``on_demand``), which loads those only when it happens.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import NoReturn

from ..config.aws_config import load_environments
from ..config.settings import Settings
from ..core import shellenv
from ..core.environment import EnvironmentSpec
from ..errors import (
    CommandNotFound,
    CredentialProcessRefused,
    DaemonError,
    DaemonNotRunning,
    GovukImdsError,
    InvalidInput,
    UnknownEnvironmentToken,
)
from ._common import AddCommand, confirm_environment
from .on_demand import NO_UNLOCK_HELP, unlock_if_locked

YES_HELP = "run without asking, for an environment with confirm = true"


def add_commands(command: AddCommand) -> None:
    env = command("env", cmd_env, "print shell code that points AWS tools at an environment")
    env.add_argument("environment")
    env.add_argument("--shell", choices=["sh", "bash", "zsh", "fish"], default="sh")
    env.add_argument("--json", action="store_true")
    env.add_argument("--no-unlock", action="store_true", help=NO_UNLOCK_HELP)
    run = command("exec", cmd_exec, "run a command with an environment's credentials")
    run.add_argument("environment")
    run.add_argument("--no-unlock", action="store_true", help=NO_UNLOCK_HELP)
    run.add_argument("--yes", action="store_true", help=YES_HELP)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    own = command("shell", cmd_shell, "start your shell with an environment's credentials; `exit` comes back")
    own.add_argument("environment")
    own.add_argument("--no-unlock", action="store_true", help=NO_UNLOCK_HELP)
    own.add_argument("--yes", action="store_true", help=YES_HELP)
    process = command(
        "credential-process",
        cmd_credential_process,
        "print credentials as credential_process JSON, for tools that only read profiles",
    )
    process.add_argument("environment")
    profile = command("profile", cmd_profile, "print a ~/.aws/config profile that uses credential-process")
    profile.add_argument("environment")


def _variables(settings: Settings, spec: EnvironmentSpec, *, unlock: bool) -> dict[str, str] | int:
    """The variables for `env`, `exec` and `shell`, once ``spec`` is unlocked (when ``unlock``), with a line on
    stderr for anything that will stop tools using them; a failed unlock's exit status instead (it has said why)."""
    from ..config.files import runtime_dir_ready
    from ..control import listening

    # A token path inside someone else's directory is never handed out: a squatted runtime dir raises here. Whether
    # the daemon runs is asked of its socket, once: a daemon killed with SIGKILL leaves the file (and an "unlocked"
    # state) behind.
    running = runtime_dir_ready(settings.runtime.root) and listening(settings.runtime.control_socket)
    status = unlock_if_locked(settings, spec, wanted=unlock and running)
    if status:
        return status
    token_file = settings.runtime.token_file(spec.name)
    token = _token(token_file, spec.name, running=running)
    if not running:
        again = "" if token else ", then this command again (tools that read only the token variable need it)"
        print(f"govuk-imds: the daemon is not running; run `govuk-imds start`{again}", file=sys.stderr)
    _warn_about_shadowing_files(settings)
    return shellenv.endpoint_variables(
        settings.endpoint_base + spec.name,
        str(token_file),
        spec.region,
        spec.name,
        token,
        state_file=str(settings.runtime.environment_state(spec.name)),
    )


def _token(path: Path, name: str, *, running: bool) -> str | None:
    """The token for ``AWS_CONTAINER_AUTHORIZATION_TOKEN``: the file's, read as safely as the daemon reads it. When
    there is none to use, say why on stderr (the daemon writes the file at start and puts it back at reload)."""
    from ..config.files import read_private
    from ..core.shapes import TOKEN

    try:
        token = read_private(path)
    except FileNotFoundError:
        token = b""
    except GovukImdsError as exc:  # a symlink, someone else's file, one others can read
        print(f"govuk-imds: warning: {exc}; see `govuk-imds doctor {name}`", file=sys.stderr)
        return None
    if TOKEN.fullmatch(token):
        return token.decode("ascii")
    if running:
        print(f"govuk-imds: warning: {path} holds no token; run `govuk-imds reload`, then this command again",
              file=sys.stderr)
    return None


def _warn_about_shadowing_files(settings: Settings) -> None:
    """A key pair in ``[default]`` wins over the endpoint in every SDK, and no variable can hide it without hiding
    the user's other profiles too: so say it on stderr (``eval`` still applies the variables), with the fix."""
    from ..config.aws_config import credentials_file
    from ..doctor.checks import check_credentials_file, check_default_profile
    from ..doctor.findings import Status

    findings = check_credentials_file(credentials_file(os.environ), only_default=True)
    findings += check_default_profile(settings.aws_config_file)
    for finding in findings:
        if finding.status is Status.PROBLEM:
            print(f"govuk-imds: warning: {finding.message}; fix: {finding.fix}", file=sys.stderr)


def cmd_env(arguments: argparse.Namespace, settings: Settings) -> int:
    spec = load_environments(settings, only=[arguments.environment]).resolve(arguments.environment)
    variables = _variables(settings, spec, unlock=not arguments.no_unlock)
    if isinstance(variables, int):
        return variables  # nothing on stdout: `eval` changes nothing
    shell = "json" if arguments.json else arguments.shell
    print(shellenv.render(variables, shell))
    return 0


def cmd_exec(arguments: argparse.Namespace, settings: Settings) -> int:
    options, argv = _leading_options(list(arguments.argv), {"--no-unlock", "--yes"})
    if not argv:
        raise InvalidInput(f"name a command to run: `govuk-imds exec {arguments.environment} -- <command>`")
    spec = load_environments(settings, only=[arguments.environment]).resolve(arguments.environment)
    no_unlock = arguments.no_unlock or "--no-unlock" in options
    yes = arguments.yes or "--yes" in options
    _confirm(settings, spec, f"Run `{shlex.join(argv)}` with {{environment}} credentials?", yes=yes)
    variables = _variables(settings, spec, unlock=not no_unlock)
    if isinstance(variables, int):
        return variables
    _become(argv, shellenv.apply(os.environ, variables))


def cmd_shell(arguments: argparse.Namespace, settings: Settings) -> int:
    """The user's own shell, with the environment's variables (``GOVUK_IMDS_ENVIRONMENT`` for prompt segments); it
    is a child of the shell the person typed in, so `exit` leaves that one as it was."""
    spec = load_environments(settings, only=[arguments.environment]).resolve(arguments.environment)
    _confirm(settings, spec, "Start a shell with {environment} credentials?", yes=arguments.yes)
    variables = _variables(settings, spec, unlock=not arguments.no_unlock)
    if isinstance(variables, int):
        return variables
    program = _users_shell()
    inside = os.environ.get("GOVUK_IMDS_ENVIRONMENT")
    where = f" (inside the one for {inside})" if inside else ""
    print(f"govuk-imds: a new {os.path.basename(program)} for {spec.name}{where}; `exit` comes back here",
          file=sys.stderr)
    _become([program], shellenv.apply(os.environ, variables))


def _confirm(settings: Settings, spec: EnvironmentSpec, question: str, *, yes: bool) -> None:
    """An environment with ``confirm = true`` asks before anything is unlocked or run (``NotConfirmed`` if not)."""
    if settings.guards_for(spec.name).confirm:
        confirm_environment(spec.name, question, yes=yes, setting=settings.guards_setting(spec.name))


def _leading_options(argv: list[str], known: set[str]) -> tuple[set[str], list[str]]:
    """`exec ENV --no-unlock --yes -- COMMAND`: argparse hands everything after ENV to the command, so our own options
    written there are taken from its front, up to `--`."""
    taken = set()
    while argv and argv[0] in known:
        taken.add(argv.pop(0))
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return taken, argv


def _users_shell() -> str:
    """``$SHELL``, else the login shell in the password database, else ``/bin/sh``."""
    if os.environ.get("SHELL"):
        return os.environ["SHELL"]
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


def _become(argv: list[str], environment: dict[str, str]) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, environment)  # noqa: S606 - exec is the point: the command's own exit status
    except FileNotFoundError as exc:
        raise CommandNotFound(f"command not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise CommandNotFound(f"command not executable: {argv[0]}") from exc


def cmd_credential_process(arguments: argparse.Namespace, settings: Settings) -> int:
    """Fetch from our own endpoint exactly as an SDK would, and print the credential_process form (Version 1)."""
    from ..config.files import read_private, runtime_dir_ready
    from ..endpoint_client import credential_process_json, fetch

    name = load_environments(settings, only=[arguments.environment]).canonical(arguments.environment)
    runtime = settings.runtime
    if not runtime_dir_ready(runtime.root):
        raise DaemonNotRunning()
    try:
        token = read_private(runtime.token_file(name))  # no symlink, nobody else's file
    except FileNotFoundError as exc:
        if not runtime.control_socket.exists():
            raise DaemonNotRunning() from exc
        raise UnknownEnvironmentToken(f"no token for {name!r}; is it an environment? see `govuk-imds status`") from exc
    try:
        answer = fetch(settings.port, name, token.decode("ascii"), control_socket=str(runtime.control_socket))
    except OSError as exc:
        raise DaemonNotRunning() from exc
    except ValueError as exc:
        raise DaemonError("the daemon answered with something that is not HTTP") from exc
    if answer.status != 200:
        raise CredentialProcessRefused(answer.message)
    try:
        print(credential_process_json(answer.document))
    except KeyError as exc:
        raise DaemonError(f"the daemon answered {answer.status} without credentials") from exc
    return 0


def cmd_profile(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..config.locations import installed_command

    spec = load_environments(settings, only=[arguments.environment]).resolve(arguments.environment)
    program = installed_command(sys.argv[0] if sys.argv else "", sys.executable, os.environ.get("PATH", os.defpath))
    program = program or [sys.executable, "-m", "govuk_imds"]
    command_line = " ".join(shlex.quote(part) for part in (*program, "credential-process", spec.name))
    print(f"[profile imds-{spec.name}]")
    print(f"credential_process = {command_line}")
    if spec.region:
        print(f"region = {spec.region}")
    return 0
