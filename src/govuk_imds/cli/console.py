"""`govuk-imds console`: the AWS console in a browser, signed in as an environment's role, with no new MFA code.

The daemon mints fresh role credentials from the MFA session it holds (one hour, never past that session); this
process turns them into a sign-in at AWS's federation endpoint and hands it to the browser through a one-shot page
on 127.0.0.1, so the sign-in URL is never in a process's argv and never logged. ``--print`` writes it to stdout
instead, and not to a terminal unless asked twice. Every check that needs no AWS call runs before the first one.
No boto3: the standard library and the control socket do it all.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from .. import control
from ..aws.endpoints import DEFAULT_REGION, signin_url
from ..config.aws_config import load_environments
from ..config.settings import Settings
from ..console.destination import destination, service_names
from ..core.clock import rfc3339
from ..core.credentials import RoleCredentials
from ..core.environment import EnvironmentSpec
from ..core.timefmt import local_time
from ..errors import BrowserUnavailable, ControlError, InvalidInput
from ..hardening import keep_memory_private
from ._common import AddCommand, confirm_environment
from .on_demand import unlock_now

if TYPE_CHECKING:
    from ..aws.federation import BrowserRequest


def add_commands(command: AddCommand) -> None:
    console = command("console", cmd_console, "open the AWS console signed in as an environment's role")
    console.add_argument("environment", nargs="?", metavar="ENVIRONMENT")
    console.add_argument("--service", help="land on this service (names: --list-services)")
    console.add_argument("--path", help="land on this console page: its address after the host, like ec2/home")
    console.add_argument("--region", help="the console's region (default: the environment's region)")
    console.add_argument(
        "--no-logout",
        dest="logout",
        action="store_false",
        help="do not sign out of an open console session first (not needed with the console's multi-session "
        "support turned on)",
    )
    console.add_argument(
        "--print",
        dest="print_url",
        action="store_true",
        help="write the sign-in URL to stdout instead of opening a browser; it signs anyone in, so it is not "
        "written to a terminal without --yes",
    )
    console.add_argument(
        "--yes",
        action="store_true",
        help="do not ask: for an environment with confirm = true, and with --print to write the URL to a terminal",
    )
    console.add_argument("--list-services", action="store_true", help="list the names --service knows")
    console.add_argument("--no-unlock", action="store_true", help="do not unlock a locked environment first")


def cmd_console(arguments: argparse.Namespace, settings: Settings) -> int:
    if arguments.list_services:
        print("\n".join(service_names()))
        return 0
    if arguments.environment is None:
        raise InvalidInput("name an environment: `govuk-imds console ENVIRONMENT` (`govuk-imds status` lists them)")
    spec = load_environments(settings, only=[arguments.environment]).resolve(arguments.environment)
    partition = spec.role_arn.split(":")[1]
    if partition != "aws":
        raise InvalidInput(f"govuk-imds signs in to the console of the aws partition only ({spec.name}'s role is "
                           f"in {partition})")
    place = destination(arguments.region or spec.region or DEFAULT_REGION, service=arguments.service,
                        path=arguments.path)
    _check_output(arguments, spec)
    if settings.guards_for(spec.name).confirm:
        confirm_environment(spec.name, "Open the AWS console as {environment}?", yes=arguments.yes,
                            setting=settings.guards_setting(spec.name))
    # Here, not at the top: every other command would pay for urllib's and http.server's imports.
    from ..aws.federation import Federation

    federation = Federation(signin_url(settings))
    _harden_before_secrets()
    answer = _credentials(settings, spec, unlock=not arguments.no_unlock)
    if isinstance(answer, int):
        return answer  # the unlock failed, and has said why
    credentials = RoleCredentials.from_wire(answer["credentials"])
    request = federation.login(federation.signin_token(credentials), place)
    if arguments.logout:
        request = federation.logout_then(request)
    if arguments.print_url:
        sys.stdout.write(request.url + "\n")
        sys.stdout.flush()
        print(_summary(spec, answer, credentials, printed=True), file=sys.stderr)
        return 0
    _open(request, spec)
    print(_summary(spec, answer, credentials, printed=False))
    return 0


def _credentials(settings: Settings, spec: EnvironmentSpec, *, unlock: bool) -> dict[str, Any] | int:
    """Fresh role credentials from the daemon; a locked environment is unlocked first (unless ``--no-unlock``, or
    there is no way to ask for a code here: then the daemon's EnvironmentLocked, exit status 5, says what to run).
    An unlock that failed gives its exit status."""
    request = {"op": "console", "environment": spec.name}
    try:
        return control.request(settings.runtime.control_socket, request)
    except ControlError as exc:
        if exc.code != "EnvironmentLocked" or not unlock:
            raise
        status = unlock_now(settings, spec)
        if status is None:
            raise
        if status:
            return status
    return control.request(settings.runtime.control_socket, request)


def _check_output(arguments: argparse.Namespace, spec: EnvironmentSpec) -> None:
    """Refuse what cannot work before any credentials are minted."""
    if arguments.print_url:
        if sys.stdout.isatty() and not arguments.yes:
            raise InvalidInput(
                "the sign-in URL signs anyone in who has it, so it is not written to a terminal unless you add "
                f"--yes; or pipe it: `govuk-imds console {spec.name} --print | <command>`"
            )
    else:
        from ..console.browser import has_browser

        if not has_browser(os.environ):
            raise BrowserUnavailable(f"no browser to open (no $BROWSER and no display); {_print_instead(spec)}")


def _print_instead(spec: EnvironmentSpec) -> str:
    return f"`govuk-imds console {spec.name} --print` writes the sign-in URL to paste into a browser instead"


def _open(request: BrowserRequest, spec: EnvironmentSpec) -> None:
    from ..console.browser import open_page
    from ..console.handoff import Handoff

    with Handoff(request) as handoff:
        open_page(handoff, _print_instead(spec))


def _harden_before_secrets() -> None:
    """From here on this process holds role credentials and a sign-in token: no core dump may write them out, and
    no other process of the user may read its memory (``hardening``, shared by every command that holds a secret).
    A browser started from here inherits only the core limit of 0, harmlessly."""
    keep_memory_private()


def _summary(spec: EnvironmentSpec, answer: dict[str, Any], credentials: RoleCredentials, printed: bool) -> str:
    who = f"as {spec.role_arn.rsplit('/', 1)[-1]} (account {answer.get('account_id') or spec.account_id})"
    until = local_time(rfc3339(credentials.expiration))
    if printed:
        return (f"{spec.name}: sign-in URL for the AWS console {who} written; use it within 15 minutes; the console "
                f"session lasts until {until}")
    return (f"{spec.name}: opened the AWS console in your browser {who}; the console session lasts until {until}, "
            f"then `govuk-imds console {spec.name}` again")
