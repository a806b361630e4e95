"""A test double of AWS's federation (console sign-in) endpoint that judges credentials by the STS emulator's ledger.

    with FederationEmulator(sts) as signin:     # sts: the StsProxy that issued every credential in play
        config.toml gets `[signin] endpoint_url = "<signin.url>"`
        ... `govuk-imds console production` ...
        signin.logins[-1].role_arn, signin.events == ["getSigninToken", "logout", "login"]

Routes, as the IAM User Guide documents them ("Enable custom identity broker access to the AWS console") and as the
tools that sign out first use them (Leapp, guardian/janus-app):

- ``/federation`` ``Action=getSigninToken`` (GET or POST) with ``Session`` = ``{"sessionId", "sessionKey",
  "sessionToken"}`` and an optional ``SessionDuration``: 200 ``{"SigninToken": ...}``, a token valid 15 minutes.
- ``/federation`` ``Action=login`` (GET or POST) with ``Issuer``, ``Destination``, ``SigninToken``: sets the console's
  cookie and redirects (302) to ``/_console/<id>``, the stand-in for the console page.
- ``/oauth`` ``Action=logout`` with an optional ``redirect_uri``: clears the cookie, then follows ``redirect_uri``
  only when it is this endpoint's own login (AWS's us-east-1 host behaves so), else lands on ``/_signed-out``.
- ``/_console/<id>``: shows whom the browser is signed in as (``#role-arn``), where (``#destination``) and until
  when (``#expires``), for a headless browser's final page.

The rules ``getSigninToken`` enforces, in order; each refusal is AWS's HTTP 400 page "Invalid credentials parameter":

1. ``Session`` is a JSON object with the three strings.
2. They are credentials the STS emulator issued (key id, secret and token all match) and have not expired. moto
   cannot tell: it answers GetCallerIdentity for unknown keys and wrong secrets alike.
3. They came from AssumeRole: GetSessionToken credentials and long-term keys cannot sign in to the console
   (IAM User Guide, "Compare STS credentials": "SSO to console is not allowed").
4. ``SessionDuration``, when sent, is a whole number from 900 to 43200, and is refused for role credentials assumed
   with temporary credentials (AWS Knowledge Center, "invalid-credentials-parameter"; aws-vault issue 77).
5. Credentials assumed *with* ``DurationSeconds`` by anything but an IAM user's long-term key are refused: the IAM
   User Guide's words ("When you use DurationSeconds in an AssumeRole* operation, you must call it as an IAM user
   with long-term credentials. Otherwise, the call to the federation endpoint in step 3 fails."). Real AWS may be
   laxer; ``strict_duration_seconds=False`` turns this rule off.

Then moto is asked who the credentials are (GetCallerIdentity, through the STS proxy), and its answer must match
the ledger's. ``login`` refuses a token that is unknown, spent or over 15 minutes old, and a ``Destination`` that is
not https on ``console.aws.amazon.com`` or ``<region>.console.aws.amazon.com``. A browser still signed in as
another role lands in that old session, whatever token it brings: the pain that signing out first cures.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import secrets
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

from .sts_emulator import IssuedCredential, StsProxy

__all__ = ["REFUSAL_MESSAGE", "FederationEmulator", "Login", "TokenRequest"]

REFUSAL_MESSAGE = "Invalid credentials parameter"
TOKEN_LIFETIME = timedelta(minutes=15)
SESSION_DURATION_RANGE = range(900, 43201)
COOKIE = "aws-console-session"
_CONSOLE_HOST = re.compile(r"(?:[a-z]{2}(?:-[a-z]+)+-\d{1,2}\.)?console\.aws\.amazon\.com")


@dataclass(frozen=True)
class TokenRequest:
    """One ``getSigninToken`` as the emulator saw it (never the secret or the session token)."""

    method: str
    access_key_id: str
    session_duration: str | None
    status: int
    reason: str  # "ok", or the rule that refused it


@dataclass(frozen=True)
class Login:
    """One ``login``: whose token was spent, and whom the browser ended up signed in as."""

    method: str
    requested_arn: str
    role_arn: str  # differs from requested_arn when the browser was still signed in as someone else
    destination: str
    issuer: str
    console_ends: datetime


@dataclass(frozen=True)
class _Token:
    arn: str
    console_ends: datetime
    issued_at: datetime


@dataclass(frozen=True)
class _ConsoleSession:
    arn: str
    destination: str
    issuer: str
    ends: datetime


class _Refused(Exception):
    def __init__(self, reason: str, status: int = 400, message: str = REFUSAL_MESSAGE) -> None:
        super().__init__(reason)
        self.reason, self.status, self.message = reason, status, message


class FederationEmulator:
    """An HTTP server on 127.0.0.1 (started by the constructor; ``url`` is its address) with the routes above."""

    def __init__(
        self,
        sts: StsProxy,
        *,
        strict_duration_seconds: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sts = sts
        self.strict_duration_seconds = strict_duration_seconds
        self._now = now
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._spent: set[str] = set()
        self._sessions: dict[str, _ConsoleSession] = {}
        self._refuse_next: list[tuple[int, str]] = []
        self.token_requests: list[TokenRequest] = []
        self.logins: list[Login] = []
        #: What happened, in order: "getSigninToken", "logout", "login" (refused requests included).
        self.events: list[str] = []
        #: Every sign-in token handed out, for tests that look for leaks.
        self.signin_tokens: list[str] = []
        self._server = _Server(self)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"FederationEmulator:{self.port}", daemon=True)
        self._thread.start()

    def refuse_next(self, status: int = 400, message: str = REFUSAL_MESSAGE) -> None:
        """Answer the next ``getSigninToken`` with this status and error message, whatever it brings."""
        with self._lock:
            self._refuse_next.append((status, message))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- the routes (on the server's threads) ---------------------------------------------------------------------

    def _route(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        params = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        if handler.command == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            form = parse_qs(handler.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
            params.update({key: values[-1] for key, values in form.items()})
        action = params.get("Action")
        if parts.path == "/federation" and action == "getSigninToken":
            self._get_signin_token(handler, params)
        elif parts.path == "/federation" and action == "login":
            self._login(handler, params)
        elif parts.path == "/oauth" and action == "logout" and handler.command == "GET":
            self._logout(handler, params)
        elif parts.path.startswith("/_console/") and handler.command == "GET":
            self._console_page(handler, parts.path.removeprefix("/_console/"))
        elif parts.path == "/_signed-out":
            handler.reply(200, _page("Signed out", '<p id="signed-out">You have signed out.</p>'))
        else:
            handler.reply(404, _page("Not found", "<p>Not found</p>"))

    def _get_signin_token(self, handler: _Handler, params: dict[str, str]) -> None:
        with self._lock:
            self.events.append("getSigninToken")
            fault = self._refuse_next.pop(0) if self._refuse_next else None
        key_id = ""
        try:
            if fault is not None:
                raise _Refused("refused on request", *fault)
            session = _session(params.get("Session"))
            key_id = session["sessionId"]
            issued = self._judge(session, params.get("SessionDuration"))
            arn = self._ask_moto(issued)
        except _Refused as refusal:
            self._record(handler, key_id, params, refusal.status, refusal.reason)
            handler.reply(refusal.status, _error_page(refusal.status, refusal.message))
            return
        now = self._now()
        duration = params.get("SessionDuration")
        console_ends = now + timedelta(seconds=int(duration)) if duration else issued.expiration
        token = secrets.token_urlsafe(96)
        with self._lock:
            self._tokens[token] = _Token(arn, console_ends, now)
            self.signin_tokens.append(token)
        self._record(handler, key_id, params, 200, "ok")
        handler.reply(200, json.dumps({"SigninToken": token}).encode(), "application/json")

    def _judge(self, session: dict[str, str], session_duration: str | None) -> IssuedCredential:
        issued = self._sts.find_issued(session["sessionId"], session["sessionKey"], session["sessionToken"])
        if issued is None:
            raise _Refused("not credentials STS issued")
        if issued.expiration <= self._now():
            raise _Refused("expired credentials")
        if issued.action != "AssumeRole":
            raise _Refused(f"{issued.action} credentials cannot sign in to the console")
        if session_duration is not None:
            if not session_duration.isdigit() or int(session_duration) not in SESSION_DURATION_RANGE:
                raise _Refused("SessionDuration out of range")
            if issued.role_chained:
                raise _Refused("SessionDuration with role-chained credentials")
        if self.strict_duration_seconds and issued.duration_seconds is not None and issued.signed_by != "long-term":
            raise _Refused("DurationSeconds used by temporary credentials")
        return issued

    def _ask_moto(self, issued: IssuedCredential) -> str:
        """Who moto says the credentials are; it must be the role the ledger recorded."""
        client: Any = boto3.client(
            "sts", endpoint_url=self._sts.url, region_name="us-east-1",
            aws_access_key_id=issued.access_key_id, aws_secret_access_key=issued.secret_access_key,
            aws_session_token=issued.session_token, config=Config(retries={"total_max_attempts": 1}),
        )
        arn = str(client.get_caller_identity()["Arn"])
        if arn != issued.arn:
            raise _Refused(f"moto says {arn}, the ledger {issued.arn}", 500, "emulator: the ledger and moto disagree")
        return arn

    def _record(self, handler: _Handler, key_id: str, params: dict[str, str], status: int, reason: str) -> None:
        with self._lock:
            self.token_requests.append(TokenRequest(handler.command, key_id, params.get("SessionDuration"), status,
                                                    reason))

    def _login(self, handler: _Handler, params: dict[str, str]) -> None:
        token, destination = params.get("SigninToken", ""), params.get("Destination", "")
        now = self._now()
        with self._lock:
            self.events.append("login")
            found = self._tokens.get(token)
            fresh = found is not None and token not in self._spent and now - found.issued_at < TOKEN_LIFETIME
            if fresh:
                self._spent.add(token)
        target = urlsplit(destination)
        if found is None or not fresh:
            handler.reply(400, _error_page(400, "Invalid SigninToken"))
            return
        if target.scheme != "https" or not _CONSOLE_HOST.fullmatch(target.netloc):
            handler.reply(400, _error_page(400, "Invalid Destination"))
            return
        issuer = params.get("Issuer", "")
        current = self._signed_in(handler)
        if current is not None and current[1].arn != found.arn:
            session_id, session = current  # still signed in as someone else: the console keeps that session
        else:
            session_id, session = secrets.token_urlsafe(16), _ConsoleSession(found.arn, destination, issuer,
                                                                             found.console_ends)
        with self._lock:
            self._sessions[session_id] = session
            self.logins.append(Login(handler.command, found.arn, session.arn, session.destination, issuer,
                                     session.ends))
        max_age = max(1, int((session.ends - now).total_seconds()))
        handler.reply(302, b"", headers=[("Location", f"/_console/{session_id}"),
                                         ("Set-Cookie", f"{COOKIE}={session_id}; Max-Age={max_age}; Path=/; HttpOnly")])

    def _logout(self, handler: _Handler, params: dict[str, str]) -> None:
        with self._lock:
            self.events.append("logout")
        current = self._signed_in(handler)
        if current is not None:
            with self._lock:
                self._sessions.pop(current[0], None)
        then = params.get("redirect_uri", "")
        location = then if then.startswith(f"{self.url}/federation?") else "/_signed-out"
        handler.reply(302, b"", headers=[("Location", location), ("Set-Cookie", f"{COOKIE}=; Max-Age=0; Path=/")])

    def _console_page(self, handler: _Handler, session_id: str) -> None:
        current = self._signed_in(handler)
        if current is None or current[0] != session_id:
            handler.reply(403, _page("Not signed in", '<p id="not-signed-in">Not signed in</p>'))
            return
        session = current[1]
        body = (f'<p id="role-arn">{html.escape(session.arn)}</p>'
                f'<p id="destination">{html.escape(session.destination)}</p>'
                f'<p id="issuer">{html.escape(session.issuer)}</p>'
                f'<p id="expires">{session.ends.strftime("%Y-%m-%dT%H:%M:%SZ")}</p>')
        handler.reply(200, _page("AWS console (emulated)", body))

    def _signed_in(self, handler: _Handler) -> tuple[str, _ConsoleSession] | None:
        cookie = SimpleCookie(handler.headers.get("Cookie") or "")
        morsel = cookie.get(COOKIE)
        with self._lock:
            session = self._sessions.get(morsel.value) if morsel is not None else None
        if morsel is None or session is None or session.ends <= self._now():
            return None
        return morsel.value, session


def _session(raw: str | None) -> dict[str, str]:
    try:
        document = json.loads(raw or "")
    except ValueError as exc:
        raise _Refused("Session is not JSON") from exc
    names = ("sessionId", "sessionKey", "sessionToken")
    if not isinstance(document, dict) or not all(isinstance(document.get(name), str) for name in names):
        raise _Refused("Session lacks sessionId, sessionKey or sessionToken")
    return {name: document[name] for name in names}


def _page(title: str, body: str) -> bytes:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>".encode()


def _error_page(status: int, message: str) -> bytes:
    """The error page AWS's sign-in answers with (its text as users quote it; the markup is Tomcat's)."""
    return (
        "<html><head><title>Error report</title></head><body>"
        f"<h1>HTTP Status {status} - {html.escape(message)}</h1><hr>"
        f"<p><b>type</b> Status report</p><p><b>message</b> <u>{html.escape(message)}</u></p>"
        "<p><b>description</b> <u>The request sent by the client was syntactically incorrect.</u></p>"
        "</body></html>"
    ).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, emulator: FederationEmulator) -> None:
        self.emulator = emulator
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client went away: expected
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def do_GET(self) -> None:
        cast(_Server, self.server).emulator._route(self)

    do_POST = do_GET

    def reply(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              headers: list[tuple[str, str]] | None = None) -> None:
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers or []:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
