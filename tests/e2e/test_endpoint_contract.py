"""The credential endpoint's HTTP contract, against a real daemon on loopback.

Requests are written as raw bytes where an HTTP client would normalise them away (a second Host header, an
absolute-form target, invalid UTF-8 in a header).
"""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.world import ACCOUNTS, World


def raw_request(world: World, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", world.port), timeout=5) as connection:
        connection.sendall(request)
        received = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def get(world: World, path: str, *, token: bytes | None = None, host: bytes | None = None,
        method: bytes = b"GET", extra: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    host_line = b"Host: " + (host if host is not None else f"127.0.0.1:{world.port}".encode()) + b"\r\n"
    auth_line = b"Authorization: " + token + b"\r\n" if token is not None else b""
    request = method + b" " + path.encode() + b" HTTP/1.1\r\n" + host_line + auth_line + extra
    return raw_request(world, request + b"Connection: close\r\n\r\n")


def token(world: World, name: str) -> bytes:
    return world.token_file(name).read_bytes()


def test_success_answer_has_every_field_in_the_shape_every_sdk_accepts(served: World) -> None:
    status, headers, body = get(served, "/v1/credentials/production", token=token(served, "production"))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    document = json.loads(body)
    assert set(document) >= {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "AccountId", "RoleArn"}
    assert "Code" not in document
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["Expiration"])
    assert document["AccountId"] == ACCOUNTS["production"]
    expires = datetime.fromisoformat(document["Expiration"].replace("Z", "+00:00"))
    assert expires - datetime.now(UTC) > timedelta(minutes=30)
    assert not any(name.startswith("access-control-") for name in headers)


def test_token_files_are_private_without_newline_and_differ_per_environment(served: World) -> None:
    tokens = {name: served.token_file(name) for name in ACCOUNTS}
    for path in tokens.values():
        assert path.stat().st_mode & 0o777 == 0o600
        content = path.read_bytes()
        assert len(content) >= 43
        assert not content.endswith((b"\n", b"\r"))
    assert len({path.read_bytes() for path in tokens.values()}) == len(tokens)
    assert (served.runtime.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize(
    ("name", "authorization", "status"),
    [
        ("missing", None, 401),
        ("empty", b"", 403),
        ("bearer", b"Bearer {token}", 403),
        ("whitespace inside", b"{head} {tail}", 403),
        ("truncated", b"{head}", 403),
        ("non-ascii", "{token}é".encode(), 403),
        ("invalid utf-8", b"{token}\xff\xfe", 403),
        ("another environment's", b"{staging}", 403),
    ],
)
def test_every_bad_authorization_is_refused_without_credentials(served: World, name: str,
                                                                 authorization: bytes | None, status: int) -> None:
    good = token(served, "production")
    if authorization is not None:
        authorization = (authorization.replace(b"{token}", good).replace(b"{head}", good[:20])
                         .replace(b"{tail}", good[20:]).replace(b"{staging}", token(served, "staging")))
    answer_status, headers, body = get(served, "/v1/credentials/production", token=authorization)
    assert answer_status == status, name
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert set(document) == {"code", "message", "Code", "Message"}
    assert document["Message"] == document["message"]
    assert b"SecretAccessKey" not in body


def test_two_authorization_headers_are_refused(served: World) -> None:
    good = token(served, "production")
    status, _, body = get(served, "/v1/credentials/production", token=good,
                          extra=b"Authorization: " + good + b"\r\n")
    assert status == 403
    assert b"AccessKeyId" not in body


@pytest.mark.parametrize(
    ("host", "extra", "target", "status"),
    [
        (b"evil.example:{port}", b"", "/v1/credentials/production", 403),  # DNS rebinding
        (b"localhost:{port}", b"", "/v1/credentials/production", 403),
        # aiohttp's own parser refuses a second Host (a plain-text 400) before our checks run.
        (b"127.0.0.1:{port}", b"Host: evil.example\r\n", "/v1/credentials/production", 400),
        (b"127.0.0.1:{port}", b"", "http://evil.example/v1/credentials/production", 400),
    ],
)
def test_browser_and_rebinding_requests_are_refused_before_the_token_is_looked_at(
        served: World, host: bytes, extra: bytes, target: str, status: int) -> None:
    host = host.replace(b"{port}", str(served.port).encode())
    answer_status, headers, body = get(served, target, token=token(served, "production"), host=host, extra=extra)
    assert answer_status == status
    assert b"AccessKeyId" not in body
    if b"Host: evil" not in extra:
        assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "host",
    [
        b"127.0.0.1:{port}",
        b"127.0.0.1",  # as the AWS Common Runtime sends it: no port (see test_security.py for why that is safe)
    ],
)
def test_host_naming_our_address_with_or_without_our_port_is_served(served: World, host: bytes) -> None:
    status, _, body = get(served, "/v1/credentials/production", token=token(served, "production"),
                          host=host.replace(b"{port}", str(served.port).encode()))
    assert status == 200
    assert json.loads(body)["AccessKeyId"]


@pytest.mark.parametrize(
    ("host", "extra", "status"),
    [
        (b"127.0.0.1:{other}", b"", 403),
        (b"127.0.0.1:", b"", 403),
        (b"127.0.0.1:0{port}", b"", 403),
        (b"127.0.0.1.", b"", 403),
        (b"127.1:{port}", b"", 403),
        (b"localhost", b"", 403),
        (b"localhost:{port}", b"", 403),
        (b"LOCALHOST:{port}", b"", 403),
        (b"[::1]:{port}", b"", 403),
        (b"[::1]", b"", 403),
        (b"evil.example", b"", 403),
        (b"evil.example:{port}", b"", 403),
        (b"", b"", 403),
        (b"127.0.0.1", b"Host: 127.0.0.1\r\n", 400),  # duplicates, even of accepted values
        (b"127.0.0.1", b"Host: 127.0.0.1:{port}\r\n", 400),
        (b"127.0.0.1:{port}", b"Host: 127.0.0.1\r\n", 400),
    ],
)
def test_any_other_host_or_more_than_one_is_refused_before_the_token_is_looked_at(
        served: World, host: bytes, extra: bytes, status: int) -> None:
    def filled(value: bytes) -> bytes:
        return value.replace(b"{port}", str(served.port).encode()).replace(b"{other}", str(served.port + 1).encode())

    answer_status, _, body = get(served, "/v1/credentials/production", token=token(served, "production"),
                                 host=filled(host), extra=filled(extra))
    assert answer_status == status
    assert b"AccessKeyId" not in body


# Written out by hand, never generated from the list under test: each line is a header a browser or a proxy sends
# and no AWS SDK does. Removing any one family (or member) from the daemon's rule fails its own case here.
BROWSER_AND_PROXY_HEADERS = [
    b"Origin: https://evil.example",
    b"Referer: https://evil.example/page",
    b"Sec-Fetch-Site: cross-site",
    b"Sec-Fetch-Mode: no-cors",
    b"Sec-Fetch-Dest: empty",
    b"Sec-Fetch-User: ?1",
    b"Sec-Fetch-Storage-Access: active",
    b"Sec-Fetch-Frame-Ancestors: cross-site",
    b"Sec-CH-UA: \"Chromium\";v=\"131\"",
    b"Sec-Purpose: prefetch",
    b"Forwarded: for=10.0.0.1;host=evil.example",
    b"X-Forwarded-For: 10.0.0.1",
    b"X-Forwarded-Host: evil.example",
    b"X-Forwarded-Proto: https",
    b"X-Forwarded-Port: 443",
    b"X-Forwarded-Server: proxy.example",
    b"X-Forwarded-Prefix: /credentials",
    b"Via: 1.1 proxy.example",
    b"origin: null",  # any case
    b"SEC-FETCH-SITE: same-origin",
]


@pytest.mark.parametrize("header", BROWSER_AND_PROXY_HEADERS, ids=[h.split(b":")[0].decode() for h in
                                                                   BROWSER_AND_PROXY_HEADERS])
def test_every_browser_and_proxy_header_is_refused_with_a_valid_token(served: World, header: bytes) -> None:
    status, headers, body = get(served, "/v1/credentials/production", token=token(served, "production"),
                                extra=header + b"\r\n")
    assert status == 403
    assert headers["content-type"] == "application/json"
    assert b"AccessKeyId" not in body


def test_what_sdks_send_is_served(served: World) -> None:
    """The control for the refusals above: the headers real SDKs send (botocore, the JS SDK, the CRT) pass."""
    sdk_headers = (b"User-Agent: aws-sdk-js/3.700.0 ua/2.1 os/linux lang/js md/nodejs#22\r\n"
                   b"Accept: application/json\r\nAccept-Encoding: identity\r\nX-Amz-Content-Sha256: x\r\n"
                   b"Amz-Sdk-Invocation-Id: 1\r\nX-Custom-Forwarder: no\r\n")
    status, _, body = get(served, "/v1/credentials/production", token=token(served, "production"), extra=sdk_headers)
    assert status == 200
    assert b"AccessKeyId" in body


def test_an_http_1_0_request_without_host_is_refused(served: World) -> None:
    """HTTP/1.1 without Host is refused by aiohttp's parser; HTTP/1.0 without Host reaches the daemon's own check."""
    request = (b"GET /v1/credentials/production HTTP/1.0\r\nAuthorization: " + token(served, "production")
               + b"\r\n\r\n")
    status, headers, body = raw_request(served, request)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["message"] == "exactly one Host header is required"


def test_other_methods_paths_and_options_get_json_errors(served: World) -> None:
    good = token(served, "production")
    for method, path, status in [(b"POST", "/v1/credentials/production", 405),
                                 (b"OPTIONS", "/v1/credentials/production", 405),
                                 (b"HEAD", "/v1/credentials/production", 405),
                                 (b"GET", "/", 404), (b"GET", "/latest/meta-data/", 404),
                                 (b"GET", "/v1/credentials/production?x=1", 404),
                                 (b"GET", "/v1/credentials/production/", 404)]:
        answer_status, headers, body = get(served, path, token=good, method=method)
        assert answer_status == status, (method, path)
        if method != b"HEAD":
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["code"]
        assert not any(name.startswith("access-control-") for name in headers)


def test_locked_environment_answers_a_4xx_that_is_not_429_and_names_the_unlock_command(served: World) -> None:
    status, headers, body = get(served, "/v1/credentials/integration", token=token(served, "integration"))
    assert 400 <= status < 500
    assert status != 429
    assert headers["content-type"] == "application/json"
    assert "govuk-imds unlock integration" in json.loads(body)["message"]


def test_unknown_environment_is_a_404_naming_the_fix(served: World) -> None:
    status, _, body = get(served, "/v1/credentials/nosuch", token=b"x" * 43)
    assert status == 404
    assert "unknown environment" in json.loads(body)["message"]
