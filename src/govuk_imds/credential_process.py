"""The lean path of `govuk-imds credential-process <environment>`: run by a tool on every credential fetch, so it
imports only ``os``, ``json`` and ``socket`` and answers in a few tens of milliseconds.

It reads the running daemon's port from its state file and the token from the environment's token file, makes one
GET exactly as an SDK would, and prints the ``credential_process`` JSON (Version 1). Whenever it cannot answer by
itself (no state file, no token file) it returns None and the full CLI takes over, with its one-line explanations.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from .locations import runtime_dir

NOT_FOUND = None


def run(environment: str, environ: dict[str, str] | None = None) -> int | None:
    runtime = runtime_dir(os.environ if environ is None else environ)
    name = environment
    try:
        with open(os.path.join(runtime, "state.json"), "rb") as state:
            port = int(json.load(state)["port"])
        token = _read_token(runtime, name)
        if token is None and name.startswith("govuk-"):  # the profile's name rather than the environment's
            name = name[len("govuk-") :]
            token = _read_token(runtime, name)
    except (OSError, ValueError, KeyError, TypeError):
        return NOT_FOUND
    if token is None:
        return NOT_FOUND
    request = (
        f"GET /v1/credentials/{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(request)
            received = b"".join(iter(lambda: connection.recv(65536), b""))
        head, _, body = received.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        document = json.loads(body)
    except (OSError, ValueError, IndexError):
        return NOT_FOUND  # the full CLI explains a dead or confused daemon
    if status != 200:
        print(f"govuk-imds: {document.get('message') or status}", file=sys.stderr)
        return 5
    print(
        json.dumps(
            {
                "Version": 1,
                "AccessKeyId": document["AccessKeyId"],
                "SecretAccessKey": document["SecretAccessKey"],
                "SessionToken": document["Token"],
                "Expiration": document["Expiration"],
            }
        )
    )
    return 0


def _read_token(runtime: str, name: str) -> str | None:
    if "/" in name or name.startswith("."):
        return None
    try:
        descriptor = os.open(os.path.join(runtime, "tokens", name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        token = handle.read(256).decode("ascii", errors="replace")
    return token if token.isascii() and token.replace("-", "").replace("_", "").isalnum() else None
