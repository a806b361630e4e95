"""What govuk-imds knows about GOV.UK: its accounts, its roles, the central account, and how a person's email
becomes their IAM user and MFA device. The facts live in ``accounts.toml`` beside this module (inside the wheel);
this module reads them and applies the naming rules.

Light: ``tomllib`` and (when the file is read) ``importlib.resources`` only, so ``accounts`` and completion stay fast.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.shapes import ACCOUNT_ID, PROFILE_NAME, ROLE_NAME
from ..errors import ConfigError, InvalidInput

DATA_FILE = "accounts.toml"
#: IAM user names (GDS names its users by email address) allow these characters, up to 64 of them.
_LOCAL_PART = re.compile(r"[a-z0-9][a-z0-9._+=,-]*")
IAM_USER_NAME_LIMIT = 64


@dataclass(frozen=True)
class Role:
    name: str
    who: str  # who is given it, for a person choosing


@dataclass(frozen=True)
class Catalogue:
    central_account: str
    email_domain: str
    region: str
    source_profile: str
    accounts: Mapping[str, str]  # environment name -> account id, in GOV.UK's order
    roles: tuple[Role, ...]

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(role.name for role in self.roles)

    def environment_of(self, account_id: str) -> str | None:
        return next((name for name, account in self.accounts.items() if account == account_id), None)

    def check_email(self, text: str) -> str:
        """``First.Last@digital.cabinet-office.gov.uk`` -> the lower-case address, the IAM user's name."""
        email = text.strip().lower()
        local, at, domain = email.rpartition("@")
        example = f"first.last@{self.email_domain}"
        if not at or domain != self.email_domain or not _LOCAL_PART.fullmatch(local):
            raise InvalidInput(
                f"{text.strip()!r} is not a GDS email address ({example}); if your IAM user has another name, "
                "pass --mfa-serial with your MFA device's ARN, or --from-iam once your key is stored"
            )
        if len(email) > IAM_USER_NAME_LIMIT:
            raise InvalidInput(f"{email!r} is longer than an IAM user name can be ({IAM_USER_NAME_LIMIT} characters)")
        return email

    def mfa_serial(self, email: str, central_account: str | None = None) -> str:
        """The MFA device GOV.UK's guidance has everyone create: named after the user, in the central account."""
        return f"arn:aws:iam::{central_account or self.central_account}:mfa/{email}"

    def user_arn(self, email: str, central_account: str | None = None) -> str:
        """What a team adds to a role's trust policy to let this person assume it."""
        return f"arn:aws:iam::{central_account or self.central_account}:user/{email}"

    def role_name(self, typed: str) -> str:
        """A role as typed: ``powerusers`` -> ``govuk-powerusers``; any other IAM role name is taken as it is."""
        name = typed.strip()
        known = {role.name: role.name for role in self.roles}
        known.update({role.name.removeprefix("govuk-"): role.name for role in self.roles})
        if name in known:
            return known[name]
        if not ROLE_NAME.fullmatch(name):
            raise InvalidInput(f"{typed!r} is not an IAM role name; GOV.UK's are {', '.join(self.role_names)}")
        return name


def load_catalogue() -> Catalogue:
    """GOV.UK's accounts and roles, from the data file inside the package."""
    from importlib import resources  # here: every command imports this module, few read the file

    source = resources.files(__package__).joinpath(DATA_FILE)
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
        return _catalogue(document)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        # Only a broken installation gets here: the file ships inside the package.
        raise ConfigError(f"govuk-imds's own {DATA_FILE} is missing or broken ({exc}); reinstall govuk-imds") from exc


def _catalogue(document: Mapping[str, Any]) -> Catalogue:
    accounts = {str(name): str(account) for name, account in document["accounts"].items()}
    for name, account in [*accounts.items(), ("central_account", str(document["central_account"]))]:
        if not ACCOUNT_ID.fullmatch(account):
            raise ValueError(f"{name}: {account!r} is not a 12-digit account id")
    source_profile = str(document["source_profile"])
    if not PROFILE_NAME.fullmatch(source_profile):
        raise ValueError(f"source_profile {source_profile!r} is not a profile name")
    return Catalogue(
        central_account=str(document["central_account"]),
        email_domain=str(document["email_domain"]).lower(),
        region=str(document["region"]),
        source_profile=source_profile,
        accounts=accounts,
        roles=tuple(Role(str(name), str(who)) for name, who in document["roles"].items()),
    )
