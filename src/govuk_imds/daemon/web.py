"""The credential endpoint: one aiohttp route, ``GET /v1/credentials/{environment}``, on 127.0.0.1 only.

Every request is checked before anything else, against the raw bytes the client sent: exactly one ``Host`` equal to
our bound address, an origin-form target, and none of the headers that only browsers and proxies send. Then the
environment's token is compared in constant time. Answers follow ``ecs_protocol``: 200 with the credentials, or a
JSON ``{"code", "message"}`` error that tells a person what to type next. Refused requests are counted and logged
as one summary line per minute, so a flood cannot fill the log.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from ..core import ecs_protocol
from ..core.shapes import ENVIRONMENT_NAME
from ..errors import CredentialsUnavailable, EnvironmentLocked, UnknownEnvironment
from .refusals import Refusals
from .service import Service
from .tokens import TokenStore

log = logging.getLogger(__name__)

ROUTE = re.compile(r"/v1/credentials/(" + ENVIRONMENT_NAME.pattern + ")")
# Header families sent by browsers and proxies, never by an AWS SDK: their presence means the request is not from a
# local tool. Families, not members, so that a header added to a family tomorrow is refused too: every ``Sec-``
# header is one only a browser may set (Sec-Fetch-*, Sec-CH-*, Sec-Purpose, ...), every ``X-Forwarded-*`` one comes
# from a proxy (For, Host, Proto, Port, Server, Prefix, ...).
BROWSER_AND_PROXY_PREFIXES = (b"sec-", b"x-forwarded")
BROWSER_AND_PROXY_HEADERS = frozenset({b"origin", b"referer", b"forwarded", b"via"})


def from_browser_or_proxy(lowered_name: bytes) -> bool:
    """A header (its name in lower case) that only browsers and proxies send."""
    return lowered_name in BROWSER_AND_PROXY_HEADERS or lowered_name.startswith(BROWSER_AND_PROXY_PREFIXES)


def endpoint_hosts(port: int) -> frozenset[bytes]:
    """The raw ``Host`` values that name this endpoint: the one rule against DNS rebinding, kept in one place."""
    return frozenset({f"127.0.0.1:{port}".encode()})


def _json(status: int, body: bytes, extra: dict[str, str] | None = None) -> web.Response:
    headers = {"Content-Type": ecs_protocol.CONTENT_TYPE, "Cache-Control": "no-store"}
    if extra:
        headers.update(extra)
    return web.Response(status=status, body=body, headers=headers)


def create_app(
    service: Service,
    tokens: TokenStore,
    port: int,
    profile_prefix: str,
    *,
    refusals: Refusals | None = None,
    in_flight: set[object] | None = None,
) -> web.Application:
    """The endpoint. ``refusals`` is shared with the acceptor; ``in_flight`` holds the connections whose request is
    being answered, which the acceptor never sheds."""
    hosts = endpoint_hosts(port)
    refusals = refusals if refusals is not None else Refusals()
    answering = in_flight if in_flight is not None else set()

    def refuse(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> web.Response:
        refusals.add(code)
        # The connection stays open: closing it after a refusal was measured to turn a keep-alive flood of bad
        # tokens into a reconnect storm that costs valid clients more (see docs/benchmarks.md, section 6).
        return _json(status, ecs_protocol.error_body(code, message), extra)

    async def handle(request: web.Request) -> web.StreamResponse:
        """The safety net, inline rather than as a middleware (a middleware costs ~5 µs on every request):
        whatever goes wrong, the answer is JSON and says nothing about the insides."""
        connection = request.protocol
        answering.add(connection)
        try:
            return await answer(request)
        except Exception:
            log.exception("unexpected error while answering a request")
            return _json(500, ecs_protocol.error_body("InternalError", "internal error; see the daemon's log"))
        finally:
            answering.discard(connection)

    async def answer(request: web.Request) -> web.StreamResponse:
        if not request.raw_path.startswith("/"):
            return refuse(400, "BadRequest", "absolute-form request targets are not accepted")
        host_headers = 0
        authorizations: list[bytes] = []
        for header, value in request.raw_headers:
            lowered = header.lower()
            if lowered == b"host":
                host_headers += 1
                if value not in hosts:
                    return refuse(403, "Forbidden", "the Host header does not name this endpoint")
            elif lowered == b"authorization":
                authorizations.append(value)
            elif from_browser_or_proxy(lowered):
                return refuse(403, "Forbidden", "requests from browsers and proxies are refused")
        # aiohttp's parser refuses a second Host, and a missing one in HTTP/1.1; HTTP/1.0 without Host reaches here.
        if host_headers != 1:
            return refuse(400, "BadRequest", "exactly one Host header is required")
        match = ROUTE.fullmatch(request.raw_path)
        if match is None:
            return refuse(404, "NotFound", "the only route is GET /v1/credentials/<environment>")
        if request.method != "GET":
            return refuse(405, "MethodNotAllowed", "only GET is allowed", {"Allow": "GET"})
        name = match.group(1)
        if not service.knows(name):
            # Without a valid token the daemon does not list what it knows; the CLI does.
            return refuse(
                404,
                "UnknownEnvironment",
                f"unknown environment {name!r}; define it as [profile "
                f"{profile_prefix}{name}] in your AWS config, or see `govuk-imds status`",
            )
        if not authorizations:
            return refuse(
                401,
                "Unauthorized",
                "no Authorization header; point AWS_CONTAINER_AUTHORIZATION_"
                f"TOKEN_FILE at the token, see `govuk-imds env {name}`",
            )
        if len(authorizations) != 1 or not tokens.matches(name, authorizations[0]):
            return refuse(403, "Forbidden", f'wrong token for {name!r}; run `eval "$(govuk-imds env {name})"` again')
        try:
            served = await service.serve(name)
        except EnvironmentLocked as exc:
            return _json(423, ecs_protocol.error_body("EnvironmentLocked", str(exc)))
        except UnknownEnvironment as exc:
            return _json(404, ecs_protocol.error_body("UnknownEnvironment", str(exc)))
        except CredentialsUnavailable as exc:
            return _json(503, ecs_protocol.error_body("CredentialsUnavailable", str(exc)), {"Retry-After": "1"})
        return _json(200, served.body)

    async def flush_refusals(app: web.Application) -> None:
        refusals.flush()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_cleanup.append(flush_refusals)
    return app
