"""The one-shot page that hands a console sign-in to the browser without putting it in anyone's argv.

A browser started with a URL shows that URL to every local user in ``ps`` for as long as it runs, and the sign-in
URL is a bearer credential for the console. So the browser is given the address of a page of ours instead,
``http://127.0.0.1:<ephemeral port>/<256 random bits>``, served by this process (never the daemon, whose endpoint
stays one GET route), and the page makes the sign-in request itself: an auto-submitted form, so the login is a
POST that keeps the token out of the address bar and history. The page is:

- served once, and only within ``lifetime`` seconds (a minute);
- served only to a request whose ``Host`` is exactly its own address (a DNS-rebinding page gets nothing);
- on Linux, served only to a client socket owned by our own uid, which the kernel's socket table names
  (``socket_owner``); an unknown owner is refused too. Elsewhere the random path and the minute are the guard;
- sent with ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` and a CSP that runs only its own script
  (and no ``form-action``: browsers hold the redirects that follow a form to it, and AWS redirects to the console).

A refused request never uses the page up, so a local attacker cannot spend it before the browser does. Nothing is
logged: the path is as good as the sign-in for that minute.
"""

from __future__ import annotations

import html
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast

from ..aws.federation import BrowserRequest
from ..socket_owner import socket_uid

LIFETIME_SECONDS = 60.0
_USED = b"This sign-in page has been used or has expired. Run `govuk-imds console` again.\n"
UidLookup = Callable[[tuple[str, int], tuple[str, int]], int | None]


def page(request: BrowserRequest, nonce: str) -> bytes:
    """An HTML page that submits ``request`` as soon as it loads (a button does it without JavaScript)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in request.fields
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        "<title>Signing in to the AWS console</title></head><body>"
        f'<form id="signin" method="{request.method.lower()}" action="{html.escape(request.action)}">{inputs}'
        '<noscript><button type="submit">Continue to the AWS console</button></noscript></form>'
        f'<script nonce="{nonce}">document.getElementById("signin").submit()</script>'
        "</body></html>"
    ).encode()


class Handoff:
    """Serve ``request`` once, as a self-submitting page, on 127.0.0.1; ``url`` is what the browser is given."""

    def __init__(
        self,
        request: BrowserRequest,
        *,
        lifetime: float = LIFETIME_SECONDS,
        peer_uid: UidLookup | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._request = request
        self._nonce = secrets.token_urlsafe(16)
        self._path = "/" + secrets.token_urlsafe(32)
        self._clock = clock
        self._deadline = clock() + lifetime
        # The uid check is Linux's: elsewhere there is no table that names a TCP peer's owner.
        if peer_uid is None and sys.platform.startswith("linux"):
            peer_uid = socket_uid  # the client socket: its local end is the client's, its remote end ours
        self._peer_uid = peer_uid
        self._lock = threading.Lock()
        self._used = False
        self._served = threading.Event()
        #: Why requests were refused (for the command to mention, and for tests): no secrets in them.
        self.refusals: list[str] = []
        self._server = _Server(self)
        self._address = ("127.0.0.1", int(self._server.server_address[1]))
        self.host = f"127.0.0.1:{self._address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}{self._path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the page was served, waiting at most ``timeout`` seconds (and never past its lifetime)."""
        remaining = self._deadline - self._clock()
        return self._served.wait(max(0.0, remaining if timeout is None else min(timeout, remaining)))

    @property
    def expired(self) -> bool:
        return self._clock() >= self._deadline

    # -- on the server's threads ----------------------------------------------------------------------------------

    def _answer(self, handler: _Handler) -> None:
        refusal = self._refusal(handler)
        if refusal is not None:
            status, reason = refusal
            self.refusals.append(reason)
            handler.reply(status, b"", "text/plain")
            return
        with self._lock:
            if self._used or self.expired:
                handler.reply(410, _USED, "text/plain; charset=utf-8")
                return
            self._used = True
        handler.reply(200, page(self._request, self._nonce), "text/html; charset=utf-8", self._nonce)
        self._served.set()

    def _refusal(self, handler: _Handler) -> tuple[int, str] | None:
        if self._peer_uid is not None:
            owner = self._peer_uid(handler.client_address, self._address)
            if owner != os.getuid():
                return 403, "a client of another user" if owner is not None else "a client whose owner is unknown"
        if handler.headers.get_all("Host") != [self.host]:
            return 403, "a request for another host name"
        if handler.path != self._path:
            return 404, "a request for another path"
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, handoff: Handoff) -> None:
        self.handoff = handoff
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away, or sent nonsense: nothing to report, and nothing to log


class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # a client that connects and says nothing must not hold a thread for long
    server_version = "govuk-imds"
    sys_version = ""

    def do_GET(self) -> None:
        cast(_Server, self.server).handoff._answer(self)

    def reply(self, status: int, body: bytes, content_type: str, nonce: str | None = None) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        self.send_header("Referrer-Policy", "no-referrer")
        script = f"'nonce-{nonce}'" if nonce else "'none'"
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'none'; script-src {script}; base-uri 'none'; frame-ancestors 'none'",
        )
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line holds the page's secret path
