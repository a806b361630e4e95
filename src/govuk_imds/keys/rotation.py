"""``govuk-imds rotate-key``: replace a source profile's access key without ever losing a working one.

MFA session -> CreateAccessKey -> store the new key -> prove it works -> delete the old key. If any step fails after
the new key exists, ``_Rollback`` puts the old key back and deletes the new one where it can, and the error says
exactly which keys AWS and the keyring hold. Key ids appear redacted; no secret is ever printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.credentials import LongTermKey, MfaSession, redact
from ..errors import (
    IamUnavailable,
    KeyOperationError,
    KeyringTimeout,
    KeyStoreError,
    LongTermKeyRejected,
    NoKeyStored,
    StsError,
    StsUnavailable,
)
from ..keystore.store import SecretStore
from .admin import AccessKeyAdmin

if TYPE_CHECKING:
    from ..aws.iam import AccessKeyInfo

#: A new key can take several seconds to be accepted everywhere in AWS (IAM is eventually consistent).
VERIFY_ATTEMPTS = 8
VERIFY_DELAY_SECONDS = 2.5


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

    ``read_code`` is called once, after a stored key is known to exist and before any AWS call; the key itself is
    read only after the code, so it is not in memory while the person types (hardening.py).
    """
    if not store.holds(profile):
        raise NoKeyStored(profile)
    code = read_code()
    old = store.get(profile)
    if old is None:
        raise NoKeyStored(profile)
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
