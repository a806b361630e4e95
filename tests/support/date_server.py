"""A tiny HTTP server that answers like STS answers a bare GET, with a chosen ``Date``: for `doctor`'s clock check."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class DateServer:
    """Answers every request on 127.0.0.1 like STS answers a bare GET: an error body, and a ``Date`` ``offset`` off
    the real time (no ``Date`` at all when ``offset`` is None)."""

    def __init__(self, offset: timedelta | None, *, status: int = 400, body: bytes = b"<ErrorResponse/>",
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                self.send_response_only(status)
                if offset is not None:
                    self.send_header("Date", format_datetime(now() + offset, usegmt=True))
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
