"""Moving a key pair out of ``~/.aws/credentials`` (``govuk-imds import``), changing nothing else in the file.

The file changes only after the keyring holds a copy that AWS accepted; then just that key pair goes, atomically,
leaving every other byte and the file's mode as they were. The lines to remove are found the way configparser
finds them, and the result is parsed again to prove that nothing else changed.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.aws_config import parse_ini
from ..config.user_files import replace_user_file
from ..core.credentials import LongTermKey
from ..errors import ConfigError, KeyOperationError
from ..keystore.store import SecretStore
from .admin import Confirm

if TYPE_CHECKING:
    from ..aws.iam import Identity

KEY_OPTIONS = ("aws_access_key_id", "aws_secret_access_key")


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
        replace_user_file(path, original, plan.content)
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


def _plan_removal(path: Path, original: bytes, profile: str) -> _Removal:
    """Find the lines that hold ``profile``'s key pair, and prove that removing them changes nothing else."""
    text = original.decode("utf-8", "surrogateescape")
    try:
        before = parse_ini(text)
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
        after = parse_ini(content)
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
