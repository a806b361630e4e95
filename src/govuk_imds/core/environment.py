"""An environment as the rest of govuk-imds sees it: a role to assume with an MFA session from a source profile.

Built from the user's AWS config by ``config.aws_config``; sent from the CLI to the daemon over the control socket
(``to_wire``/``from_wire``, which checks every field again: the daemon trusts nothing it is sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .shapes import ENVIRONMENT_NAME, MFA_SERIAL, ROLE_ARN


@dataclass(frozen=True)
class EnvironmentSpec:
    """One environment: a role to assume with an MFA session made from a source profile's key."""

    name: str
    profile: str
    role_arn: str
    mfa_serial: str
    source_profile: str
    region: str | None
    role_duration_seconds: int
    role_session_name: str

    @property
    def account_id(self) -> str:
        return self.role_arn.split(":")[4]

    def to_wire(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_wire(cls, document: Mapping[str, Any]) -> EnvironmentSpec:
        """Rebuild a spec sent over the control socket, checking every field's type and shape."""
        try:
            values = {key: document[key] for key in cls.__dataclass_fields__}
        except (KeyError, TypeError) as exc:
            raise ConfigError("malformed environment description") from exc
        strings = [key for key in values if key not in ("region", "role_duration_seconds")]
        well_typed = (
            all(isinstance(values[key], str) for key in strings)
            and (values["region"] is None or isinstance(values["region"], str))
            and type(values["role_duration_seconds"]) is int
        )
        if (
            not well_typed
            or not ENVIRONMENT_NAME.fullmatch(values["name"])
            or not ROLE_ARN.fullmatch(values["role_arn"])
            or not MFA_SERIAL.fullmatch(values["mfa_serial"])
        ):
            raise ConfigError("malformed environment description")
        return cls(**values)
