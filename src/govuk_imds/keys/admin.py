"""What the key algorithms need from outside: AWS's access-key calls, and a person's yes or no.

Owned here, by the code that uses them; ``aws.iam.Iam`` is the product's ``AccessKeyAdmin``, and tests pass fakes
or the real one against the emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..core.credentials import LongTermKey, MfaSession, TemporaryCredentials

if TYPE_CHECKING:
    from ..aws.iam import AccessKeyInfo, Identity

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
