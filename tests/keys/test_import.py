"""`import`: the [gds] key pair moves from ~/.aws/credentials into the real keyring, verified against the emulator;
the file loses exactly that key pair, atomically, keeping every other byte and its mode; nothing is lost when any
step fails."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from govuk_imds.aws.iam import Iam, Identity, check_user_key, verify_key
from govuk_imds.config.settings import Settings
from govuk_imds.core.credentials import LongTermKey
from govuk_imds.errors import (
    ConfigError,
    InvalidInput,
    KeyOperationError,
    KeyringUnavailable,
    LongTermKeyRejected,
    StsUnavailable,
)
from govuk_imds.keys.credentials_file import import_from_credentials_file
from govuk_imds.keystore.store import KeyringStore, MemoryStore
from tests.support.keyring_fixtures import IamUser
from tests.support.sts_emulator import StsProxy

DEFAULT = "[default]\naws_access_key_id = AKIADEFAULTDEFAULT01\naws_secret_access_key = " + "d" * 40 + "\n"
LEGACY = "# kept for the old deploy scripts\n[legacy]\nregion = eu-west-2\noutput = json\n"


def gds(user: IamUser, newline: str = "\n") -> str:
    return (
        f"[gds]{newline}aws_access_key_id = {user.key.access_key_id}{newline}"
        f"aws_secret_access_key = {user.key.secret_access_key}{newline}"
    )


def yes(question: str) -> bool:
    return True


def no(question: str) -> bool:
    return False


def verifier(settings: Settings) -> Callable[[LongTermKey], Identity]:
    return lambda key: verify_key(settings, key)


def write(path: Path, text: str, mode: int = 0o600) -> bytes:
    path.write_bytes(text.encode())
    path.chmod(mode)
    return path.read_bytes()


def layouts(user: IamUser) -> dict[str, tuple[str, str]]:
    """name -> (file before, file after)."""
    return {
        "between others": (f"{DEFAULT}\n{gds(user)}\n{LEGACY}", f"{DEFAULT}\n{LEGACY}"),
        "first": (f"{gds(user)}\n{DEFAULT}", DEFAULT),
        "last, no final newline": (f"{DEFAULT}\n{gds(user)}".rstrip("\n"), f"{DEFAULT}\n"),
        "alone": (gds(user), ""),
        "CRLF": (
            f"{DEFAULT}\n{gds(user)}\n{LEGACY}".replace("\n", "\r\n"),
            f"{DEFAULT}\n{LEGACY}".replace("\n", "\r\n"),
        ),
        "comments inside, upper case, colons": (
            f"{DEFAULT}[gds]\n; my key\nAWS_ACCESS_KEY_ID: {user.key.access_key_id}\n  # rotated in May\n"
            f"aws_secret_access_key   =   {user.key.secret_access_key}\n\n\n{LEGACY}",
            f"{DEFAULT}{LEGACY}",
        ),
        "other settings in the section stay": (
            f"{DEFAULT}\n[gds]\nregion = eu-west-1\naws_access_key_id = {user.key.access_key_id}\n"
            f"aws_secret_access_key = {user.key.secret_access_key}\noutput = json\n\n{LEGACY}",
            f"{DEFAULT}\n[gds]\nregion = eu-west-1\noutput = json\n\n{LEGACY}",
        ),
        "not UTF-8 elsewhere": (
            f"# caf\udce9\n{DEFAULT}\n{gds(user)}\n{LEGACY}",
            f"# caf\udce9\n{DEFAULT}\n{LEGACY}",
        ),
    }


LAYOUTS = [
    "between others",
    "first",
    "last, no final newline",
    "alone",
    "CRLF",
    "comments inside, upper case, colons",
    "other settings in the section stay",
    "not UTF-8 elsewhere",
]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_import_moves_the_key_and_leaves_every_other_byte(
    layout: str,
    tmp_path: Path,
    user: IamUser,
    settings: Settings,
    keyring_store: KeyringStore,
    aws_keys: Callable[[IamUser], set[str]],
) -> None:
    before, after = layouts(user)[layout]
    path = tmp_path / "credentials"
    path.write_bytes(before.encode("utf-8", "surrogateescape"))
    path.chmod(0o640)
    inode = path.stat().st_ino
    questions: list[str] = []

    def confirm(question: str) -> bool:
        questions.append(question)
        assert keyring_store.get("gds") == user.key  # asked only once the keyring holds the key
        return True

    result = import_from_credentials_file(path, "gds", keyring_store, verifier(settings), confirm)

    assert path.read_bytes() == after.encode("utf-8", "surrogateescape")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert keyring_store.get("gds") == user.key
    assert keyring_store.list_profiles() == ["gds"]
    assert aws_keys(user) == {user.key.access_key_id}  # import never touches IAM
    assert result.identity_arn == user.arn
    assert result.file_changed
    assert result.section_removed == (layout != "other settings in the section stay")
    assert len(questions) == 1 and str(path) in questions[0]
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []  # no temporary file left


def test_a_symlinked_file_is_edited_where_it_lives(
    tmp_path: Path, user: IamUser, settings: Settings, keyring_store: KeyringStore
) -> None:
    real = tmp_path / "dotfiles" / "credentials"
    real.parent.mkdir()
    write(real, f"{DEFAULT}\n{gds(user)}", 0o600)
    link = tmp_path / "credentials"
    link.symlink_to(real)
    import_from_credentials_file(link, "gds", keyring_store, verifier(settings), yes)
    assert link.is_symlink()
    assert real.read_text() == f"{DEFAULT}\n"


def test_declining_keeps_the_file_and_the_keyring_copy(
    tmp_path: Path, user: IamUser, settings: Settings, keyring_store: KeyringStore
) -> None:
    path = tmp_path / "credentials"
    original = write(path, f"{DEFAULT}\n{gds(user)}")
    result = import_from_credentials_file(path, "gds", keyring_store, verifier(settings), no)
    assert not result.file_changed
    assert path.read_bytes() == original
    assert keyring_store.get("gds") == user.key


def test_a_key_aws_does_not_know_changes_nothing(
    tmp_path: Path, settings: Settings, keyring_store: KeyringStore
) -> None:
    path = tmp_path / "credentials"
    original = write(
        path, "[gds]\naws_access_key_id = AKIAUNKNOWNUNKNOWN01\naws_secret_access_key = " + "x" * 40 + "\n"
    )
    with pytest.raises(LongTermKeyRejected, match=r"AWS does not know the key LongTermKey\(…WN01\) as an IAM user's"):
        import_from_credentials_file(path, "gds", keyring_store, verifier(settings), yes)
    assert path.read_bytes() == original
    assert keyring_store.get("gds") is None


def test_sts_failing_during_verification_changes_nothing(
    tmp_path: Path, user: IamUser, settings: Settings, keyring_store: KeyringStore, sts: StsProxy
) -> None:
    path = tmp_path / "credentials"
    original = write(path, gds(user))
    sts.fail_next("GetCallerIdentity", "503")
    with pytest.raises(StsUnavailable, match="GetCallerIdentity failed"):
        import_from_credentials_file(path, "gds", keyring_store, verifier(settings), yes)
    assert path.read_bytes() == original
    assert keyring_store.get("gds") is None


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # keyring leaks its D-Bus socket on a locked collection
def test_a_locked_keyring_changes_nothing(
    tmp_path: Path, user: IamUser, settings: Settings, keyring_store: KeyringStore
) -> None:
    import gc

    import secretstorage

    path = tmp_path / "credentials"
    original = write(path, gds(user))
    connection = secretstorage.dbus_init()
    try:
        secretstorage.get_default_collection(connection).lock()
    finally:
        connection.close()
    with pytest.raises(KeyringUnavailable, match="locked"):
        import_from_credentials_file(path, "gds", keyring_store, verifier(settings), yes)
    assert path.read_bytes() == original
    gc.collect()


def test_a_failed_rewrite_keeps_the_file_and_says_where_the_key_is(
    tmp_path: Path, user: IamUser, settings: Settings, keyring_store: KeyringStore
) -> None:
    path = tmp_path / "credentials"
    original = write(path, f"{DEFAULT}\n{gds(user)}")
    (tmp_path / f".credentials.govuk-imds-{os.getpid()}.tmp").mkdir()  # the temporary file cannot be created
    with pytest.raises(KeyOperationError, match=r"is in the keyring, but .* could not be rewritten .* it is unchanged"):
        import_from_credentials_file(path, "gds", keyring_store, verifier(settings), yes)
    assert path.read_bytes() == original
    assert keyring_store.get("gds") == user.key


def test_a_file_edited_meanwhile_is_not_overwritten(
    tmp_path: Path, user: IamUser, settings: Settings, keyring_store: KeyringStore
) -> None:
    path = tmp_path / "credentials"
    write(path, gds(user))
    edited = f"{gds(user)}\n[new]\nregion = eu-west-2\n"

    def someone_edits(question: str) -> bool:
        path.write_text(edited)
        return True

    with pytest.raises(KeyOperationError, match="it changed while govuk-imds was working on it"):
        import_from_credentials_file(path, "gds", keyring_store, verifier(settings), someone_edits)
    assert path.read_text() == edited
    assert keyring_store.get("gds") == user.key


def test_a_different_stored_key_is_replaced_only_when_confirmed(
    tmp_path: Path, user: IamUser, settings: Settings, keyring_store: KeyringStore
) -> None:
    older = LongTermKey.parse("AKIAOLDOLDOLDOLDOLD1", "o" * 40)
    keyring_store.put("gds", older)
    path = tmp_path / "credentials"
    original = write(path, gds(user))
    with pytest.raises(KeyOperationError, match=r"nothing changed: the keyring keeps LongTermKey\(…OLD1\)"):
        import_from_credentials_file(path, "gds", keyring_store, verifier(settings), no)
    assert keyring_store.get("gds") == older
    assert path.read_bytes() == original

    questions: list[str] = []

    def agree(question: str) -> bool:
        questions.append(question)
        return True

    import_from_credentials_file(path, "gds", keyring_store, verifier(settings), agree)
    assert "already holds a different key (LongTermKey(…OLD1))" in questions[0]
    assert keyring_store.get("gds") == user.key
    assert path.read_text() == ""


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (DEFAULT, ConfigError, r"has no \[gds\] section; nothing to import"),
        ("[gds]\nregion = eu-west-1\n", ConfigError, r"\[gds\] has no aws_access_key_id"),
        (f"{DEFAULT}[gds]\naws_access_key_id = x\n[gds]\nregion = y\n", ConfigError, "cannot be parsed"),
        ("aws_access_key_id = x\n", ConfigError, "cannot be parsed"),
        (
            "[gds]\naws_access_key_id = ASIATEMPORARYTEMP001\naws_secret_access_key = "
            + "s" * 40
            + "\naws_session_token = abc\n",
            InvalidInput,
            "temporary key id",
        ),
    ],
)
def test_files_without_a_usable_key_pair_are_one_clear_error(
    tmp_path: Path, text: str, error: type[Exception], message: str
) -> None:
    path = tmp_path / "credentials"
    original = write(path, text)
    store = MemoryStore()

    def no_call(key: LongTermKey) -> Identity:
        raise AssertionError("AWS must not be asked")

    with pytest.raises(error, match=message):
        import_from_credentials_file(path, "gds", store, no_call, yes)
    assert path.read_bytes() == original
    assert store.list_profiles() == []


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; name the credentials file with --credentials-file"):
        import_from_credentials_file(tmp_path / "nope", "gds", MemoryStore(), lambda key: None, yes)  # type: ignore[arg-type,return-value]


def test_an_edit_that_would_change_anything_else_is_refused(
    tmp_path: Path, user: IamUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net: the edited file is parsed again and must equal the original minus the key pair. Break the
    line classifier (it misses the [legacy] header and takes legacy's region for a key) and the edit must be
    refused, the file untouched."""
    from govuk_imds.keys import credentials_file as keys

    real = keys._classify

    def confused(lines: list[str]) -> list[tuple[str, str | None]]:
        kinds = real(lines)
        for index, line in enumerate(lines):
            if line.startswith("[legacy]"):
                kinds[index] = ("blank", None)
            if line.startswith("region"):
                kinds[index] = ("option", "aws_access_key_id")
        return kinds

    monkeypatch.setattr(keys, "_classify", confused)
    path = tmp_path / "credentials"
    original = write(path, f"{gds(user)}\n{LEGACY}")
    with pytest.raises(ConfigError, match="without changing something else"):
        import_from_credentials_file(path, "gds", MemoryStore(), lambda key: Identity(user.arn, "1", user.name), yes)
    assert path.read_bytes() == original


def test_keys_in_the_default_section_stay_where_they_are(tmp_path: Path, user: IamUser) -> None:
    """[DEFAULT] reaches every section; only [gds]'s own lines are ours to remove."""
    path = tmp_path / "credentials"
    write(
        path,
        f"[DEFAULT]\naws_access_key_id = {user.key.access_key_id}\n\n[gds]\n"
        f"aws_secret_access_key = {user.key.secret_access_key}\n",
    )
    store = MemoryStore()
    import_from_credentials_file(path, "gds", store, lambda key: Identity(user.arn, "1", user.name), yes)
    assert store.get("gds") == user.key
    assert path.read_text() == f"[DEFAULT]\naws_access_key_id = {user.key.access_key_id}\n\n"


def test_root_keys_are_refused() -> None:
    key = LongTermKey.parse("AKIAROOTROOTROOTROOT", "r" * 40)
    with pytest.raises(InvalidInput, match="belongs to the account's root user"):
        check_user_key(Identity("arn:aws:iam::123456789012:root", "123456789012", None), key)


def test_verification_reports_whose_key_it_is(user: IamUser, admin: Iam) -> None:
    identity = admin.caller_identity(user.key)
    assert (identity.arn, identity.user_name) == (user.arn, user.name)
