"""The one-shot page: served once, within its minute, to its own Host and (on Linux) to its own user only.

Each test talks to a real server on loopback over raw sockets, so the exact headers sent are what is checked.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from govuk_imds.aws.federation import BrowserRequest
from govuk_imds.console.handoff import Handoff, page
from tests.support.world import require

LOGIN = BrowserRequest("POST", "https://us-east-1.signin.aws.amazon.com/federation",
                       (("Action", "login"), ("Destination", "https://x.example/?a=1&b=\"2\"><script>"),
                        ("SigninToken", "SECRET-TOKEN")))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(handoff: Handoff, path: str | None = None, host: str | None = None, method: str = "GET") -> tuple[int, bytes]:
    """Status and raw response of one request to the page's server."""
    target = path if path is not None else urlsplit(handoff.url).path
    with socket.create_connection(("127.0.0.1", int(handoff.host.split(":")[1])), timeout=5) as connection:
        connection.sendall(f"{method} {target} HTTP/1.1\r\nHost: {host or handoff.host}\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def handoff(clock: Clock) -> Iterator[Handoff]:
    with Handoff(LOGIN, clock=clock) as serving:
        yield serving


def test_the_page_is_served_once_with_its_protections(handoff: Handoff) -> None:
    assert not handoff.wait(timeout=0)
    status, answer = get(handoff)
    assert status == 200
    head, body = answer.split(b"\r\n\r\n", 1)
    headers = {line.split(b": ", 1)[0].lower(): line.split(b": ", 1)[1] for line in head.split(b"\r\n")[1:]}
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"referrer-policy"] == b"no-referrer"
    assert headers[b"x-frame-options"] == b"DENY"
    nonce = body.split(b'<script nonce="', 1)[1].split(b'"', 1)[0]
    assert headers[b"content-security-policy"] == (
        b"default-src 'none'; script-src 'nonce-" + nonce + b"'; base-uri 'none'; frame-ancestors 'none'")
    assert b'method="post" action="https://us-east-1.signin.aws.amazon.com/federation"' in body
    assert b'name="SigninToken" value="SECRET-TOKEN"' in body
    assert handoff.wait(timeout=0)
    status, answer = get(handoff)
    assert status == 410
    assert b"SECRET-TOKEN" not in answer


@pytest.mark.parametrize(
    ("path", "host", "method", "status"),
    [
        ("/other", None, "GET", 404),
        (None, "localhost:{port}", "GET", 403),  # not the address the browser was given: a rebinding page's Host
        (None, "evil.example", "GET", 403),
        (None, None, "POST", 501),
        (None, None, "HEAD", 501),
    ],
)
def test_refused_requests_do_not_use_the_page_up(
    handoff: Handoff, path: str | None, host: str | None, method: str, status: int
) -> None:
    port = handoff.host.split(":")[1]
    refused, answer = get(handoff, path, host.format(port=port) if host else None, method)
    assert refused == status
    assert b"SECRET-TOKEN" not in answer
    assert get(handoff)[0] == 200  # the owner's browser still gets it


def test_the_page_expires_within_its_minute(handoff: Handoff, clock: Clock) -> None:
    clock.now += 60
    assert handoff.expired
    assert get(handoff)[0] == 410
    assert not handoff.wait(timeout=1)  # returns at once: the page is past its lifetime


def test_a_client_whose_owner_cannot_be_found_is_refused() -> None:
    with Handoff(LOGIN, peer_uid=lambda client, server: None) as handoff:
        assert get(handoff)[0] == 403
        assert handoff.refusals == ["a client whose owner is unknown"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's TCP table is Linux's")
def test_a_client_of_another_user_is_refused_and_the_owner_still_served(handoff: Handoff) -> None:
    require(os.geteuid() == 0, "root, to run a client as another user")
    system_python = Path("/usr/bin/python3")  # the venv's interpreter may sit in a directory nobody cannot enter
    require(system_python.exists(), "/usr/bin/python3")
    fetch = ("import sys, urllib.request, urllib.error\n"
             "try: urllib.request.urlopen(sys.argv[1], timeout=5)\n"
             "except urllib.error.HTTPError as e: print(e.code)")
    as_nobody = subprocess.run([str(system_python), "-c", fetch, handoff.url], user=65534, group=65534,
                               capture_output=True, text=True, timeout=10, check=False)
    assert as_nobody.stdout.strip() == "403", as_nobody.stderr
    assert handoff.refusals == ["a client of another user"]
    assert get(handoff)[0] == 200


def test_the_page_escapes_every_value_and_needs_no_script_to_work() -> None:
    body = page(LOGIN, "n0nce").decode()
    assert '"2"><script>' not in body
    assert 'value="https://x.example/?a=1&amp;b=&quot;2&quot;&gt;&lt;script&gt;"' in body
    assert '<noscript><button type="submit">' in body
    logout = BrowserRequest("GET", "https://signin.example/oauth", (("Action", "logout"),))
    assert '<form id="signin" method="get" action="https://signin.example/oauth">' in page(logout, "n").decode()
