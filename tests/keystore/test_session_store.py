"""One contract for the daemon's MFA session store: in memory, and on the real Secret Service. Plus what only the
real keyring can show: the items are apart from long-term keys, and the store never touches another service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from govuk_imds.core.credentials import LongTermKey, MfaSession
from govuk_imds.core.held import Device, HeldSession, KeptUnlock
from govuk_imds.errors import KeyringUnavailable
from govuk_imds.keystore.sessions import ENTRY, SERVICE_NAME, KeyringSessionStore, MemorySessionStore, SessionStore
from govuk_imds.keystore.store import SERVICE_NAME as LONG_TERM_SERVICE
from govuk_imds.keystore.store import KeyringStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GDS = Device("gds", "arn:aws:iam::123456789012:mfa/first.last")
OTHER = Device("other", "arn:aws:iam::123456789012:mfa/other")


#: A session token with the characters a real one has (base64: '/', '+', '=').
TOKEN = "IQoJb3JpZ2luX2VjE/+=="


def held(device: Device = GDS, *unlocks: KeptUnlock) -> HeldSession:
    return HeldSession(device, MfaSession("ASIAMFA0000000000001", "s/e+c" * 8, TOKEN, T0 + timedelta(hours=8)),
                       timedelta(hours=8), unlocks)


PRODUCTION = KeptUnlock("production", T0, T0 + timedelta(hours=4))
STAGING = KeptUnlock("staging", T0 + timedelta(minutes=5), T0 + timedelta(hours=8, minutes=5))


@pytest.fixture(params=["memory", "secret-service"])
def store(request: pytest.FixtureRequest) -> SessionStore:
    if request.param == "memory":
        return MemorySessionStore()
    request.getfixturevalue("keyring_env")
    return KeyringSessionStore()


def test_nothing_kept_reads_as_empty(store: SessionStore) -> None:
    assert store.load() == []


def test_kept_sessions_read_back_equal_with_their_environments(store: SessionStore) -> None:
    sessions = [held(GDS, PRODUCTION, STAGING), held(OTHER)]
    store.save(sessions)
    loaded = store.load()
    assert loaded == sessions
    assert loaded[0].credentials.session_token == TOKEN  # secrets survive exactly
    assert loaded[0].unlocks == (PRODUCTION, STAGING)


def test_saving_again_replaces_what_was_kept(store: SessionStore) -> None:
    store.save([held(GDS, PRODUCTION, STAGING)])
    store.save([held(GDS, STAGING)])
    assert store.load() == [held(GDS, STAGING)]


def test_saving_nothing_removes_what_was_kept_and_may_be_repeated(store: SessionStore) -> None:
    store.save([held(GDS, PRODUCTION)])
    store.save([])
    assert store.load() == []
    store.save([])
    assert store.load() == []


# -- what only the real keyring can show --------------------------------------------------------------------------


def test_the_entry_is_under_its_own_service_name_and_gone_when_nothing_is_kept(keyring_env: dict[str, str]) -> None:
    from keyring.backends.SecretService import Keyring

    store = KeyringSessionStore()
    store.save([held(GDS, PRODUCTION)])
    assert SERVICE_NAME == "govuk-imds-mfa-session" != LONG_TERM_SERVICE
    assert Keyring().get_password(SERVICE_NAME, ENTRY) is not None
    assert Keyring().get_password(LONG_TERM_SERVICE, ENTRY) is None
    store.save([])
    assert Keyring().get_password(SERVICE_NAME, ENTRY) is None


def test_sessions_and_long_term_keys_never_meet(keyring_store: KeyringStore) -> None:
    key = LongTermKey.parse("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    keyring_store.put("gds", key)
    sessions = KeyringSessionStore()
    sessions.save([held(GDS, PRODUCTION)])
    assert keyring_store.list_profiles() == ["gds"]  # the session entry is not a source profile
    sessions.save([])
    assert keyring_store.get("gds") == key  # removing the sessions leaves the key alone


def test_a_damaged_entry_is_one_clear_error(keyring_env: dict[str, str]) -> None:
    from keyring.backends.SecretService import Keyring

    Keyring().set_password(SERVICE_NAME, ENTRY, '{"version": 1, "sessions": [{"source_profile": 3}]}')
    with pytest.raises(KeyringUnavailable, match="the keyring entry 'govuk-imds-mfa-session' is damaged"):
        KeyringSessionStore().load()


class _Recording:
    """A backend that records every (service, user) it is asked about."""

    def __init__(self) -> None:
        self.touched: set[tuple[str, str]] = set()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        self.touched.add((service, user))
        return self.items.get((service, user))

    def set_password(self, service: str, user: str, password: str) -> None:
        self.touched.add((service, user))
        self.items[(service, user)] = password

    def delete_password(self, service: str, user: str) -> Any:
        self.touched.add((service, user))
        self.items.pop((service, user), None)


def test_the_store_touches_no_other_service_than_its_own() -> None:
    backend = _Recording()
    store = KeyringSessionStore(backend=backend)
    store.save([held(GDS, PRODUCTION)])
    store.load()
    store.save([])
    assert backend.touched == {(SERVICE_NAME, ENTRY)}
