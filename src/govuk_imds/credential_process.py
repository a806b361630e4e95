"""The lean path of `govuk-imds credential-process <environment>`: run by a tool on every credential fetch, so it
imports only the standard library and a few small modules of ours, and answers in a few tens of milliseconds.

It checks the runtime dir the way the daemon does (a real directory of the user's, 0700: without
``XDG_RUNTIME_DIR`` it lives under ``/tmp``, where another user could have made it first), reads the running
daemon's port and profile prefix from its state file and the token from the environment's token file (both through
``read_private``: no symlink, nobody else's file), asks the endpoint once (``endpoint_client``, which refuses to
send the token to a listener that is not the user's daemon), and prints the ``credential_process`` JSON. Whenever
it cannot answer by itself (no state file, no token file, no answer) it returns None and the full CLI takes over,
with its one-line explanations.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from .config.files import check_private, read_private
from .config.locations import runtime_dir
from .core.shapes import ENVIRONMENT_NAME, TOKEN
from .endpoint_client import credential_process_json, fetch
from .errors import ForeignListener, GovukImdsError, UnsafeRuntimeDir

NOT_FOUND = None


def run(environment: str, environ: Mapping[str, str] | None = None) -> int | None:
    runtime = runtime_dir(os.environ if environ is None else environ)
    try:
        check_private(runtime, directory=True)
        state = json.loads(read_private(os.path.join(runtime, "state.json")))
        port, prefix = int(state["port"]), str(state["profile_prefix"])
    except (OSError, UnsafeRuntimeDir, ValueError, KeyError, TypeError):
        return NOT_FOUND  # the full CLI says what is wrong with the runtime dir, or that the daemon is not running
    name = environment
    token = _read_token(runtime, name)
    if token is None and name.startswith(prefix):  # the profile's name rather than the environment's
        name = name[len(prefix) :]
        token = _read_token(runtime, name)
    if token is None:
        return NOT_FOUND
    try:
        answer = fetch(port, name, token, control_socket=os.path.join(runtime, "control.sock"))
    except ForeignListener as exc:
        print(f"govuk-imds: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, ValueError, GovukImdsError):
        return NOT_FOUND  # the full CLI explains a dead or confused daemon
    if answer.status != 200:
        print(f"govuk-imds: {answer.message}", file=sys.stderr)
        return 5
    try:
        printed = credential_process_json(answer.document)
    except KeyError:
        return NOT_FOUND
    print(printed)
    return 0


def _read_token(runtime: str, name: str) -> str | None:
    if not ENVIRONMENT_NAME.fullmatch(name):
        return None
    try:
        token = read_private(os.path.join(runtime, "tokens", name))
    except (OSError, UnsafeRuntimeDir):
        return None
    return token.decode("ascii") if TOKEN.fullmatch(token) else None
