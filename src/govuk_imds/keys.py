"""The long-term key commands: ``import``, ``rotate-key``, ``keys`` and ``remove``.

Each command is a plain function with explicit arguments (a store, an AWS adapter, a confirmation callback), and a
thin argparse handler that builds those from the settings. The rule throughout: a key that works is never lost.

* ``import`` changes ``~/.aws/credentials`` only after the keyring holds a copy that AWS accepted, then removes just
  that key pair, atomically, leaving every other byte and the file's mode as they were.
* ``rotate-key`` runs MFA session → CreateAccessKey → store the new key → prove it works → delete the old key. If
  any step fails, the keyring still holds a working key, and the error says exactly which keys AWS holds.

This module imports neither boto3 nor keyring at import time (the CLI imports it for every command): the adapters
are imported inside the handlers. It must never print a secret; key ids are shown redacted.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .credentials import LongTermKey, MfaSession, TemporaryCredentials, redact
from .errors import (
    ConfigError,
    GovukImdsError,
    InvalidInput,
    KeyOperationError,
    KeyStoreError,
    LongTermKeyRejected,
    NoKeyStored,
    StsError,
    StsUnavailable,
)
from .keystore import SecretStore

if TYPE_CHECKING:
    import argparse

    from .cli import AddCommand
    from .config import Settings
    from .iam import AccessKeyInfo, Identity

DEFAULT_MAX_AGE_DAYS = 90
SOURCE_PROFILE = re.compile(r"[A-Za-z0-9._-]{1,64}")
KEY_OPTIONS = ("aws_access_key_id", "aws_secret_access_key")
#: A new key can take several seconds to be accepted everywhere in AWS (IAM is eventually consistent).
VERIFY_ATTEMPTS = 8
VERIFY_DELAY_SECONDS = 2.5

#: Asks a yes/no question; true means go ahead.
Confirm = Callable[[str], bool]


class AccessKeyAdmin(Protocol):
    """What rotation and listing need from AWS (iam.Iam in the product)."""

    def caller_identity(self, credentials: LongTermKey | TemporaryCredentials) -> Identity: ...
    def get_session_token(self, key: LongTermKey, source_profile: str, mfa_serial: str, code: str) -> MfaSession: ...
    def list_access_keys(
        self, credentials: LongTermKey | TemporaryCredentials, user_name: str
    ) -> list[AccessKeyInfo]: ...
    def create_access_key(self, credentials: LongTermKey | TemporaryCredentials, user_name: str) -> LongTermKey: ...
    def delete_access_key(
        self, credentials: LongTermKey | TemporaryCredentials, user_name: str, access_key_id: str
    ) -> None: ...


# -- import ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    source_profile: str
    key: LongTermKey
    identity_arn: str
    file_changed: bool
    section_removed: bool  # False when other settings kept the section and only the key pair went


def import_from_credentials_file(
    path: Path, profile: str, store: SecretStore, verify: Callable[[LongTermKey], Identity], confirm: Confirm
) -> ImportResult:
    """Move ``[profile]``'s key pair from an AWS credentials file into ``store``.

    Order matters: parse, verify with AWS, store, read back, and only then (after ``confirm``) rewrite the file.
    A failure at any step leaves the file as it was.
    """
    original = _read_file(path)
    plan = _plan_removal(path, original, profile)
    key = LongTermKey.parse(plan.access_key_id, plan.secret_access_key)
    identity = verify(key)
    stored = store.get(profile)
    if stored is not None and stored != key:
        question = (
            f"The keyring already holds a different key ({stored!r}) for {profile!r}. "
            f"Replace it with {key!r} from {path}?"
        )
        if not confirm(question):
            raise KeyOperationError(f"nothing changed: the keyring keeps {stored!r} and {path} keeps {key!r}")
    if stored != key:
        store.put(profile, key)
    if store.get(profile) != key:
        raise KeyOperationError(f"the keyring did not keep the key {key!r} for {profile!r}; {path} was not changed")
    what = f"the [{profile}] section" if plan.whole_section else f"the key pair in [{profile}]"
    if not confirm(f"The keyring holds {key!r} for {profile!r} and AWS accepts it. Remove {what} from {path}?"):
        return ImportResult(profile, key, identity.arn, file_changed=False, section_removed=False)
    try:
        _replace_file(path, original, plan.content)
    except OSError as exc:
        raise KeyOperationError(
            f"the key {key!r} is in the keyring, but {path} could not be rewritten ({exc.strerror or exc}); "
            f"it is unchanged: remove {what} from it yourself"
        ) from exc
    return ImportResult(profile, key, identity.arn, file_changed=True, section_removed=plan.whole_section)


@dataclass(frozen=True)
class _Removal:
    access_key_id: str
    secret_access_key: str
    content: bytes  # the file without the key pair
    whole_section: bool


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist; name the credentials file with --credentials-file") from exc
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror})") from exc


def _parse(text: str) -> dict[str, dict[str, str]]:
    """Sections as the AWS CLI and botocore read them (botocore uses a ``RawConfigParser``; strict)."""
    parser = configparser.RawConfigParser()
    parser.read_file(io.StringIO(text, newline=None))  # universal newlines, as when reading the file
    parsed = {section: dict(parser.items(section)) for section in parser.sections()}
    if parser.defaults():
        parsed[parser.default_section] = dict(parser.defaults())
    return parsed


def _plan_removal(path: Path, original: bytes, profile: str) -> _Removal:
    """Find the lines that hold ``profile``'s key pair, and prove that removing them changes nothing else."""
    text = original.decode("utf-8", "surrogateescape")
    try:
        before = _parse(text)
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"{path} cannot be parsed ({first_line}); fix it and run the command again") from exc
    section = before.get(profile)
    if section is None:
        raise ConfigError(f"{path} has no [{profile}] section; nothing to import")
    missing = [option for option in KEY_OPTIONS if not section.get(option)]
    if missing:
        raise ConfigError(f"{path}: [{profile}] has no {missing[0]}; nothing to import")

    lines = [line.decode("utf-8", "surrogateescape") for line in original.splitlines(keepends=True)]
    kinds = _classify(lines)
    headers = [index for index, (kind, name) in enumerate(kinds) if kind == "header" and name == profile]
    if len(headers) != 1:
        raise ConfigError(f"{path}: cannot find exactly one [{profile}] header; edit the file yourself")
    start = headers[0]
    end = next((index for index in range(start + 1, len(lines)) if kinds[index][0] == "header"), len(lines))
    body = range(start + 1, end)
    key_lines = {
        index for index in body if kinds[index][0] in {"option", "continuation"} and kinds[index][1] in KEY_OPTIONS
    }
    others = [index for index in body if kinds[index][0] in {"option", "continuation"} and index not in key_lines]
    if others:
        removed = key_lines
    else:
        stop = max(key_lines) + 1
        while stop < end and kinds[stop][0] == "blank":  # the blank lines that separated it from what follows
            stop += 1
        removed = set(range(start, stop))
    content = "".join(line for index, line in enumerate(lines) if index not in removed)

    expected = {name: values for name, values in before.items() if name != profile}
    if others:
        expected[profile] = {option: value for option, value in section.items() if option not in KEY_OPTIONS}
    try:
        after = _parse(content)
    except configparser.Error:
        after = None
    if after != expected:
        raise ConfigError(
            f"{path}: cannot remove the [{profile}] key pair without changing something else (an unusual layout); "
            "edit the file yourself"
        )
    return _Removal(
        section[KEY_OPTIONS[0]],
        section[KEY_OPTIONS[1]],
        content.encode("utf-8", "surrogateescape"),
        whole_section=not others,
    )


def _classify(lines: Sequence[str]) -> list[tuple[str, str | None]]:
    """Each line's kind, decided the way configparser decides it: blank, comment, header, option, continuation."""
    kinds: list[tuple[str, str | None]] = []
    section: str | None = None
    option: str | None = None
    indent_level = 0
    for line in lines:
        value = line.strip()
        if value.startswith(("#", ";")):
            kinds.append(("comment", None))
            continue
        if not value:
            kinds.append(("blank", None))
            continue
        indent = len(line) - len(line.lstrip())
        if section is not None and option is not None and indent > indent_level:
            kinds.append(("continuation", option))
            continue
        indent_level = indent
        header = configparser.RawConfigParser.SECTCRE.match(value)
        if header:
            section, option = header.group("header"), None
            kinds.append(("header", section))
            continue
        match = configparser.RawConfigParser.OPTCRE.match(value)
        option = match.group("option").rstrip().lower() if match else None
        kinds.append(("option", option))
    return kinds


def _replace_file(path: Path, expected: bytes, content: bytes) -> None:
    """Write ``content`` over ``path`` (its target, if a symlink) atomically, keeping its mode and owner."""
    target = Path(os.path.realpath(path))
    info = target.stat()
    if target.read_bytes() != expected:
        raise OSError(0, "it changed while the key was being imported; run the command again")
    temporary = target.with_name(f".{target.name}.govuk-imds-{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(info.st_mode))
            with contextlib.suppress(PermissionError):
                os.fchown(handle.fileno(), info.st_uid, info.st_gid)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# -- rotate-key -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationResult:
    source_profile: str
    user_name: str
    old_key: LongTermKey
    new_key: LongTermKey


def rotate_key(
    profile: str,
    store: SecretStore,
    admin: AccessKeyAdmin,
    mfa_serial: str,
    read_code: Callable[[], str],
    *,
    verify_attempts: int = VERIFY_ATTEMPTS,
    verify_delay: float = VERIFY_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> RotationResult:
    """MFA session → CreateAccessKey → store the new key → prove it works → delete the old key.

    ``read_code`` is called once, after the stored key is found and before any AWS call.
    """
    old = store.get(profile)
    if old is None:
        raise NoKeyStored(profile)
    code = read_code()
    identity = admin.caller_identity(old)  # the old key works, and whose it is
    if identity.user_name is None:
        raise KeyOperationError(
            f"the key {old!r} for {profile!r} is not an IAM user's ({identity.arn}); nothing changed"
        )
    user = identity.user_name
    session = admin.get_session_token(old, profile, mfa_serial, code)
    unchanged = f"nothing changed: AWS holds {old!r}, which is in the keyring and works"

    try:
        before = admin.list_access_keys(session, user)
    except StsError as exc:
        raise KeyOperationError(f"could not list {user}'s access keys ({exc}); {unchanged}") from exc
    if old.access_key_id not in {info.access_key_id for info in before}:
        raise KeyOperationError(f"the key in the keyring ({old!r}) is not one of {user}'s access keys; nothing changed")
    if len(before) >= 2:
        others = [info for info in before if info.access_key_id != old.access_key_id]
        raise KeyOperationError(
            f"{user} already has two access keys ({_describe_keys(before, old)}), the most AWS allows, so there is "
            f"no room for a new one; nothing changed. Delete {_names(others)} if nothing uses it (IAM console, or "
            f"`aws iam delete-access-key --user-name {user} --access-key-id <the key ending "
            f"{others[0].access_key_id[-4:]}>`), then run `govuk-imds rotate-key {profile}` again"
        )

    try:
        new = admin.create_access_key(session, user)
    except StsError as exc:
        raise KeyOperationError(_after_failed_create(exc, admin, session, user, before, old, profile)) from exc

    rotation = _Rollback(profile, store, admin, session, user, old, new)
    try:
        try:
            store.put(profile, new)
        except Exception as exc:  # whatever went wrong, AWS now holds two keys: undo, and say where things are
            raise KeyOperationError(rotation.undo(f"the new key {new!r} could not be stored ({exc})", exc)) from exc
        rotation.new_stored = True
        try:
            _prove(admin, new, identity.arn, verify_attempts, verify_delay, sleep)
        except Exception as exc:
            raise KeyOperationError(
                rotation.undo(f"the new key {new!r} could not be proven to work ({exc})", exc)
            ) from exc
    except KeyboardInterrupt as exc:
        raise KeyOperationError(rotation.interrupted()) from exc

    try:
        admin.delete_access_key(session, user, old.access_key_id)
    except StsError as exc:
        if not _gone_anyway(exc, admin, session, user, old):
            raise KeyOperationError(
                f"rotated: the keyring holds the new key {new!r}, which works; but deleting the old key {old!r} "
                f"failed ({exc}), so AWS still holds it, active: delete it in the IAM console or with "
                f"`aws iam delete-access-key --user-name {user} --access-key-id <the key ending "
                f"{old.access_key_id[-4:]}>`"
            ) from exc
    return RotationResult(profile, user, old, new)


def _prove(
    admin: AccessKeyAdmin,
    key: LongTermKey,
    expected_arn: str,
    attempts: int,
    delay: float,
    sleep: Callable[[float], None],
) -> None:
    """GetCallerIdentity with the new key until AWS accepts it as the same user's (new keys take seconds)."""
    problem: StsError = StsUnavailable("no attempt was made")
    for attempt in range(max(attempts, 1)):
        if attempt:
            sleep(delay)
        try:
            identity = admin.caller_identity(key)
        except (LongTermKeyRejected, StsUnavailable) as exc:  # not yet known everywhere, or a passing failure
            problem = exc
            continue
        if identity.arn == expected_arn:
            return
        problem = LongTermKeyRejected(f"AWS says it belongs to {identity.arn}, not {expected_arn}")
    raise problem


class _Rollback:
    """After CreateAccessKey succeeded: put things back, and say exactly where they are."""

    def __init__(
        self,
        profile: str,
        store: SecretStore,
        admin: AccessKeyAdmin,
        session: MfaSession,
        user: str,
        old: LongTermKey,
        new: LongTermKey,
    ) -> None:
        self.profile, self.store, self.admin, self.session, self.user = profile, store, admin, session, user
        self.old, self.new = old, new
        self.new_stored = False

    def undo(self, reason: str, cause: Exception) -> str:
        old, new = self.old, self.new
        both = f"AWS holds both {old!r} and {new!r}, both active, and nothing was deleted"
        from .keystore import KeyringTimeout

        if isinstance(cause, KeyringTimeout):
            # The write may still land after we give up on it: the keyring may end up with either key, so both stay.
            return (
                f"{reason}; {both}. The keyring holds one of them, so a working key is kept whichever it is: when "
                f"it answers, run `govuk-imds keys {self.profile}` to see which, and delete the other in AWS"
            )
        try:
            if self.store.get(self.profile) != old:
                self.store.put(self.profile, old)
            restored = self.store.get(self.profile) == old
        except KeyStoreError:
            restored = False
        if not restored:
            holds = f"{new!r}" if self.new_stored else "one of them"
            return (
                f"{reason}; {old!r} could not be put back into the keyring, so it holds {holds}. {both}: run "
                f"`govuk-imds keys {self.profile}` when the keyring answers, and delete the key it does not hold"
            )
        try:
            self.admin.delete_access_key(self.session, self.user, new.access_key_id)
        except StsError as exc:
            return (
                f"{reason}; the keyring holds {old!r} again, which works. AWS holds {old!r} and also {new!r}, which "
                f"is stored nowhere and could not be deleted ({exc}): delete it in the IAM console or with "
                f"`aws iam delete-access-key --user-name {self.user} --access-key-id <the key ending "
                f"{new.access_key_id[-4:]}>`"
            )
        return (
            f"{reason}; it was deleted again, so nothing changed: AWS holds {old!r}, which is in the keyring and works"
        )

    def interrupted(self) -> str:
        try:
            held = self.store.get(self.profile)
        except KeyStoreError:
            held = None
        if held == self.new:
            holds = f"the new key {self.new!r}"
        elif held == self.old:
            holds = f"the old key {self.old!r}"
        else:
            holds = "one of them (it did not say which)"
        return (
            f"interrupted: AWS holds both {self.old!r} and {self.new!r}, both active; the keyring holds {holds}. "
            f"Run `govuk-imds keys {self.profile}`, and delete the key the keyring does not hold"
        )


def _after_failed_create(
    exc: StsError,
    admin: AccessKeyAdmin,
    session: MfaSession,
    user: str,
    before: list[AccessKeyInfo],
    old: LongTermKey,
    profile: str,
) -> str:
    from .errors import IamUnavailable

    kept = f"the keyring still holds {old!r}, which works"
    if not (isinstance(exc, IamUnavailable) and exc.maybe_done):
        return f"AWS did not create a new key ({exc}); nothing changed: AWS holds {old!r}, and {kept}"
    known = {info.access_key_id for info in before}
    try:
        extra = [info for info in admin.list_access_keys(session, user) if info.access_key_id not in known]
    except StsError:
        return (
            f"CreateAccessKey failed ({exc}) and AWS could not be asked whether it made a key anyway; {kept}. Check "
            f"with `govuk-imds keys {profile}` or the IAM console, and delete any key of {user} other than {old!r}"
        )
    if extra:
        return (
            f"CreateAccessKey failed ({exc}), but AWS created {_names(extra)} anyway and its secret never arrived, so "
            f"it is of no use; {kept}. Delete {_names(extra)} in the IAM console or with `aws iam delete-access-key "
            f"--user-name {user} --access-key-id <the key ending {extra[0].access_key_id[-4:]}>`"
        )
    return (
        f"CreateAccessKey failed ({exc}); AWS lists no new key, but one may still appear: {kept}. If the IAM "
        f"console later shows a key of {user} other than {old!r}, delete it"
    )


def _gone_anyway(exc: StsError, admin: AccessKeyAdmin, session: MfaSession, user: str, old: LongTermKey) -> bool:
    """After a DeleteAccessKey whose answer was lost: did it happen?"""
    from .errors import IamUnavailable

    if not (isinstance(exc, IamUnavailable) and exc.maybe_done):
        return False
    try:
        return old.access_key_id not in {info.access_key_id for info in admin.list_access_keys(session, user)}
    except StsError:
        return False


def _names(keys: Sequence[AccessKeyInfo]) -> str:
    return " and ".join(redact(info.access_key_id) for info in keys)


def _describe_keys(keys: Sequence[AccessKeyInfo], stored: LongTermKey) -> str:
    described = []
    for info in keys:
        where = "in the keyring, " if info.access_key_id == stored.access_key_id else ""
        created = f", created {info.created:%Y-%m-%d}" if info.created else ""
        described.append(f"{redact(info.access_key_id)}: {where}{info.status}{created}")
    return "; ".join(described)


# -- keys -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyListing:
    source_profile: str
    key: LongTermKey
    user_name: str | None = None
    status: str | None = None
    created: datetime | None = None
    problem: str | None = None  # why IAM could not say more

    def age(self, now: datetime) -> timedelta | None:
        return now - self.created if self.created else None


def list_keys(store: SecretStore, admin: AccessKeyAdmin | None, profiles: Sequence[str] = ()) -> list[KeyListing]:
    """Stored source profiles with their keys; with ``admin``, the user, status and age from IAM where reachable."""
    names = list(profiles) or store.list_profiles()
    listings: list[KeyListing] = []
    for name in names:
        key = store.get(name)
        if key is None:
            if profiles:
                raise NoKeyStored(name)
            continue
        listings.append(_look_up(name, key, admin) if admin else KeyListing(name, key))
    return listings


def _look_up(profile: str, key: LongTermKey, admin: AccessKeyAdmin) -> KeyListing:
    try:
        identity = admin.caller_identity(key)
    except GovukImdsError as exc:
        return KeyListing(profile, key, problem=str(exc))
    if identity.user_name is None:
        return KeyListing(profile, key, problem=f"not an IAM user's key ({identity.arn})")
    try:
        infos = admin.list_access_keys(key, identity.user_name)
    except GovukImdsError as exc:
        return KeyListing(profile, key, identity.user_name, problem=f"IAM would not list the keys ({exc})")
    for info in infos:
        if info.access_key_id == key.access_key_id:
            return KeyListing(profile, key, identity.user_name, info.status, info.created)
    return KeyListing(
        profile, key, identity.user_name, problem=f"IAM does not list it among {identity.user_name}'s keys"
    )


def describe_listing(listing: KeyListing, now: datetime, max_age: timedelta) -> list[str]:
    """One line for the key, and one warning line when it is older than ``max_age``."""
    parts = [listing.source_profile, redact(listing.key.access_key_id)]
    if listing.user_name:
        parts.append(listing.user_name)
    if listing.status:
        parts.append(listing.status)
    age = listing.age(now)
    if listing.created is not None and age is not None:
        parts.append(f"created {listing.created:%Y-%m-%d} ({age.days} days ago)")
    else:
        parts.append(f"age unknown: {listing.problem}" if listing.problem else "age unknown")
    lines = ["  ".join(parts)]
    if age is not None and age > max_age:
        lines.append(
            f"warning: the key for {listing.source_profile} is older than {max_age.days} days ({age.days} days); "
            f"run `govuk-imds rotate-key {listing.source_profile}`"
        )
    return lines


# -- remove ---------------------------------------------------------------------------------------------------------


def remove_key(profile: str, store: SecretStore, confirm: Confirm) -> LongTermKey | None:
    """Delete ``profile``'s key from the store after confirmation; the stored key, or None if there was none."""
    key = store.get(profile)
    if key is None:
        return None
    if not confirm(f"Delete the key {key!r} for {profile!r} from the keyring? It stays valid in AWS."):
        raise KeyOperationError(f"nothing changed: the keyring keeps {key!r} for {profile!r}")
    store.delete(profile)
    if store.get(profile) is not None:
        raise KeyOperationError(f"the keyring still holds a key for {profile!r} after deleting it")
    return key


# -- the commands ---------------------------------------------------------------------------------------------------


def add_commands(command: AddCommand) -> None:
    """Register ``import``, ``rotate-key``, ``keys`` and ``remove`` with the CLI."""
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


def cmd_import(arguments: argparse.Namespace, settings: Settings) -> int:
    from .iam import verify_key
    from .keystore import open_keyring
    from .sts import isolate_from_environment

    profile = _profile(arguments.source_profile)
    path = Path(
        arguments.credentials_file or os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    ).expanduser()
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
    from .cli import _read_code
    from .iam import Iam
    from .keystore import open_keyring
    from .sts import isolate_from_environment

    profile = _profile(arguments.source_profile)
    serial = mfa_serial_for(settings, profile)
    store = open_keyring(settings.keyring_backend)
    isolate_from_environment(os.environ)
    result = rotate_key(profile, store, Iam(settings), serial, lambda: _read_code(arguments.code, serial))
    print(
        f"rotated the key for {profile!r} ({result.user_name}): {result.new_key!r} is in {store.backend_name} and "
        f"works; {result.old_key!r} is deleted in AWS"
    )
    return 0


def cmd_keys(arguments: argparse.Namespace, settings: Settings) -> int:
    from .iam import Iam
    from .keystore import open_keyring
    from .sts import isolate_from_environment

    if arguments.max_age_days < 0:
        raise InvalidInput("--max-age-days must be 0 or more")
    profiles = [_profile(name) for name in arguments.source_profiles]
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
    from .keystore import open_keyring

    profile = _profile(arguments.source_profile)
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


def terminal_confirm(yes: bool) -> Confirm:
    """A confirmation on the terminal, or always yes with ``--yes``; refuses up front when there is no terminal."""
    if yes:
        return lambda question: True
    if not sys.stdin.isatty():
        raise InvalidInput("this command asks for confirmation and there is no terminal to ask on; pass --yes")

    def confirm(question: str) -> bool:
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        return sys.stdin.readline().strip().lower() in {"y", "yes"}

    return confirm


def mfa_serial_for(settings: Settings, profile: str) -> str:
    """The MFA device of a source profile: its own ``mfa_serial``, else the one its environments name."""
    from botocore.configloader import load_config
    from botocore.exceptions import BotoCoreError

    from .config import load_environments

    path = settings.aws_config_file
    try:
        profiles = load_config(str(path)).get("profiles", {}) if path.exists() else {}
    except (BotoCoreError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be parsed ({exc}); fix the file and try again") from exc
    serial = profiles.get(profile, {}).get("mfa_serial")
    if not serial:
        serials = {
            spec.mfa_serial for spec in load_environments(settings).specs.values() if spec.source_profile == profile
        }
        serial = serials.pop() if len(serials) == 1 else None
    if not serial:
        raise ConfigError(
            f"{path}: [profile {profile}] has no mfa_serial; add `mfa_serial = arn:aws:iam::<account>:mfa/<device>`"
        )
    return str(serial)


def _profile(name: str) -> str:
    if not SOURCE_PROFILE.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a profile name (letters, digits, . _ -)")
    return name
