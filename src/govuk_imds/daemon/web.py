"""The credential endpoint: one aiohttp route, ``GET /v1/credentials/{environment}``, on 127.0.0.1 only.

Every request is checked before anything else, against the raw bytes the client sent: exactly one ``Host`` naming
our bound address (``host_names_us``), an origin-form target, and none of the header families that only browsers
and proxies send. Then the environment's token is compared in constant time. Answers follow ``ecs_protocol``: 200
with the credentials, or a JSON ``{"code", "message"}`` error that tells a person what to type next. Refused
requests are counted and logged as one summary line per minute (``refusals``), so a flood cannot fill the log.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from ..core import ecs_protocol
from ..core.shapes import ENVIRONMENT_NAME
from ..errors import CredentialsUnavailable, EnvironmentLocked, UnknownEnvironment
from .guardrails import Guardrails
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
#: How much of a refused client's User-Agent `status` shows.
USER_AGENT_KEPT = 120


def host_names_us(values: list[bytes], our_host: bytes) -> tuple[int, str] | None:
    """The DNS-rebinding defence: ``None`` when the request's Host headers name this endpoint, else the refusal.

    Accepted: exactly one Host, either ``our_host`` (``127.0.0.1:<port>``) or a bare ``127.0.0.1``: the AWS Common
    Runtime (awscrt, Mountpoint for S3, the CRT-based SDKs) sends the address without the port. A browser never
    does for our port: it writes Host from the URL, with the port unless it is the scheme's default (80), and no
    script may set Host; in a rebinding attack Host carries the attacker's name. So the bare address admits SDKs
    and no web page (tests/e2e/test_security.py shows it with a real browser). ``localhost`` stays refused: we bind
    and hand out 127.0.0.1 only.
    """
    if len(values) != 1:
        return 400, "exactly one Host header is required"
    host = values[0]
    if host not in (our_host, b"127.0.0.1"):
        return 403, "the Host header does not name this endpoint"
    return None


def client_name(user_agent: str | None) -> str | None:
    """A refused client's User-Agent as `status` may print it: printable ASCII only, cut short."""
    if not user_agent:
        return None
    printable = "".join(character if " " <= character <= "~" else "?" for character in user_agent)
    return printable[:USER_AGENT_KEPT]


def from_browser_or_proxy(lowered_name: bytes) -> bool:
    """A header (its name in lower case) that only browsers and proxies send."""
    return lowered_name in BROWSER_AND_PROXY_HEADERS or lowered_name.startswith(BROWSER_AND_PROXY_PREFIXES)


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
    guardrails: Guardrails | None = None,
) -> web.Application:
    """The endpoint. ``refusals`` is shared with the acceptor; ``in_flight`` holds the connections whose request is
    being answered, which the acceptor never sheds; ``guardrails`` finds who calls, applies ``deny_callers`` and
    records each answer to a caller holding the token."""
    our_host = f"127.0.0.1:{port}".encode()
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
        hosts: list[bytes] = []
        authorizations: list[bytes] = []
        for header, value in request.raw_headers:
            lowered = header.lower()
            if lowered == b"host":
                hosts.append(value)
            elif lowered == b"authorization":
                authorizations.append(value)
            elif from_browser_or_proxy(lowered):
                return refuse(403, "Forbidden", "requests from browsers and proxies are refused")
        wrong_host = host_names_us(hosts, our_host)
        if wrong_host is not None:
            status, message = wrong_host
            return refuse(status, "BadRequest" if status == 400 else "Forbidden", message)
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
            # Clients read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, AWS_CONTAINER_AUTHORIZATION_TOKEN, or only one of
            # the two (README, "Clients"): `env` sets both, so the fix is the same for every client.
            return refuse(
                401,
                "Unauthorized",
                "no Authorization header: this client found neither AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE nor "
                f'AWS_CONTAINER_AUTHORIZATION_TOKEN; run `eval "$(govuk-imds env {name})"` (it sets both) or '
                f"`govuk-imds exec {name} -- ...`; `govuk-imds doctor {name}` checks this shell",
            )
        if len(authorizations) != 1 or not tokens.matches(name, authorizations[0]):
            # A token changes only when the daemon starts without its port held (or on `lock --new-tokens`); the file
            # is rewritten then, so a refused token is usually an old copy in AWS_CONTAINER_AUTHORIZATION_TOKEN.
            return refuse(
                403,
                "Forbidden",
                f"wrong token for {name!r}: this client sent an old token (from AWS_CONTAINER_AUTHORIZATION_TOKEN or "
                f'its _FILE); run `eval "$(govuk-imds env {name})"` again; `govuk-imds doctor {name}` checks this '
                "shell",
            )
        if guardrails is None:
            return (await serve(request, name))[0]
        # Who is calling (cached per connection), whether deny_callers refuses them, and the audit record.
        visit = await guardrails.visit(request.transport, name, request.headers.get("User-Agent"))
        reason: str | None = visit.refusal
        if reason is not None:
            response = refuse(403, "CallerRefused", reason)
        else:
            response, reason = await serve(request, name)
        guardrails.finish(visit, response.status, reason)
        return response

    async def serve(request: web.Request, name: str) -> tuple[web.Response, str | None]:
        """The answer for a caller holding the right token, and an error answer's message."""
        try:
            served = await service.serve(name)
        except EnvironmentLocked as exc:
            service.refused_while_locked(name, client_name(request.headers.get("User-Agent")))
            return _json(423, ecs_protocol.error_body("EnvironmentLocked", str(exc))), str(exc)
        except UnknownEnvironment as exc:
            return _json(404, ecs_protocol.error_body("UnknownEnvironment", str(exc))), str(exc)
        except CredentialsUnavailable as exc:
            return (_json(503, ecs_protocol.error_body("CredentialsUnavailable", str(exc)), {"Retry-After": "1"}),
                    str(exc))
        return _json(200, served.body), None

    async def flush_refusals(app: web.Application) -> None:
        refusals.flush()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_cleanup.append(flush_refusals)
    return app
