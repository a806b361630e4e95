"""The endpoint's own client: one GET exactly as an AWS SDK sends it, with nothing but the standard library.

Used by the lean ``credential-process`` path (run by tools on every credential fetch), by the full
``credential-process`` command and by ``doctor``'s endpoint check, so all three ask the daemon the same way and read
its answer the same way. It never logs or keeps the token.
"""

from __future__ import annotations

import json
import socket
from typing import Any

TIMEOUT_SECONDS = 5.0


class EndpointAnswer:
    """The daemon's status and its JSON document (``{}`` when the body was not a JSON object)."""

    __slots__ = ("document", "status")

    def __init__(self, status: int, document: dict[str, Any]) -> None:
        self.status = status
        self.document = document

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EndpointAnswer):
            return NotImplemented
        return (self.status, self.document) == (other.status, other.document)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:  # the document may hold credentials: never shown
        return f"EndpointAnswer({self.status}, keys={sorted(self.document)})"

    @property
    def message(self) -> str:
        return str(self.document.get("message") or f"the daemon answered {self.status}")


def fetch(port: int, environment: str, token: str, *, timeout: float = TIMEOUT_SECONDS) -> EndpointAnswer:
    """GET /v1/credentials/<environment> on 127.0.0.1:<port>; ``OSError`` when nobody answers, ``ValueError`` when
    the answer is not HTTP."""
    request = (
        f"GET /v1/credentials/{environment} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise ValueError("the answer is not HTTP") from exc
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    return EndpointAnswer(status, document if isinstance(document, dict) else {})


def credential_process_json(document: dict[str, Any]) -> str:
    """The ``credential_process`` form (Version 1) of a 200 answer's credentials."""
    return json.dumps(
        {
            "Version": 1,
            "AccessKeyId": document["AccessKeyId"],
            "SecretAccessKey": document["SecretAccessKey"],
            "SessionToken": document["Token"],
            "Expiration": document["Expiration"],
        }
    )
