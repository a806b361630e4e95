"""One contract for every secret store: the in-memory one and the real Secret Service through KeyringStore."""

from __future__ import annotations

import json

import pytest

from govuk_imds.core.credentials import LongTermKey
from govuk_imds.errors import KeyringUnavailable
from govuk_imds.keystore.store import (
    INDEX_ENTRY,
    INDEX_SERVICE_NAME,
    SERVICE_NAME,
    KeyringStore,
    MemoryStore,
    SecretStore,
)

KEY = LongTermKey.parse("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
OTHER = LongTermKey.parse("AKIAZZZZZZZZZZZZ0002", "abc/def+ghi/jkl+mno/pqr+stu/vwx+yz012345")
ODD_PROFILES = [
    "gds",
    "with space",
    "quotes ' and \" here",
    "ünïcødé-🔑",
    "slash/and\\backslash",
    "semi;colon=equals:[brackets]",
    "x" * 200,
]


@pytest.fixture(params=["memory", "secret-service"])
def store(request: pytest.FixtureRequest) -> SecretStore:
    if request.param == "memory":
        return MemoryStore()
    keyring_store: KeyringStore = request.getfixturevalue("keyring_store")
    assert keyring_store.backend_name == "keyring.backends.SecretService.Keyring"
    return keyring_store


def test_a_missing_entry_reads_as_none(store: SecretStore) -> None:
    assert store.get("gds") is None
    assert store.list_profiles() == []


def test_a_stored_key_reads_back_equal(store: SecretStore) -> None:
    store.put("gds", KEY)
    got = store.get("gds")
    assert got == KEY
    assert got is not None and got.secret_access_key == KEY.secret_access_key
    assert store.list_profiles() == ["gds"]


def test_storing_again_overwrites(store: SecretStore) -> None:
    store.put("gds", KEY)
    store.put("gds", OTHER)
    assert store.get("gds") == OTHER
    assert store.list_profiles() == ["gds"]


def test_delete_removes_and_says_so(store: SecretStore) -> None:
    store.put("gds", KEY)
    assert store.delete("gds") is True
    assert store.get("gds") is None
    assert store.list_profiles() == []


def test_deleting_a_missing_entry_is_false(store: SecretStore) -> None:
    assert store.delete("gds") is False
    store.put("other", KEY)
    assert store.delete("gds") is False
    assert store.get("other") == KEY


def test_profiles_are_kept_apart(store: SecretStore) -> None:
    store.put("gds", KEY)
    store.put("gds-old", OTHER)
    assert store.get("gds") == KEY
    assert store.get("gds-old") == OTHER
    store.delete("gds")
    assert store.get("gds-old") == OTHER
    assert store.list_profiles() == ["gds-old"]


@pytest.mark.parametrize("profile", ODD_PROFILES)
def test_odd_characters_in_profile_names(store: SecretStore, profile: str) -> None:
    store.put(profile, KEY)
    assert store.get(profile) == KEY
    assert store.list_profiles() == [profile]
    assert store.get(profile[:-1] or "y") is None  # no prefix matching
    assert store.delete(profile) is True
    assert store.get(profile) is None


def test_secrets_with_slashes_and_pluses_survive_exactly(store: SecretStore) -> None:
    store.put("gds", OTHER)
    got = store.get("gds")
    assert got is not None
    assert (got.access_key_id, got.secret_access_key) == (OTHER.access_key_id, OTHER.secret_access_key)


def test_list_is_sorted(store: SecretStore) -> None:
    for name in ["zeta", "alpha", "mid"]:
        store.put(name, KEY)
    assert store.list_profiles() == ["alpha", "mid", "zeta"]


# -- what only the real keyring can show --------------------------------------------------------------------------


def test_entries_outlive_the_store_object(keyring_store: KeyringStore) -> None:
    from govuk_imds.keystore.backends import open_keyring

    keyring_store.put("gds", KEY)
    assert open_keyring().get("gds") == KEY
    assert open_keyring().list_profiles() == ["gds"]


def test_a_damaged_entry_is_one_clear_error(keyring_store: KeyringStore) -> None:
    from keyring.backends.SecretService import Keyring

    Keyring().set_password(SERVICE_NAME, "gds", "not json")
    with pytest.raises(KeyringUnavailable, match=r"entry for 'gds' is damaged; run `govuk-imds add gds` again"):
        keyring_store.get("gds")


def test_entries_made_by_another_tool_are_listed(keyring_store: KeyringStore) -> None:
    """Secret Service can search by attribute, so an entry written without our index (by `keyring set`) shows."""
    from keyring.backends.SecretService import Keyring

    document = json.dumps({"AccessKeyId": KEY.access_key_id, "SecretAccessKey": KEY.secret_access_key})
    Keyring().set_password(SERVICE_NAME, "by-hand", document)
    assert Keyring().get_password(INDEX_SERVICE_NAME, INDEX_ENTRY) is None
    assert keyring_store.list_profiles() == ["by-hand"]


def test_a_damaged_index_hides_nothing(keyring_store: KeyringStore, caplog: pytest.LogCaptureFixture) -> None:
    from keyring.backends.SecretService import Keyring

    keyring_store.put("gds", KEY)
    Keyring().set_password(INDEX_SERVICE_NAME, INDEX_ENTRY, "{broken")
    assert keyring_store.list_profiles() == ["gds"]  # found by the search
    assert "damaged" in caplog.text
    keyring_store.put("other", OTHER)
    assert json.loads(Keyring().get_password(INDEX_SERVICE_NAME, INDEX_ENTRY)) == ["other"]  # a fresh index
    assert keyring_store.list_profiles() == ["gds", "other"]


class _NoSearch:
    """The real Secret Service backend minus its collection access: a backend that cannot enumerate entries,
    like the macOS Keychain or the Windows Credential Locker through keyring."""

    def __init__(self) -> None:
        from keyring.backends.SecretService import Keyring

        self._inner = Keyring()

    def get_password(self, service: str, username: str) -> str | None:
        return self._inner.get_password(service, username)  # type: ignore[no-any-return]

    def set_password(self, service: str, username: str, password: str) -> None:
        self._inner.set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._inner.delete_password(service, username)


def test_the_index_lists_profiles_where_the_backend_cannot_search(keyring_store: KeyringStore) -> None:
    from keyring.backends.SecretService import Keyring

    blind = KeyringStore(_NoSearch())
    blind.put("gds", KEY)
    blind.put("staging-user", OTHER)
    Keyring().set_password(SERVICE_NAME, "by-hand", "{}")  # not in the index, and it cannot be searched for
    assert blind.list_profiles() == ["gds", "staging-user"]
    assert keyring_store.list_profiles() == ["by-hand", "gds", "staging-user"]  # the searching store sees it
    assert blind.delete("gds") is True
    assert blind.list_profiles() == ["staging-user"]
