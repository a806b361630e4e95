"""The federation adapter against the emulator, with credentials that moto issued through the STS proxy.

The emulator applies AWS's rules to what the STS proxy's ledger says about each credential, so these tests also
show why the console needs its own AssumeRole: the credentials the daemon serves are refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from govuk_imds.aws.federation import ISSUER, BrowserRequest, Federation
from govuk_imds.aws.sts import Sts
from govuk_imds.config.paths import RuntimePaths
from govuk_imds.config.settings import Settings
from govuk_imds.core.credentials import LongTermKey, MfaSession, RoleCredentials
from govuk_imds.core.environment import EnvironmentSpec
from govuk_imds.errors import SigninRefused
from tests.support.federation_emulator import FederationEmulator
from tests.support.sts_emulator import MotoServer, StsProxy, make_iam_user
from tests.support.world import ACCOUNTS

SPEC = EnvironmentSpec(name="production", profile="govuk-production",
                       role_arn=f"arn:aws:iam::{ACCOUNTS['production']}:role/govuk-administrators",
                       mfa_serial="unused", source_profile="gds", region="eu-west-1", role_duration_seconds=3600,
                       role_session_name="first.last")


@pytest.fixture
def signin(sts: StsProxy) -> Iterator[FederationEmulator]:
    with FederationEmulator(sts) as emulator:
        yield emulator


@pytest.fixture
def sts_adapter(sts: StsProxy, tmp_path: Path) -> Sts:
    settings = Settings(config_file=tmp_path / "c.toml", runtime=RuntimePaths(tmp_path), aws_config_file=tmp_path,
                        sts_endpoint_url=sts.url, sts_region="eu-west-1")
    return Sts(settings, connect_timeout=1, read_timeout=2)


@pytest.fixture
def mfa_session(moto: MotoServer, sts: StsProxy, sts_adapter: Sts) -> MfaSession:
    key_id, secret, serial = make_iam_user(moto.url)
    sts.register_mfa_device(serial, access_key_id=key_id)
    return sts_adapter.get_session_token(LongTermKey(key_id, secret), source_profile="gds", mfa_serial=serial,
                                         code=sts.unused_code(serial), duration_seconds=28800)


def as_role_credentials(credentials: MfaSession | RoleCredentials) -> RoleCredentials:
    return RoleCredentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token,
                           credentials.expiration)


def test_console_credentials_get_a_sign_in_token_by_post_without_session_duration(
    signin: FederationEmulator, sts_adapter: Sts, mfa_session: MfaSession
) -> None:
    credentials = sts_adapter.assume_role_for_console(mfa_session, SPEC)
    token = Federation(signin.url).signin_token(credentials)
    assert token == signin.signin_tokens[-1]
    [request] = signin.token_requests
    assert (request.method, request.session_duration, request.status) == ("POST", None, 200)


def test_the_served_credentials_are_refused_because_they_were_assumed_with_duration_seconds(
    signin: FederationEmulator, sts_adapter: Sts, mfa_session: MfaSession
) -> None:
    served = sts_adapter.assume_role(mfa_session, SPEC)  # what the daemon serves: DurationSeconds=3600
    with pytest.raises(SigninRefused) as refused:
        Federation(signin.url).signin_token(served)
    assert str(refused.value) == "AWS sign-in refused the role credentials (HTTP 400: Invalid credentials parameter)"
    assert signin.token_requests[-1].reason == "DurationSeconds used by temporary credentials"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda c, m: as_role_credentials(m), "GetSessionToken credentials cannot sign in to the console"),
        (lambda c, m: RoleCredentials(c.access_key_id, "x" * 40, c.session_token, c.expiration),
         "not credentials STS issued"),
        (lambda c, m: RoleCredentials("ASIAUNKNOWNUNKNOWN12", c.secret_access_key, c.session_token, c.expiration),
         "not credentials STS issued"),
    ],
)
def test_credentials_the_console_does_not_accept_are_refused(
    signin: FederationEmulator, sts_adapter: Sts, mfa_session: MfaSession, tamper: Any, reason: str
) -> None:
    credentials = tamper(sts_adapter.assume_role_for_console(mfa_session, SPEC), mfa_session)
    with pytest.raises(SigninRefused, match="Invalid credentials parameter"):
        Federation(signin.url).signin_token(credentials)
    assert signin.token_requests[-1].reason == reason
    assert signin.signin_tokens == []


def test_login_and_logout_requests(signin: FederationEmulator) -> None:
    federation = Federation(signin.url + "/")
    login = federation.login("TOKEN/+=", "https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1")
    assert (login.method, login.action) == ("POST", f"{signin.url}/federation")
    assert dict(login.fields) == {"Action": "login", "Issuer": ISSUER, "SigninToken": "TOKEN/+=",
                                  "Destination": "https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1"}
    assert "TOKEN" not in repr(login)
    logout = federation.logout_then(login)
    assert (logout.method, logout.action) == ("GET", f"{signin.url}/oauth")
    [redirect] = parse_qs(urlsplit(logout.url).query)["redirect_uri"]
    assert redirect == login.url  # encoded once, whole, and decoded back intact
    assert parse_qs(urlsplit(redirect).query)["SigninToken"] == ["TOKEN/+="]


class _Answer(BaseHTTPRequestHandler):
    """One canned answer, for what the emulator never says: a redirect, a JSON error, a 200 with no token."""

    status = 200
    headers_out: tuple[tuple[str, str], ...] = ()
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        for name, value in self.headers_out:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


CREDENTIALS = RoleCredentials("ASIAEXAMPLEEXAMPLE12", "s" * 40, "SESSION-TOKEN-VALUE", datetime(2030, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("status", "headers", "body", "message"),
    [
        (503, (), b'{"message": "Service unavailable, try later"}',
         "AWS sign-in refused the role credentials (HTTP 503: Service unavailable, try later)"),
        (400, (), b"<html><body><p>Bad SESSION-TOKEN-VALUE here</p></body></html>",
         "AWS sign-in refused the role credentials (HTTP 400: Bad \u2026 here)"),
        (302, (("Location", "http://127.0.0.1:9/steal"),), b"",
         "AWS sign-in refused the role credentials (HTTP 302: Found)"),
        (200, (), b"not json", "AWS sign-in answered without a sign-in token; try again"),
        (200, (), b'{"SigninToken": "has spaces in it and so is not a token"}',
         "AWS sign-in answered with a sign-in token of an unexpected shape; try again"),
    ],
)
def test_every_other_answer_is_one_line_without_secrets(
    status: int, headers: tuple[tuple[str, str], ...], body: bytes, message: str
) -> None:
    handler = type("Handler", (_Answer,), {"status": status, "headers_out": headers, "body": body})
    with HTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with pytest.raises(SigninRefused) as refused:
                Federation(f"http://127.0.0.1:{server.server_address[1]}").signin_token(CREDENTIALS)
        finally:
            server.shutdown()
    assert str(refused.value) == message


def test_an_endpoint_that_is_not_there_is_one_line() -> None:
    federation = Federation("http://127.0.0.1:9", timeout=2)
    with pytest.raises(SigninRefused, match=r"^AWS sign-in at http://127.0.0.1:9 could not be reached \(.*\); try"):
        federation.signin_token(CREDENTIALS)


def test_browser_requests_as_urls() -> None:
    request = BrowserRequest("GET", "https://h/p", (("a", "1 2"), ("b", "&")))
    assert request.url == "https://h/p?a=1+2&b=%26"
