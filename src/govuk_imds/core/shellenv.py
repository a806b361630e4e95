"""What `govuk-imds env` prints and `govuk-imds exec` applies: point tools at the endpoint, clear what shadows it.

Every AWS SDK looks at these variables before the container provider; if any is set, our endpoint is never asked.
The token goes in both ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` and ``AWS_CONTAINER_AUTHORIZATION_TOKEN``: some
clients read only one of the two (docs/design.md, "Tokens"). Pure functions only: rendering for sh/bash/zsh, fish
and JSON.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping

#: The token itself, for clients that never read the file (older aws CLI v2, Go SDK v1, minio-go, JS
#: ``fromContainerMetadata``); Java and the JS SDK v2 prefer it to the file when both are set.
TOKEN_VARIABLE = "AWS_CONTAINER_AUTHORIZATION_TOKEN"  # noqa: S105 - a name, not a secret
SHADOWING_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    TOKEN_VARIABLE,  # ours when `env` can read the token; never one left from elsewhere
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
)


def endpoint_variables(
    endpoint_url: str,
    token_file: str,
    region: str | None,
    environment: str,
    token: str | None = None,
    state_file: str | None = None,
) -> dict[str, str]:
    """The variables to set; ``token`` is the token file's content, when there is one to read."""
    variables = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint_url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": token_file,
        "GOVUK_IMDS_ENVIRONMENT": environment,
    }
    if token:
        variables[TOKEN_VARIABLE] = token
    if state_file:
        # Where a prompt segment reads "unlocked <end>" or "locked" with the shell's builtins (docs/shell.md).
        variables["GOVUK_IMDS_STATE_FILE"] = state_file
    if region:
        variables["AWS_REGION"] = region
        variables["AWS_DEFAULT_REGION"] = region
    return variables


def render(variables: Mapping[str, str], shell: str) -> str:
    cleared = [name for name in SHADOWING_VARIABLES if name not in variables]
    if shell == "json":
        return json.dumps({"set": dict(variables), "unset": cleared}, indent=2)
    if shell == "fish":
        lines = [f"set -e {name};" for name in cleared]
        lines += [f"set -gx {name} {fish_quote(value)};" for name, value in variables.items()]
        return "\n".join(lines)
    lines = [f"unset {' '.join(cleared)};"]
    lines += [f"export {name}={shlex.quote(value)};" for name, value in variables.items()]
    return "\n".join(lines)


def fish_quote(value: str) -> str:
    """fish's single quotes treat backslash and quote as escapes, unlike POSIX sh's."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def apply(environ: Mapping[str, str], variables: Mapping[str, str]) -> dict[str, str]:
    """The environment for `exec`: the caller's, less the shadowing variables, plus ours."""
    result = {name: value for name, value in environ.items() if name not in SHADOWING_VARIABLES}
    result.update(variables)
    return result
