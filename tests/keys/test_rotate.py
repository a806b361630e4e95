"""`rotate-key` against moto (IAM and STS behind the MFA-checking, fault-injecting proxy) with the real keyring.

After every outcome, success or a fault at any step, the keyring holds a key that works (GetCallerIdentity answers
with the user's ARN), and what the message says about AWS is what moto really holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from govuk_imds.aws.iam import AccessKeyInfo, Iam, Identity
from govuk_imds.core.credentials import LongTermKey, MfaSession, TemporaryCredentials
from govuk_imds.errors import (
    GovukImdsError,
    InvalidInput,
    KeyOperationError,
    KeyringTimeout,
    KeyringUnavailable,
    MfaCodeRefused,
    NoKeyStored,
    StsUnavailable,
)
from govuk_imds.keys.listing import list_keys
from govuk_imds.keys.rotation import RotationResult, rotate_key
from govuk_imds.keystore.store import KeyringStore
from tests.support.keyring_fixtures import IamUser
from tests.support.sts_emulator import FaultKind, StsProxy

Credentials = LongTermKey | TemporaryCredentials


@dataclass
class Step:
    call: str
    aws: set[str]  # the key ids moto holds right after the call
    keyring: str | None  # the key id the keyring holds right after the call


@dataclass
class Witness:
    """The real IAM adapter, noting after each call what AWS (moto, asked directly) and the keyring hold."""

    inner: Iam
    store: KeyringStore
    aws_keys: Callable[[], set[str]]
    steps: list[Step] = field(default_factory=list)

    def _note(self, call: str) -> None:
        held = self.store.get("gds")
        self.steps.append(Step(call, self.aws_keys(), held.access_key_id if held else None))

    def caller_identity(self, credentials: Credentials) -> Identity:
        try:
            return self.inner.caller_identity(credentials)
        finally:
            self._note("GetCallerIdentity")

    def get_session_token(self, key: LongTermKey, source_profile: str, mfa_serial: str, code: str) -> MfaSession:
        try:
            return self.inner.get_session_token(key, source_profile, mfa_serial, code)
        finally:
            self._note("GetSessionToken")

    def list_access_keys(self, credentials: Credentials, user_name: str) -> list[AccessKeyInfo]:
        try:
            return self.inner.list_access_keys(credentials, user_name)
        finally:
            self._note("ListAccessKeys")

    def create_access_key(self, credentials: Credentials, user_name: str) -> LongTermKey:
        try:
            return self.inner.create_access_key(credentials, user_name)
        finally:
            self._note("CreateAccessKey")

    def delete_access_key(self, credentials: Credentials, user_name: str, access_key_id: str) -> None:
        try:
            self.inner.delete_access_key(credentials, user_name, access_key_id)
        finally:
            self._note("DeleteAccessKey")


class FlakyStore:
    """The real keyring, except that storing a key other than ``keep`` fails when told to; ``after_put`` runs once
    a new key has been stored."""

    def __init__(self, inner: KeyringStore, keep: LongTermKey) -> None:
        self.inner = inner
        self.keep = keep
        self.put_error: Exception | None = None
        self.after_put: Callable[[], None] | None = None

    def get(self, source_profile: str) -> LongTermKey | None:
        return self.inner.get(source_profile)

    def holds(self, source_profile: str) -> bool:
        return self.inner.holds(source_profile)

    def put(self, source_profile: str, key: LongTermKey) -> None:
        if key != self.keep and self.put_error is not None:
            raise self.put_error
        self.inner.put(source_profile, key)
        if key != self.keep and self.after_put is not None:
            self.after_put()

    def delete(self, source_profile: str) -> bool:
        return self.inner.delete(source_profile)

    def list_profiles(self) -> list[str]:
        return self.inner.list_profiles()


@dataclass
class Rig:
    user: IamUser
    sts: StsProxy
    admin: Iam
    store: KeyringStore
    flaky: FlakyStore
    witness: Witness
    aws_keys: Callable[[], set[str]]
    sleeps: list[float] = field(default_factory=list)

    def code(self) -> str:
        return self.sts.unused_code(self.user.serial)

    def rotate(self, **overrides: Any) -> RotationResult:
        arguments: dict[str, Any] = {"verify_attempts": 3, "verify_delay": 0.5, "sleep": self.sleeps.append}
        arguments.update(overrides)
        return rotate_key("gds", self.flaky, self.witness, self.user.serial, self.code, **arguments)

    def works(self, key: LongTermKey | None) -> bool:
        if key is None:
            return False
        try:
            return self.admin.caller_identity(key).arn == self.user.arn
        except GovukImdsError:
            return False

    def assert_unchanged(self) -> None:
        """The start state: AWS holds only the old key, the keyring holds it, and it works."""
        assert self.aws_keys() == {self.user.key.access_key_id}
        assert self.store.get("gds") == self.user.key
        assert self.works(self.store.get("gds"))


@pytest.fixture
def rig(
    user: IamUser, sts: StsProxy, admin: Iam, keyring_store: KeyringStore, aws_keys: Callable[[IamUser], set[str]]
) -> Iterator[Rig]:
    keyring_store.put("gds", user.key)
    flaky = FlakyStore(keyring_store, user.key)
    keys_of_user = lambda: aws_keys(user)  # noqa: E731
    yield Rig(user, sts, admin, keyring_store, flaky, Witness(admin, keyring_store, keys_of_user), keys_of_user)
    sts.clear_faults()


def short(key_id: str) -> str:
    return f"…{key_id[-4:]}"


# -- the whole way through ------------------------------------------------------------------------------------------


def test_rotation_replaces_the_key_step_by_step(rig: Rig) -> None:
    old = rig.user.key.access_key_id
    result = rig.rotate()
    new = result.new_key.access_key_id
    assert new != old
    assert result.user_name == rig.user.name
    # The order of the steps, and what AWS and the keyring held after each one.
    assert [(step.call, step.aws, step.keyring) for step in rig.witness.steps] == [
        ("GetCallerIdentity", {old}, old),  # the old key works and is the user's
        ("GetSessionToken", {old}, old),
        ("ListAccessKeys", {old}, old),  # room for a second key
        ("CreateAccessKey", {old, new}, old),
        ("GetCallerIdentity", {old, new}, new),  # stored first, then proven
        ("DeleteAccessKey", {new}, new),
    ]
    assert rig.store.get("gds") == result.new_key
    assert rig.works(result.new_key)
    assert not rig.works(rig.user.key)  # AWS no longer knows the old key
    assert rig.sleeps == []


def test_the_new_key_unlocks(rig: Rig, settings: Any) -> None:
    """What the user needs afterwards: an MFA session made with the new key."""
    result = rig.rotate()
    # The emulator ties an MFA device to a key, not to a user: move it to the new key, as AWS would not need.
    rig.sts.register_mfa_device(rig.user.serial, access_key_id=result.new_key.access_key_id)
    held = rig.store.get("gds")
    assert held == result.new_key
    calls = rig.sts.count("GetSessionToken")
    session = rig.admin.get_session_token(held, "gds", rig.user.serial, rig.code())
    assert session.expiration.timestamp() > time.time() + 600
    assert rig.sts.count("GetSessionToken") == calls + 1


def test_a_new_key_that_takes_a_while_to_work_is_waited_for(rig: Rig) -> None:
    """IAM is eventually consistent: a fresh key can be refused for a few seconds. Retry, then go on."""
    rig.flaky.after_put = lambda: rig.sts.fail_next("GetCallerIdentity", "503", count=2)
    result = rig.rotate()
    assert rig.sleeps == [0.5, 0.5]
    assert rig.aws_keys() == {result.new_key.access_key_id}
    assert rig.works(rig.store.get("gds"))


# -- stops before anything changes ----------------------------------------------------------------------------------


def test_no_stored_key_stops_before_asking_for_a_code(rig: Rig) -> None:
    rig.store.delete("gds")

    def no_code() -> str:
        raise AssertionError("must not ask")

    with pytest.raises(NoKeyStored):
        rotate_key("gds", rig.store, rig.witness, rig.user.serial, no_code)
    assert rig.witness.steps == []


def test_a_malformed_code_stops_before_any_call(rig: Rig) -> None:
    def bad_code() -> str:
        raise InvalidInput("an MFA code is six digits")

    with pytest.raises(InvalidInput):
        rotate_key("gds", rig.store, rig.witness, rig.user.serial, bad_code)
    assert rig.witness.steps == []
    rig.assert_unchanged()


def test_two_keys_already_is_a_clear_stop(rig: Rig, moto_iam: Any) -> None:
    second = moto_iam.create_access_key(UserName=rig.user.name)["AccessKey"]["AccessKeyId"]
    with pytest.raises(KeyOperationError) as stopped:
        rig.rotate()
    message = str(stopped.value)
    assert f"{rig.user.name} already has two access keys" in message
    assert f"{short(rig.user.key.access_key_id)}: in the keyring, Active" in message
    assert f"Delete {short(second)} if nothing uses it" in message
    assert "nothing changed" in message
    assert "CreateAccessKey" not in [step.call for step in rig.witness.steps]
    assert rig.aws_keys() == {rig.user.key.access_key_id, second}
    assert rig.store.get("gds") == rig.user.key


def test_a_wrong_code_changes_nothing(rig: Rig) -> None:
    good = rig.code()
    wrong = f"{(int(good) + 500_000) % 1_000_000:06d}"
    with pytest.raises(MfaCodeRefused):
        rotate_key("gds", rig.flaky, rig.witness, rig.user.serial, lambda: wrong)
    rig.assert_unchanged()


@pytest.mark.parametrize(
    ("action", "kind", "error", "message"),
    [
        ("GetCallerIdentity", "503", StsUnavailable, "GetCallerIdentity failed"),
        ("GetSessionToken", "500", StsUnavailable, "GetSessionToken failed"),
        ("ListAccessKeys", "500", KeyOperationError, "could not list .* access keys .*; nothing changed"),
        ("ListAccessKeys", "access_denied", KeyOperationError, "could not list .* access keys .*; nothing changed"),
        ("CreateAccessKey", "throttle", KeyOperationError, "AWS did not create a new key .*; nothing changed"),
        ("CreateAccessKey", "access_denied", KeyOperationError, "AWS did not create a new key .*; nothing changed"),
        ("CreateAccessKey", "500", KeyOperationError, "AWS lists no new key, but one may still appear"),
        ("CreateAccessKey", "drop", KeyOperationError, "AWS lists no new key, but one may still appear"),
        ("CreateAccessKey", "garbage", KeyOperationError, "AWS lists no new key, but one may still appear"),
    ],
)
def test_a_fault_before_a_new_key_exists_changes_nothing(
    rig: Rig, action: str, kind: FaultKind, error: type[Exception], message: str
) -> None:
    rig.sts.fail_next(action, kind)
    with pytest.raises(error, match=message) as stopped:
        rig.rotate()
    assert "\n" not in str(stopped.value)
    rig.assert_unchanged()


def test_a_lost_answer_to_create_is_reported_when_aws_made_the_key(rig: Rig) -> None:
    """The answer never comes back (read timeout) but moto does create the key a moment later: the message says
    it may appear; AWS then holds an orphan key; the keyring still holds the old one, which works; and the next
    rotation stops cleanly on two keys instead of going wrong."""
    rig.sts.fail_next("CreateAccessKey", "slow", delay=1.5)  # the adapter gives up after 1 s
    with pytest.raises(KeyOperationError, match="one may still appear: the keyring still holds"):
        rig.rotate()
    deadline = time.monotonic() + 5
    while len(rig.aws_keys()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(rig.aws_keys()) == 2
    assert rig.store.get("gds") == rig.user.key
    assert rig.works(rig.store.get("gds"))
    with pytest.raises(KeyOperationError, match="already has two access keys"):
        rig.rotate()


def test_a_key_made_despite_a_failed_create_is_named(rig: Rig) -> None:
    """An IAM that says 500 after creating the key: the follow-up listing finds it and the message names it."""

    class CreatesThenFails(Iam):
        def create_access_key(self, credentials: Credentials, user_name: str) -> LongTermKey:
            from govuk_imds.errors import IamUnavailable

            super().create_access_key(credentials, user_name)
            raise IamUnavailable("CreateAccessKey failed (InternalFailure, HTTP 500)", maybe_done=True)

    rig.witness.inner = CreatesThenFails(rig.witness.inner._settings, connect_timeout=1, read_timeout=1)
    with pytest.raises(KeyOperationError) as stopped:
        rig.rotate()
    orphan = (rig.aws_keys() - {rig.user.key.access_key_id}).pop()
    assert f"AWS created {short(orphan)} anyway and its secret never arrived" in str(stopped.value)
    assert f"the keyring still holds LongTermKey({short(rig.user.key.access_key_id)}), which works" in str(
        stopped.value
    )
    assert rig.store.get("gds") == rig.user.key


# -- faults after the new key exists ---------------------------------------------------------------------------------


def test_storing_the_new_key_fails_and_it_is_deleted_again(rig: Rig) -> None:
    rig.flaky.put_error = KeyringUnavailable("the keyring refused: no")
    with pytest.raises(KeyOperationError) as stopped:
        rig.rotate()
    message = str(stopped.value)
    assert "could not be stored (the keyring refused: no); it was deleted again, so nothing changed" in message
    assert [step.call for step in rig.witness.steps][-1] == "DeleteAccessKey"
    rig.assert_unchanged()


def test_a_keyring_that_times_out_while_storing_leaves_both_keys(rig: Rig) -> None:
    """The write may still land after we give up, so neither key may be deleted: whichever the keyring ends up
    holding must keep working."""
    rig.flaky.put_error = KeyringTimeout("the keyring did not answer within 5 s")
    with pytest.raises(KeyOperationError) as stopped:
        rig.rotate()
    new = (rig.aws_keys() - {rig.user.key.access_key_id}).pop()
    message = str(stopped.value)
    assert f"AWS holds both LongTermKey({short(rig.user.key.access_key_id)}) and LongTermKey({short(new)})" in message
    assert "nothing was deleted" in message
    assert "DeleteAccessKey" not in [step.call for step in rig.witness.steps]
    assert rig.store.get("gds") == rig.user.key
    assert rig.works(rig.store.get("gds"))


def test_storing_fails_and_deleting_the_new_key_fails_too(rig: Rig) -> None:
    rig.flaky.put_error = KeyringUnavailable("the keyring refused: no")
    rig.sts.fail_next("DeleteAccessKey", "503")
    with pytest.raises(KeyOperationError) as stopped:
        rig.rotate()
    new = (rig.aws_keys() - {rig.user.key.access_key_id}).pop()
    message = str(stopped.value)
    assert f"LongTermKey({short(new)}), which is stored nowhere and could not be deleted" in message
    assert rig.store.get("gds") == rig.user.key
    assert rig.works(rig.store.get("gds"))


@pytest.mark.parametrize("kind", ["503", "access_denied", "drop"])
def test_a_new_key_that_cannot_be_proven_is_undone(rig: Rig, kind: FaultKind) -> None:
    """GetCallerIdentity with the new key keeps failing: the old key goes back into the keyring, the new one is
    deleted, and AWS is where it started."""
    rig.flaky.after_put = lambda: rig.sts.fail_next("GetCallerIdentity", kind, count=3)
    with pytest.raises(
        KeyOperationError, match=r"could not be proven to work .*it was deleted again, so nothing changed"
    ):
        rig.rotate()
    rig.sts.clear_faults()  # a refusal is not retried, so some of the queued faults are left
    rig.assert_unchanged()


def test_deleting_the_old_key_fails_after_the_new_one_works(rig: Rig) -> None:
    rig.sts.fail_next("DeleteAccessKey", "access_denied")
    with pytest.raises(KeyOperationError) as stopped:
        rig.rotate()
    held = rig.store.get("gds")
    assert held is not None and held != rig.user.key
    assert rig.works(held)
    assert rig.aws_keys() == {rig.user.key.access_key_id, held.access_key_id}
    message = str(stopped.value)
    assert message.startswith(f"rotated: the keyring holds the new key LongTermKey({short(held.access_key_id)})")
    assert "AWS still holds it, active: delete it" in message
    assert f"<the key ending {rig.user.key.access_key_id[-4:]}>" in message


def test_a_lost_answer_to_delete_is_checked(rig: Rig) -> None:
    """The DeleteAccessKey answer is lost but the deletion happened: that is success, not an error."""

    class DeletesThenFails(Iam):
        def delete_access_key(self, credentials: Credentials, user_name: str, access_key_id: str) -> None:
            from govuk_imds.errors import IamUnavailable

            super().delete_access_key(credentials, user_name, access_key_id)
            raise IamUnavailable("DeleteAccessKey got no usable answer", maybe_done=True)

    rig.witness.inner = DeletesThenFails(rig.witness.inner._settings, connect_timeout=1, read_timeout=1)
    result = rig.rotate()
    assert rig.aws_keys() == {result.new_key.access_key_id}
    assert rig.store.get("gds") == result.new_key


def test_an_interruption_after_create_says_where_things_are(rig: Rig) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    rig.flaky.after_put = interrupt
    with pytest.raises(KeyOperationError, match=r"interrupted: AWS holds both .* the keyring holds the new key"):
        rig.rotate()
    held = rig.store.get("gds")
    assert held is not None and held != rig.user.key
    assert rig.works(held)  # the new key is in the keyring and works; the old one still works too
    assert rig.works(rig.user.key)


# -- keys -----------------------------------------------------------------------------------------------------------


def test_listing_shows_the_iam_view_of_each_stored_key(rig: Rig) -> None:
    [listing] = list_keys(rig.store, rig.admin)
    assert (listing.source_profile, listing.key, listing.user_name, listing.status) == (
        "gds",
        rig.user.key,
        rig.user.name,
        "Active",
    )
    assert listing.created is not None and listing.created.tzinfo is not None


def test_listing_without_iam_says_why_the_age_is_unknown(rig: Rig) -> None:
    rig.sts.fail_next("ListAccessKeys", "access_denied")
    [listing] = list_keys(rig.store, rig.admin)
    assert listing.created is None
    assert listing.problem is not None and listing.problem.startswith("IAM would not list the keys (AWS refused")
