"""The long-term key commands: ``add``, ``import``, ``rotate-key``, ``keys`` and ``remove``.

Each handler builds the store and the AWS adapter from the settings and hands them to an algorithm in ``keys/``.
keyring and boto3 are imported inside the handlers, never when the CLI starts. No secret is ever printed; key ids
appear redacted. Every handler first keeps the process's memory private (``hardening``): each one holds a key.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..config.settings import Settings
from ..core.credentials import LongTermKey
from ..errors import InvalidInput
from ..hardening import keep_memory_private
from ..keys.listing import DEFAULT_MAX_AGE_DAYS
from ._common import AddCommand, read_mfa_code, source_profile_name, terminal_confirm


def add_commands(command: AddCommand) -> None:
    add = command("add", cmd_add, "store a source profile's long-term key pair in the OS keyring")
    add.add_argument("source_profile", help="e.g. gds")
    imported = command(
        "import", cmd_import, "move a source profile's key pair from ~/.aws/credentials into the keyring"
    )
    imported.add_argument("source_profile", help="the section of the credentials file, e.g. gds")
    imported.add_argument("--credentials-file", help="default: $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials")
    imported.add_argument("--yes", action="store_true", help="remove the key pair from the file without asking")
    rotate = command("rotate-key", cmd_rotate_key, "replace a source profile's access key with a new one, safely")
    rotate.add_argument("source_profile", help="e.g. gds")
    rotate.add_argument("--code", help="the six-digit MFA code (otherwise prompted, or read from stdin)")
    listed = command("keys", cmd_keys, "list the stored source profiles, their key ids and ages")
    listed.add_argument("source_profiles", nargs="*", metavar="SOURCE_PROFILE")
    listed.add_argument(
        "--max-age-days",
        type=int,
        default=DEFAULT_MAX_AGE_DAYS,
        help=f"warn about keys older than this (default {DEFAULT_MAX_AGE_DAYS})",
    )
    removed = command("remove", cmd_remove, "delete a source profile's key from the keyring")
    removed.add_argument("source_profile", help="e.g. gds")
    removed.add_argument("--yes", action="store_true", help="delete without asking")


def cmd_add(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..keystore.backends import open_keyring

    keep_memory_private()
    source_profile = source_profile_name(arguments.source_profile)
    store = open_keyring(settings.keyring_backend)  # a missing keyring is said before the key is typed
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
    store.put(source_profile, key)
    print(f"stored key {key!r} for {source_profile!r} in {store.backend_name}")
    return 0


def cmd_import(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..aws.clients import isolate_from_environment
    from ..aws.iam import verify_key
    from ..config.aws_config import credentials_file
    from ..keys.credentials_file import import_from_credentials_file
    from ..keystore.backends import open_keyring

    keep_memory_private()
    profile = source_profile_name(arguments.source_profile)
    path = Path(arguments.credentials_file).expanduser() if arguments.credentials_file else credentials_file(os.environ)
    confirm = terminal_confirm(arguments.yes)
    store = open_keyring(settings.keyring_backend)
    isolate_from_environment(os.environ)  # after reading AWS_SHARED_CREDENTIALS_FILE: it points that at /dev/null
    result = import_from_credentials_file(path, profile, store, lambda key: verify_key(settings, key), confirm)
    stored = f"stored key {result.key!r} for {profile!r} ({result.identity_arn}) in {store.backend_name}"
    if not result.file_changed:
        print(f"{stored}; {path} was left unchanged")
    elif result.section_removed:
        print(f"{stored}; removed [{profile}] from {path}")
    else:
        print(f"{stored}; removed the key pair from [{profile}] in {path}, keeping its other settings")
    return 0


def cmd_rotate_key(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..aws.clients import isolate_from_environment
    from ..aws.iam import Iam
    from ..config.aws_config import source_profile_mfa_serial
    from ..keys.rotation import rotate_key
    from ..keystore.backends import open_keyring

    keep_memory_private()
    profile = source_profile_name(arguments.source_profile)
    serial = source_profile_mfa_serial(settings, profile)
    store = open_keyring(settings.keyring_backend)
    isolate_from_environment(os.environ)
    result = rotate_key(profile, store, Iam(settings), serial, lambda: read_mfa_code(arguments.code, serial))
    print(
        f"rotated the key for {profile!r} ({result.user_name}): {result.new_key!r} is in {store.backend_name} and "
        f"works; {result.old_key!r} is deleted in AWS"
    )
    return 0


def cmd_keys(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..aws.clients import isolate_from_environment
    from ..aws.iam import Iam
    from ..keys.listing import describe_listing, list_keys
    from ..keystore.backends import open_keyring

    keep_memory_private()
    if arguments.max_age_days < 0:
        raise InvalidInput("--max-age-days must be 0 or more")
    profiles = [source_profile_name(name) for name in arguments.source_profiles]
    store = open_keyring(settings.keyring_backend)
    isolate_from_environment(os.environ)
    listings = list_keys(store, Iam(settings), profiles)
    if not listings:
        print("no keys are stored; `govuk-imds import gds` moves one from ~/.aws/credentials")
        return 0
    now = datetime.now(UTC)
    for listing in listings:
        for line in describe_listing(listing, now, timedelta(days=arguments.max_age_days)):
            print(line)
    return 0


def cmd_remove(arguments: argparse.Namespace, settings: Settings) -> int:
    from ..keys.listing import remove_key
    from ..keystore.backends import open_keyring

    keep_memory_private()
    profile = source_profile_name(arguments.source_profile)
    confirm = terminal_confirm(arguments.yes)
    store = open_keyring(settings.keyring_backend)
    key = remove_key(profile, store, confirm)
    if key is None:
        print(f"no key is stored for {profile!r}; nothing to remove")
    else:
        print(
            f"removed key {key!r} for {profile!r} from {store.backend_name}; it is still active in AWS: delete it "
            "there too if nothing else uses it"
        )
    return 0
