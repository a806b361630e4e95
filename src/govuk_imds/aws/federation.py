"""AWS's federation endpoint: a sign-in token for role credentials, and the browser requests that spend it.

AWS documents the endpoint in the IAM User Guide ("Enable custom identity broker access to the AWS console"):
``Action=getSigninToken`` turns temporary credentials into a token valid for 15 minutes, and ``Action=login`` with
``Issuer``, ``Destination`` and the token signs a browser in. No ``SessionDuration`` is ever sent: AWS refuses it
for role credentials assumed with session credentials (the daemon's), and without it the console session lasts as
long as the credentials do. Signing out first is AWS's ``/oauth?Action=logout&redirect_uri=<login URL>``, which is
not documented but is what Leapp and others rely on, on the us-east-1 host.

Standard library only (no boto3): ``console`` stays quick. The request carries role credentials and its answer a
bearer token, so neither is ever logged, no proxy from the shell is used, and a redirect is refused rather than
followed.
"""

from __future__ import annotations

import html
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from ..core.credentials import RoleCredentials
from ..errors import SigninRefused

#: What the console links to when its session ends. AWS expects the URL of a sign-in page; we have none, so the
#: label says which tool signed the browser in.
ISSUER = "govuk-imds"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_.~+/=-]{16,8192}")
_TAG = re.compile(r"<[^>]*>")
_REASON_LIMIT = 200


@dataclass(frozen=True)
class BrowserRequest:
    """A request for the browser to make: a form it submits itself, or the same request as one GET URL.

    Its fields hold the sign-in token, so they stay out of ``repr``.
    """

    method: Literal["GET", "POST"]
    action: str
    fields: tuple[tuple[str, str], ...] = field(repr=False)

    @property
    def url(self) -> str:
        """The request as one URL (AWS accepts every step as a GET): what ``--print`` writes."""
        return f"{self.action}?{urlencode(self.fields)}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx then surfaces as an HTTPError: credentials never follow a redirect


class Federation:
    """The federation endpoint at ``base_url`` (``endpoints.signin_url``)."""

    def __init__(self, base_url: str, *, timeout: float = 10) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        # No ProxyHandler from the environment: like STS, sign-in traffic goes only where our config says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

    def signin_token(self, credentials: RoleCredentials) -> str:
        """``getSigninToken`` for role credentials, by POST (the credentials stay out of every URL and log)."""
        session = json.dumps(
            {
                "sessionId": credentials.access_key_id,
                "sessionKey": credentials.secret_access_key,
                "sessionToken": credentials.session_token,
            }
        )
        request = urllib.request.Request(  # noqa: S310 - https (http on loopback): endpoints.signin_url checks
            f"{self._base}/federation",
            data=urlencode({"Action": "getSigninToken", "Session": session}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                body = response.read(65536)
        except urllib.error.HTTPError as exc:
            reason = _reason(exc.read(65536), exc.reason, credentials)
            raise SigninRefused(f"AWS sign-in refused the role credentials (HTTP {exc.code}: {reason})") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SigninRefused(f"AWS sign-in at {self._base} could not be reached ({_cause(exc)}); try again") from exc
        try:
            token = json.loads(body)["SigninToken"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SigninRefused("AWS sign-in answered without a sign-in token; try again") from exc
        if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
            raise SigninRefused("AWS sign-in answered with a sign-in token of an unexpected shape; try again")
        return token

    def login(self, token: str, destination: str) -> BrowserRequest:
        """``Action=login`` as a form POST: the token stays out of the address bar, history and Referer."""
        return BrowserRequest(
            "POST",
            f"{self._base}/federation",
            (("Action", "login"), ("Issuer", ISSUER), ("Destination", destination), ("SigninToken", token)),
        )

    def logout_then(self, login: BrowserRequest) -> BrowserRequest:
        """Sign out of any console session first, then follow the login as a GET (the only form a redirect takes)."""
        return BrowserRequest("GET", f"{self._base}/oauth", (("Action", "logout"), ("redirect_uri", login.url)))


def _reason(body: bytes, fallback: str, credentials: RoleCredentials) -> str:
    """AWS's reason as one short line: a JSON message, else an HTML page's heading or text, never a secret."""
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
        if isinstance(document, dict):
            text = str(document.get("message") or document.get("Message") or document.get("error") or text)
    except ValueError:
        # AWS answers a refusal with an HTML error page ("HTTP Status 400 - Invalid credentials parameter").
        for tag in ("h1", "title"):
            found = re.search(rf"<{tag}[^>]*>(.*?)</{tag}>", text, re.DOTALL | re.IGNORECASE)
            if found:
                text = found.group(1)
                break
    line = " ".join(html.unescape(_TAG.sub(" ", text)).split())
    line = re.sub(r"^HTTP Status \d{3}\s*-\s*", "", line)
    for secret in (credentials.secret_access_key, credentials.session_token):
        line = line.replace(secret, "…")
    if len(line) > _REASON_LIMIT:
        line = line[: _REASON_LIMIT - 1] + "…"
    return line or str(fallback) or "no reason given"


def _cause(exc: OSError) -> str:
    """``[Errno 111] Connection refused``, ``timed out``...: why a connection failed (URLError wraps the reason)."""
    return str(getattr(exc, "reason", None) or exc) or type(exc).__name__
