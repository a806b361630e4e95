"""STS test emulator: a real ``moto_server`` plus an MFA-checking, fault-injecting proxy.

Tests talk to STS over HTTP, never by patching boto3::

    with start_moto() as moto, StsProxy(moto.url) as proxy:
        key_id, secret, serial = make_iam_user(moto.url)
        totp = proxy.register_mfa_device(serial, access_key_id=key_id)
        sts = boto3.client("sts", endpoint_url=proxy.url, ...)
        sts.get_session_token(SerialNumber=serial, TokenCode=totp.now())

moto accepts any MFA code, so :class:`StsProxy` checks ``SerialNumber`` and
``TokenCode`` on ``GetSessionToken`` (and on ``AssumeRole`` when they are sent)
with pyotp, accepts each code once per serial, and forwards everything else to
moto unchanged.

Real AWS STS error texts
------------------------
All are HTTP 403, ``<Type>Sender</Type>``, ``<Code>AccessDenied</Code>``.
These are the texts quoted from real AWS in public issue threads:

* Wrong code -> :data:`MSG_INVALID_CODE`
  ``MultiFactorAuthentication failed with invalid MFA one time pass code.``
  (GetSessionToken with a mistyped code: lonelyplanet/aws-mfa#21;
  aws-cli#2279; binxio/aws-ssm-copy#22.)
* Reused code -> the same text, :data:`MSG_REUSED_CODE` is
  :data:`MSG_INVALID_CODE`. AWS has no separate "already used" message: sending
  the code again within its 30 s window fails with "... invalid MFA one time
  pass code." (1Password/shell-plugins#180, where two AssumeRole calls share a
  code; aws-cli#2279, assume-role in a loop; 99designs/aws-vault#1110, where
  rotate reuses a code in one TOTP window and gets "invalid MFA".)
* Serial not a device of this user ->
  :data:`MSG_UNKNOWN_SERIAL`, ``MultiFactorAuthentication failed, unable to
  validate MFA code.  Please verify your MFA serial number is valid and
  associated with this user.`` (two spaces after "code.")
  (aws-cli#6325; broamski/aws-mfa#25 and #46, where the serial was a
  ``:user/`` ARN; 99designs/aws-vault#676, "status code: 403".)
* Only one of serial/code sent -> :data:`MSG_MISSING_MFA`,
  ``MultiFactorAuthentication failed, must provide both MFA serial number and
  one time pass code.`` (dtan4/terraforming#424, y13i/sgviz#9.)

The brief quoted the wrong-code text with a trailing space before
``</Message>``. No source shows that space, so it is left out.

Liberties taken (differences from AWS)
-------------------------------------
* A ``GetSessionToken`` without MFA, signed with an access key that was
  registered through ``register_mfa_device(..., access_key_id=...)``, gets
  :data:`MSG_MISSING_MFA`. Real AWS would hand out a session that has no MFA in
  it, and a later MFA-guarded call would fail instead.
* A serial that nobody registered gets :data:`MSG_UNKNOWN_SERIAL`; it is not
  passed on to moto.
* Codes are checked with ``valid_window=1`` (one 30 s step either side). A code
  that succeeded is refused for the rest of the time it would be valid. A
  failed attempt does not use up the code.

Ledger
------
Every GetSessionToken and AssumeRole the proxy answers with 200 is written down as an :class:`IssuedCredential`:
the credentials exactly as the client saw them (after canary substitution and ``role_lifetime``), whether
``DurationSeconds`` was sent, and what signed the request (a long-term key, or credentials the proxy issued
earlier). moto cannot judge credentials (it answers for unknown keys and wrong secrets alike), so the federation
emulator asks this ledger instead: :meth:`StsProxy.find_issued`.

Canaries
--------
With ``proxy.canary = "CANARY"``, the AccessKeyId, SecretAccessKey and
SessionToken in successful GetSessionToken/AssumeRole responses are replaced
by values that contain the marker. On later requests the proxy maps canary
key ids and tokens back to moto's real ones. moto does not check SigV4
signatures, so signing with the canary secret still works.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, NamedTuple, Self, cast, get_args
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import boto3
import pyotp

__all__ = [
    "MSG_INVALID_CODE",
    "MSG_MISSING_MFA",
    "MSG_REUSED_CODE",
    "MSG_UNKNOWN_SERIAL",
    "STS_NAMESPACE",
    "FaultKind",
    "IssuedCredential",
    "MotoServer",
    "MotoServerNotFoundError",
    "ProxyCall",
    "StsProxy",
    "error_xml",
    "find_moto_server",
    "make_iam_user",
    "start_moto",
]

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
MSG_INVALID_CODE = (
    "MultiFactorAuthentication failed with invalid MFA one time pass code."
)
MSG_REUSED_CODE = MSG_INVALID_CODE
MSG_UNKNOWN_SERIAL = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  "
    "Please verify your MFA serial number is valid and associated with this user."
)
MSG_MISSING_MFA = "MultiFactorAuthentication failed, must provide both MFA serial number and one time pass code."

_LOCALHOST = "127.0.0.1"
_MFA_ACTIONS = frozenset({"GetSessionToken", "AssumeRole"})
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


# --------------------------------------------------------------------------- moto server


class MotoServerNotFoundError(RuntimeError):
    """The ``moto_server`` executable is not installed."""


def find_moto_server() -> str:
    """Path of ``moto_server``: next to ``sys.executable``, else on ``PATH``."""
    for name in ("moto_server", "moto_server.exe"):
        candidate = Path(sys.executable).parent / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("moto_server")
    if found is None:
        raise MotoServerNotFoundError(
            "moto_server executable not found next to "
            f"{sys.executable} or on PATH; install it with: pip install 'moto[server]'"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOCALHOST, 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((_LOCALHOST, port)) == 0


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``grace`` seconds; returns once it has gone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)


def _terminate(process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    stop_process(process)
    log.close()


class MotoServer:
    """A ``moto_server`` child process on 127.0.0.1. Use :func:`start_moto`."""

    def __init__(
        self, port: int | None = None, *, startup_timeout: float = 9.0
    ) -> None:
        executable = find_moto_server()
        if port is not None and _port_in_use(port):
            raise RuntimeError(
                f"cannot start moto_server: 127.0.0.1:{port} is already in use"
            )
        self.port = port if port is not None else _free_port()
        self.url = f"http://{_LOCALHOST}:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            [executable, "-H", _LOCALHOST, "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._finalizer = weakref.finalize(self, _terminate, self.process, self._log)
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"moto_server exited with code {self.process.returncode}:\n{self._output()}"
                )
            conn = http.client.HTTPConnection(_LOCALHOST, self.port, timeout=1)
            try:
                conn.request("GET", "/moto-api/config", headers={"Connection": "close"})
                conn.getresponse().read()
            except OSError:
                time.sleep(0.05)
                continue
            finally:
                conn.close()
            if self.process.poll() is None:
                return
        raise RuntimeError(
            f"moto_server did not answer within {timeout:.0f} s:\n{self._output()}"
        )

    def _output(self) -> str:
        self._log.seek(0)
        return self._log.read()[-4000:].decode("utf-8", "replace")

    def reset(self) -> None:
        """Wipe all of moto's state (users, roles, keys)."""
        conn = http.client.HTTPConnection(_LOCALHOST, self.port, timeout=5)
        try:
            conn.request("POST", "/moto-api/reset")
            conn.getresponse().read()
        finally:
            conn.close()

    def stop(self) -> None:
        """Terminate the server (idempotent)."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_moto(port: int | None = None) -> MotoServer:
    """Start ``moto_server`` on 127.0.0.1 (a free port unless given) and wait until it answers."""
    return MotoServer(port)


def make_iam_user(moto_url: str, user_name: str | None = None) -> tuple[str, str, str]:
    """Create an IAM user with an access key and a virtual MFA device in moto.

    Returns ``(access_key_id, secret_access_key, mfa_serial)``, the serial being
    ``arn:aws:iam::123456789012:mfa/<user_name>``. With no name given, the user is
    ``first.last``, or ``first.last-<hex>`` if that one is already taken. The
    TOTP secret that counts is the one :meth:`StsProxy.register_mfa_device`
    returns, not moto's seed.
    """
    iam: Any = boto3.client(
        "iam",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = user_name or "first.last"
    try:
        iam.create_user(UserName=name)
    except iam.exceptions.EntityAlreadyExistsException:
        if user_name is not None:
            raise
        name = f"first.last-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)[
        "VirtualMFADevice"
    ]
    serial = str(device["SerialNumber"])
    iam.enable_mfa_device(
        UserName=name,
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"]), serial


# --------------------------------------------------------------------------- proxy

FaultKind = Literal[
    "throttle",
    "500",
    "503",
    "garbage",
    "drop",
    "slow",
    "expired_token",
    "access_denied",
]
_FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))


class ProxyCall(NamedTuple):
    """One request seen by the proxy."""

    action: str  # "" if none could be found
    time: float  # time.time() on arrival
    host: str  # the Host header the client sent
    access_key_id: str  # from the SigV4 Authorization header, as sent (may be a canary); "" when unsigned
    user_agent: str = ""  # which client sent it, when several share the proxy
    duration_seconds: int | None = None  # the DurationSeconds parameter, when one was sent


@dataclass(frozen=True)
class IssuedCredential:
    """One set of credentials the proxy handed out, as the client saw them."""

    action: str  # "GetSessionToken" or "AssumeRole"
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    arn: str  # the AssumedRoleUser's ARN; "" for GetSessionToken
    duration_seconds: int | None  # DurationSeconds as the request sent it; None when it was left out
    signed_by: str  # "long-term", or the action that issued the credentials that signed the request

    @property
    def role_chained(self) -> bool:
        """Assumed with temporary credentials (AWS treats an MFA session's AssumeRole as role chaining too)."""
        return self.action == "AssumeRole" and self.signed_by != "long-term"


@dataclass
class _Fault:
    action: str  # an STS action name, or "*" for any
    kind: FaultKind
    remaining: int
    delay: float
    message: str | None


@dataclass
class _Device:
    totp: pyotp.TOTP
    access_key_id: str | None
    used: dict[str, float] = field(default_factory=dict)  # code -> time it was accepted


@dataclass
class _Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def error_xml(code: str, message: str, *, sender: bool = True) -> bytes:
    """An STS (query protocol) error body."""
    return (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}">'
        f"<Error><Type>{'Sender' if sender else 'Receiver'}</Type>"
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def _error_reply(
    status: int, code: str, message: str, *, sender: bool = True
) -> _Reply:
    body = error_xml(code, message, sender=sender)
    return _Reply(
        status,
        [("Content-Type", "text/xml"), ("x-amzn-RequestId", str(uuid.uuid4()))],
        body,
    )


_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")
_CANARY_FIELDS = ("AccessKeyId", "SecretAccessKey", "SessionToken")


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, proxy: StsProxy) -> None:
        self.proxy = proxy
        super().__init__((_LOCALHOST, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client went away: expected
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections give up after this

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        cast(_ProxyServer, self.server).proxy._track(self.connection, opened=True)

    def finish(self) -> None:
        cast(_ProxyServer, self.server).proxy._track(self.connection, opened=False)
        with contextlib.suppress(OSError):
            super().finish()

    def _handle(self) -> None:
        proxy = cast(_ProxyServer, self.server).proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = proxy._serve(self.command, self.path, list(self.headers.items()), body)
        if reply is None:  # "drop": close without a word
            self.close_connection = True
            return
        try:
            self.send_response_only(reply.status)
            for name, value in reply.headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # client gave up (e.g. after a "slow" fault)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class StsProxy:
    """HTTP proxy on 127.0.0.1 in front of moto that checks MFA codes and injects faults.

    It starts in the constructor; ``.url`` is its address. Stop it with
    :meth:`stop` or use it as a context manager.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        valid_window: int = 1,
        upstream_timeout: float = 30.0,
    ) -> None:
        split = urlsplit(upstream_url)
        if split.hostname is None or split.port is None:
            raise ValueError(f"upstream URL needs a host and port: {upstream_url!r}")
        self._upstream = (split.hostname, split.port)
        self.valid_window = valid_window
        self.upstream_timeout = upstream_timeout
        self.canary: str | None = None
        #: When set, AssumeRole answers expire this many seconds from now (moto always gives the full duration),
        #: so a test can watch several rotations in seconds.
        self.role_lifetime: float | None = None
        #: Likewise for GetSessionToken: MFA sessions that expire this many seconds from now.
        self.session_lifetime: float | None = None
        #: AWS's clock minus the machine's, in seconds: every ``Date`` header and every ``Expiration`` the proxy
        #: passes on is moved by it, as if the laptop's clock were that far off AWS's.
        self.clock_offset: float = 0.0
        #: When set, a request with no SigV4 signature is refused with 403 AccessDenied, as real AWS refuses it
        #: (moto serves anonymous requests, which hides clients that quietly fall back to unsigned ones).
        self.refuse_unsigned = False
        self._lock = threading.Lock()
        self._calls: list[ProxyCall] = []
        self._faults: list[_Fault] = []
        self._devices: dict[str, _Device] = {}
        self._canary_to_real: dict[str, str] = {}
        self._canary_counter = itertools.count(1)
        self._issued: list[IssuedCredential] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server = _ProxyServer(self)
        self.port = int(self._server.server_address[1])
        self.url = f"http://{_LOCALHOST}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"StsProxy:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # ---- public API

    def register_mfa_device(
        self,
        serial: str,
        *,
        secret: str | None = None,
        access_key_id: str | None = None,
    ) -> pyotp.TOTP:
        """Register a virtual MFA device and return its TOTP generator.

        With ``access_key_id``, the device belongs to that key. GetSessionToken
        calls signed with the key must then send this serial and a valid code,
        and any other key that sends this serial gets :data:`MSG_UNKNOWN_SERIAL`.
        """
        totp = pyotp.TOTP(secret or pyotp.random_base32())
        with self._lock:
            self._devices[serial] = _Device(totp, access_key_id)
        return totp

    def unused_code(self, serial: str) -> str:
        """A code the proxy would accept now and has not yet accepted for ``serial``.

        Lets a test get a second session without waiting 30 s. It tries the
        current step first, then the next and previous ones.
        """
        with self._lock:
            device = self._devices[serial]
            now = time.time()
            offsets = sorted(
                range(-self.valid_window, self.valid_window + 1),
                key=lambda o: (o < 0, abs(o)),
            )
            for offset in offsets:
                code = device.totp.at(now, counter_offset=offset)
                if code not in device.used:
                    return code
        raise RuntimeError(f"every code currently valid for {serial} has been used")

    def fail_next(
        self,
        action: str,
        kind: FaultKind,
        count: int = 1,
        *,
        delay: float = 3.0,
        message: str | None = None,
    ) -> None:
        """Make the next ``count`` requests for ``action`` (``"*"`` = any) fail.

        Kinds: ``throttle`` (400 Throttling), ``500`` (InternalFailure), ``503``
        (ServiceUnavailable), ``garbage`` (200 with a body that is not XML),
        ``drop`` (close the connection without answering), ``slow`` (wait
        ``delay`` seconds, then forward as usual), ``expired_token`` (403
        ExpiredToken), ``access_denied`` (403 AccessDenied; ``message`` replaces
        the default text). Faults queue up in the order they were added.
        """
        if kind not in _FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {kind!r}; expected one of {sorted(_FAULT_KINDS)}"
            )
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._faults.append(_Fault(action, kind, count, delay, message))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def calls(self) -> list[ProxyCall]:
        """A snapshot of every request seen so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def count(self, action: str) -> int:
        """How many requests for ``action`` the proxy has seen (faulted ones too)."""
        with self._lock:
            return sum(1 for call in self._calls if call.action == action)

    def durations(self, action: str) -> list[int | None]:
        """The ``DurationSeconds`` of every request for ``action``, oldest first (None where none was sent)."""
        with self._lock:
            return [call.duration_seconds for call in self._calls if call.action == action]

    @property
    def issued(self) -> list[IssuedCredential]:
        """Every credential handed out so far, oldest first."""
        with self._lock:
            return list(self._issued)

    def find_issued(
        self, access_key_id: str, secret_access_key: str | None = None, session_token: str | None = None
    ) -> IssuedCredential | None:
        """The latest credential issued with this key id (and secret and token, when given); None if none was.

        Several may share a key id: moto gives every GetSessionToken the same one.
        """
        with self._lock:
            for issued in reversed(self._issued):
                if (
                    issued.access_key_id == access_key_id
                    and secret_access_key in (None, issued.secret_access_key)
                    and session_token in (None, issued.session_token)
                ):
                    return issued
        return None

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def stop(self) -> None:
        """Stop serving and cut open connections (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- request handling (runs on the server's worker threads)

    def _track(self, conn: socket.socket, *, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _serve(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Reply | None:
        params = _request_params(path, headers, body)
        action = (
            params.get("Action") or _header(headers, "X-Amz-Target").rpartition(".")[2]
        )
        match = _CREDENTIAL_RE.search(_header(headers, "Authorization"))
        sent_key = (
            match.group(1)
            if match
            else params.get("X-Amz-Credential", "").split("/")[0]
        )
        sent_token = _header(headers, "X-Amz-Security-Token")
        with self._lock:
            duration = params.get("DurationSeconds", "")
            self._calls.append(
                ProxyCall(action, time.time(), _header(headers, "Host"), sent_key, _header(headers, "User-Agent"),
                          int(duration) if duration.isdigit() else None)
            )
            fault = self._take_fault(action)
            headers = [(name, self._uncanary(name, value)) for name, value in headers]
            access_key_id = self._canary_to_real.get(sent_key, sent_key)

        if self.refuse_unsigned and not sent_key:
            return _error_reply(403, "AccessDenied", "Access Denied")
        if fault is not None:
            if fault.kind != "slow":
                return _fault_reply(fault, action)
            if self._stopping.wait(fault.delay):
                return None

        if action in _MFA_ACTIONS:
            problem = self._check_mfa(action, params, access_key_id)
            if problem is not None:
                return _error_reply(403, "AccessDenied", problem)

        reply = self._forward(method, path, headers, body)
        if self.canary and action in _MFA_ACTIONS and reply.status == 200:
            reply.body = self._apply_canary(reply.body, self.canary)
        lifetime = {"AssumeRole": self.role_lifetime, "GetSessionToken": self.session_lifetime}.get(action)
        if lifetime is not None and reply.status == 200:
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lifetime))
            reply.body = re.sub(rb"<Expiration>[^<]*</Expiration>", b"<Expiration>" + expires.encode()
                                + b"</Expiration>", reply.body)
        if self.clock_offset:
            _shift_clock(reply, self.clock_offset)
        if action in _MFA_ACTIONS and reply.status == 200:
            self._record_issued(action, params, sent_key, sent_token, reply.body)
        return reply

    def _record_issued(
        self, action: str, params: dict[str, str], sent_key: str, sent_token: str, body: bytes
    ) -> None:
        text = body.decode("utf-8", "replace")

        def tag(name: str) -> str:
            found = re.search(f"<{name}>(.*?)</{name}>", text, re.DOTALL)
            return found.group(1).strip() if found else ""

        signer = self.find_issued(sent_key, session_token=sent_token) if sent_token else None
        duration = params.get("DurationSeconds")
        issued = IssuedCredential(
            action=action,
            access_key_id=tag("AccessKeyId"),
            secret_access_key=tag("SecretAccessKey"),
            session_token=tag("SessionToken"),
            expiration=datetime.fromisoformat(tag("Expiration").replace("Z", "+00:00")),
            arn=tag("Arn"),
            duration_seconds=int(duration) if duration else None,
            signed_by=signer.action if signer is not None else "long-term",
        )
        with self._lock:
            self._issued.append(issued)

    def _take_fault(self, action: str) -> _Fault | None:
        for fault in self._faults:
            if fault.action in (action, "*"):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _check_mfa(
        self, action: str, params: dict[str, str], access_key_id: str
    ) -> str | None:
        """Return the AccessDenied message, or None if the request may go on."""
        serial, code = params.get("SerialNumber"), params.get("TokenCode")
        with self._lock:
            if not serial and not code:
                owns_device = any(
                    d.access_key_id == access_key_id for d in self._devices.values()
                )
                if action == "GetSessionToken" and access_key_id and owns_device:
                    return MSG_MISSING_MFA
                return None
            if not serial or not code:
                return MSG_MISSING_MFA
            device = self._devices.get(serial)
            if device is None or (
                action == "GetSessionToken"
                and device.access_key_id is not None
                and device.access_key_id != access_key_id
            ):
                return MSG_UNKNOWN_SERIAL
            now = time.time()
            ttl = device.totp.interval * (2 * self.valid_window + 2)
            device.used = {c: t for c, t in device.used.items() if now - t < ttl}
            if code in device.used:
                return MSG_REUSED_CODE
            if not device.totp.verify(
                code, for_time=now, valid_window=self.valid_window
            ):
                return MSG_INVALID_CODE
            device.used[code] = now
            return None

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Reply:
        conn = http.client.HTTPConnection(
            *self._upstream, timeout=self.upstream_timeout
        )
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "host":
                    conn.putheader(name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            return _Reply(response.status, response.getheaders(), response.read())
        except OSError as exc:
            return _Reply(
                502,
                [("Content-Type", "text/plain")],
                f"proxy: upstream failed: {exc}".encode(),
            )
        finally:
            conn.close()

    def _uncanary(self, name: str, value: str) -> str:
        if not self._canary_to_real:
            return value
        if name.lower() == "authorization":
            return _CREDENTIAL_RE.sub(
                lambda m: (
                    f"Credential={self._canary_to_real.get(m.group(1), m.group(1))}/"
                ),
                value,
            )
        if name.lower() == "x-amz-security-token":
            return self._canary_to_real.get(value, value)
        return value

    def _apply_canary(self, body: bytes, marker: str) -> bytes:
        text = body.decode("utf-8")
        with self._lock:
            n = next(self._canary_counter)
            key_marker = re.sub(r"[^A-Z0-9]", "", marker.upper())
            fakes = {
                "AccessKeyId": f"ASIA{key_marker}{n:08d}",
                "SecretAccessKey": f"{marker}-secret-{n}-{uuid.uuid4().hex}",
                "SessionToken": f"{marker}-token-{n}-{uuid.uuid4().hex}",
            }
            for tag in _CANARY_FIELDS:
                found = re.search(f"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
                if found is None:
                    continue
                self._canary_to_real[fakes[tag]] = found.group(1).strip()
                text = text[: found.start(1)] + fakes[tag] + text[found.end(1) :]
        return text.encode("utf-8")


def _shift_clock(reply: _Reply, offset: float) -> None:
    """Move the reply's ``Date`` and every ``Expiration`` by ``offset`` seconds: AWS's clock, seen from a laptop
    whose clock is off."""
    from datetime import datetime, timedelta
    from email.utils import formatdate

    reply.headers = [(name, value) for name, value in reply.headers if name.lower() != "date"]
    reply.headers.append(("Date", formatdate(time.time() + offset, usegmt=True)))

    def shift(match: re.Match[bytes]) -> bytes:
        moment = datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00")) + timedelta(seconds=offset)
        return b"<Expiration>" + moment.strftime("%Y-%m-%dT%H:%M:%SZ").encode() + b"</Expiration>"

    reply.body = re.sub(rb"<Expiration>([^<]*)</Expiration>", shift, reply.body)


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in headers if key.lower() == name.lower()), "")


def _request_params(
    path: str, headers: list[tuple[str, str]], body: bytes
) -> dict[str, str]:
    """Query-string parameters, overridden by a form-encoded body's."""
    params = {
        k: v[-1]
        for k, v in parse_qs(urlsplit(path).query, keep_blank_values=True).items()
    }
    if body and "x-www-form-urlencoded" in _header(headers, "Content-Type"):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        params.update({k: v[-1] for k, v in form.items()})
    return params


def _fault_reply(fault: _Fault, action: str) -> _Reply | None:
    if fault.kind == "drop":
        return None
    if fault.kind == "throttle":
        return _error_reply(400, "Throttling", fault.message or "Rate exceeded")
    if fault.kind == "500":
        return _error_reply(
            500,
            "InternalFailure",
            fault.message
            or "The request processing has failed because of an unknown error.",
            sender=False,
        )
    if fault.kind == "503":
        return _error_reply(
            503,
            "ServiceUnavailable",
            fault.message
            or "The request has failed due to a temporary failure of the server.",
            sender=False,
        )
    if fault.kind == "expired_token":
        return _error_reply(
            403,
            "ExpiredToken",
            fault.message or "The security token included in the request is expired",
        )
    if fault.kind == "access_denied":
        return _error_reply(
            403,
            "AccessDenied",
            fault.message or f"User is not authorized to perform: sts:{action}",
        )
    # "garbage": a 200 whose body no XML parser will accept
    return _Reply(200, [("Content-Type", "text/xml")], b"\x00\xffgarbage <<< not XML")
