"""``govuk-imds keys`` and ``remove``: the stored source profiles with their keys' age, and forgetting one.

Listing asks IAM (with the stored key itself) for each key's user, status and age, and says why where it cannot;
removing asks first and proves the entry is gone. Key ids appear redacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core.credentials import LongTermKey, redact
from ..errors import GovukImdsError, KeyOperationError, NoKeyStored
from ..keystore.store import SecretStore
from .admin import AccessKeyAdmin, Confirm

DEFAULT_MAX_AGE_DAYS = 90


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
