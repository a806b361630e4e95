"""GOV.UK's accounts: ``init`` writes them into the AWS config, ``accounts`` lists them and what is configured.

``init`` never replaces anything: profiles that exist are kept and reported, every other byte of the file stays as
it was, and ``--dry-run`` prints the change as a diff instead. ``accounts`` is a light command; ``init`` imports
boto3 and the keyring only for ``--from-iam``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..config.aws_config import credentials_file, load_profiles, read_ini
from ..config.settings import Settings
from ..config.user_files import create_user_file, replace_user_file
from ..core.shapes import ACCOUNT_ID, MFA_SERIAL, role_arn_parts
from ..errors import ConfigError, InvalidInput
from ..govuk.catalogue import Catalogue, load_catalogue
from ..govuk.plan import Choices, Plan, Profile, appended, plan, wanted_profiles
from ..shells.completion import SOURCE_PROFILES, completes_to
from ._common import AddCommand, source_profile_name


def add_commands(command: AddCommand) -> None:
    init = command("init", cmd_init, "write GOV.UK's environments into your AWS config (never replacing anything)")
    init.add_argument("--email", help="your GDS email, first.last@digital.cabinet-office.gov.uk (otherwise asked)")
    role = init.add_argument(
        "--role",
        action="append",
        metavar="ROLE",
        help="a role you have: govuk-administrators, govuk-powerusers, govuk-users or any other (repeat for "
        "several; the first is the default, named govuk-<environment>)",
    )
    environment = init.add_argument(
        "--environment",
        action="append",
        metavar="ENVIRONMENT",
        help="only this GOV.UK account (repeat for several; default: all, see `govuk-imds accounts`)",
    )
    completes_to(role, lambda: load_catalogue().role_names)
    completes_to(environment, lambda: tuple(load_catalogue().accounts))
    completes_to(init.add_argument("--source-profile", help="the profile that holds your key (default: gds)"),
                 SOURCE_PROFILES)
    init.add_argument("--region", help="the region the profiles name (default: eu-west-1)")
    init.add_argument("--central-account", help="the account of your IAM user (default: gds-users, see `accounts`)")
    init.add_argument("--mfa-serial", help="your MFA device's ARN, if it is not named after your email")
    init.add_argument(
        "--from-iam", action="store_true", help="ask IAM for your user and MFA device, with the key already stored"
    )
    init.add_argument("--dry-run", action="store_true", help="print the change as a diff; write nothing")
    accounts = command("accounts", cmd_accounts, "list GOV.UK's accounts and roles, and which are configured")
    accounts.add_argument("--json", action="store_true")


# -- init -----------------------------------------------------------------------------------------------------------


def cmd_init(arguments: argparse.Namespace, settings: Settings) -> int:
    catalogue = load_catalogue()
    path = settings.aws_config_file
    environments = _environments(catalogue, arguments.environment)
    source_profile = source_profile_name(arguments.source_profile or catalogue.source_profile)
    central_account = _central_account(arguments.central_account, catalogue)
    roles = _roles(catalogue, arguments.role)
    mfa_serial, user_arn = _identity(arguments, settings, catalogue, central_account, source_profile)
    choices = Choices(
        environments=environments,
        roles=roles,
        mfa_serial=mfa_serial,
        source_profile=source_profile,
        region=arguments.region or catalogue.region,
        prefix=settings.profile_prefix,
    )
    decided = plan(wanted_profiles(catalogue, choices), load_profiles(path))
    original = _read(path)
    before = original.decode("utf-8", "surrogateescape") if original is not None else ""
    after = appended(before, decided.add)
    if arguments.dry_run:
        sys.stdout.writelines(
            difflib.unified_diff(
                before.splitlines(keepends=True), after.splitlines(keepends=True), str(path), f"{path} (after init)"
            )
        )
        _report(decided, path, written=False)
        return 0
    if decided.add:
        _write(path, original, after.encode("utf-8", "surrogateescape"))
    _report(decided, path, written=True)
    if user_arn:
        print(f"Your IAM user is {user_arn}: give it to whoever adds you to {roles[0]}.")
    _next_steps(settings, source_profile, added=bool(decided.add), environments=environments)
    return 0


def _environments(catalogue: Catalogue, named: list[str] | None) -> tuple[str, ...]:
    if not named:
        return tuple(catalogue.accounts)
    chosen: list[str] = []
    for name in named:
        canonical = name.removeprefix("govuk-")
        if canonical not in catalogue.accounts:
            raise InvalidInput(f"{name!r} is not one of GOV.UK's accounts ({', '.join(catalogue.accounts)})")
        if canonical not in chosen:
            chosen.append(canonical)
    return tuple(chosen)


def _central_account(typed: str | None, catalogue: Catalogue) -> str:
    if typed is None:
        return catalogue.central_account
    account = typed.strip()
    if not ACCOUNT_ID.fullmatch(account):
        raise InvalidInput(f"--central-account {typed!r} is not a 12-digit AWS account id")
    return account


def _roles(catalogue: Catalogue, typed: list[str] | None) -> tuple[str, ...]:
    if typed:
        words = typed
    elif sys.stdin.isatty():
        words = _ask_roles(catalogue)
    else:
        raise InvalidInput(
            f"name your role with --role ({', '.join(catalogue.role_names)}, or any other); "
            "there is no terminal to ask on"
        )
    roles: list[str] = []
    for word in words:
        role = catalogue.role_name(word)
        if role not in roles:
            roles.append(role)
    return tuple(roles)


def _ask_roles(catalogue: Catalogue) -> list[str]:
    width = max(len(name) for name in catalogue.role_names)
    sys.stderr.write("Which GOV.UK role do you have? (the group your team added you to)\n")
    for number, role in enumerate(catalogue.roles, start=1):
        sys.stderr.write(f"  {number}. {role.name.ljust(width)}  {role.who}\n")
    sys.stderr.write(f"Role [1-{len(catalogue.roles)} or a name; several with spaces, the first is the default]: ")
    sys.stderr.flush()
    words = sys.stdin.readline().split()
    if not words:
        raise InvalidInput("no role chosen; run `govuk-imds init` again, or pass --role")
    by_number = {str(number): role.name for number, role in enumerate(catalogue.roles, start=1)}
    return [by_number.get(word, word) for word in words]


def _identity(
    arguments: argparse.Namespace, settings: Settings, catalogue: Catalogue, central_account: str, source_profile: str
) -> tuple[str, str | None]:
    """The MFA device's ARN, and the IAM user's ARN when it is known."""
    if arguments.mfa_serial:
        if not MFA_SERIAL.fullmatch(arguments.mfa_serial):
            raise InvalidInput(f"--mfa-serial {arguments.mfa_serial!r} is not an MFA device ARN")
        email = catalogue.check_email(arguments.email) if arguments.email else None
        return arguments.mfa_serial, catalogue.user_arn(email, central_account) if email else None
    if arguments.from_iam:
        return _identity_from_iam(settings, source_profile)
    if arguments.email:
        typed = arguments.email
    elif sys.stdin.isatty():
        sys.stderr.write(f"Your GDS email (first.last@{catalogue.email_domain}): ")
        sys.stderr.flush()
        typed = sys.stdin.readline()
    else:
        raise InvalidInput(
            f"pass --email first.last@{catalogue.email_domain} (or --from-iam once your key is stored); "
            "there is no terminal to ask on"
        )
    email = catalogue.check_email(typed)
    return catalogue.mfa_serial(email, central_account), catalogue.user_arn(email, central_account)


def _identity_from_iam(settings: Settings, source_profile: str) -> tuple[str, str]:
    """Who the stored key belongs to (GetCallerIdentity) and its MFA device (ListMFADevices): no MFA code needed."""
    from ..aws.clients import isolate_from_environment
    from ..aws.iam import Iam
    from ..errors import NoKeyStored
    from ..keystore.backends import open_keyring

    key = open_keyring(settings.keyring_backend).get(source_profile)
    if key is None:
        raise NoKeyStored(source_profile)
    isolate_from_environment(os.environ)
    iam = Iam(settings)
    identity = iam.caller_identity(key)
    if identity.user_name is None:
        raise InvalidInput(f"the key stored for {source_profile!r} is not an IAM user's ({identity.arn})")
    devices = iam.list_mfa_devices(key, identity.user_name)
    if not devices:
        raise InvalidInput(
            f"{identity.arn} has no MFA device; add one in the AWS console first, then run `govuk-imds init` again"
        )
    if len(devices) > 1:
        raise InvalidInput(f"{identity.arn} has several MFA devices ({', '.join(devices)}); choose with --mfa-serial")
    return devices[0], identity.arn


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror})") from exc


def _write(path: Path, original: bytes | None, content: bytes) -> None:
    try:
        if original is None:
            create_user_file(Path(os.path.realpath(path)), content)
        else:
            replace_user_file(path, original, content)
    except OSError as exc:
        raise ConfigError(
            f"{path} was not changed: {exc.strerror or exc}; make it writable (`chmod u+w {path}`), or run "
            "`govuk-imds init --dry-run` and add the profiles yourself"
        ) from exc


def _report(decided: Plan, path: Path, *, written: bool) -> None:
    if decided.add:
        verb = "added to" if written else "would add to"
        print(f"{verb} {path}: {', '.join(profile.name for profile in decided.add)}")
    else:
        print(f"nothing to add to {path}")
    for kept in decided.kept:
        detail = "; ".join(kept.differences) if kept.differences else "the same as init would write"
        print(f"left as it is: [{_section(kept.name)}] is already there ({detail})")
    if any(kept.differences for kept in decided.kept):
        print(
            "init never changes a profile: edit it yourself if it is wrong; to add another role beside it, name it "
            "after the first (`--role govuk-administrators --role govuk-users` adds govuk-<environment>-users)"
        )


def _section(name: str) -> str:
    return Profile(name, ()).section


def _next_steps(settings: Settings, source_profile: str, *, added: bool, environments: tuple[str, ...]) -> None:
    credentials = read_ini(credentials_file(os.environ)) or {}
    steps: list[tuple[str, str]] = []
    if credentials.get(source_profile, {}).get("aws_access_key_id"):
        steps.append((f"govuk-imds import {source_profile}", "move your key from ~/.aws/credentials into the keyring"))
    else:
        steps.append((f"govuk-imds add {source_profile}", "store your access key in the keyring (asked, no echo)"))
    if not settings.runtime.control_socket.exists():
        steps.append(("govuk-imds start", "or `govuk-imds service install`, to start it at every login"))
    elif added:
        steps.append(("govuk-imds reload", "the daemon is running: have it read the new environments"))
    first = "integration" if "integration" in environments else environments[0]
    steps.append((f"govuk-imds unlock {first}", f"one MFA code; then `eval \"$(govuk-imds env {first})\"`"))
    width = max(len(command) for command, _ in steps)
    print("Next:")
    for command, why in steps:
        print(f"  {command.ljust(width)}  # {why}")


# -- accounts -------------------------------------------------------------------------------------------------------


def configured_profiles(catalogue: Catalogue, profiles: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """For each GOV.UK account, the profiles of the AWS config whose role is in it: ``[(profile, role), ...]``."""
    found: dict[str, list[tuple[str, str]]] = {name: [] for name in catalogue.accounts}
    for profile, values in sorted(profiles.items()):
        arn = values.get("role_arn")
        parts = role_arn_parts(arn) if isinstance(arn, str) else None
        environment = catalogue.environment_of(parts[0]) if parts else None
        if parts and environment:
            found[environment].append((profile, parts[1]))
    return found


def cmd_accounts(arguments: argparse.Namespace, settings: Settings) -> int:
    catalogue = load_catalogue()
    configured = configured_profiles(catalogue, load_profiles(settings.aws_config_file))
    if arguments.json:
        document = {
            "central_account": catalogue.central_account,
            "roles": [{"name": role.name, "who": role.who} for role in catalogue.roles],
            "accounts": [
                {
                    "environment": name,
                    "account_id": account,
                    "profiles": [{"profile": profile, "role": role} for profile, role in configured[name]],
                }
                for name, account in catalogue.accounts.items()
            ],
        }
        print(json.dumps(document, indent=2))
        return 0
    table = [("ENVIRONMENT", "ACCOUNT", f"CONFIGURED IN {settings.aws_config_file}")]
    for name, account in catalogue.accounts.items():
        profiles = ", ".join(f"{profile} ({role})" for profile, role in configured[name]) or "-"
        table.append((name, account, profiles))
    widths = [max(len(row[column]) for row in table) for column in range(2)]
    for row in table:
        print(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}")
    print()
    print("Roles:")
    width = max(len(name) for name in catalogue.role_names)
    for role in catalogue.roles:
        print(f"  {role.name.ljust(width)}  {role.who}")
    print(f"Your IAM user and MFA device live in the gds-users account, {catalogue.central_account}.")
    if not any(configured.values()):
        print("Nothing is configured yet: run `govuk-imds init`.")
    return 0
