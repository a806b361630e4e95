"""Reading botocore's ``ClientError``: which AWS error it is, whether retrying can help, one line for a person.

Shared by the STS and IAM adapters so that both classify failures the same way.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

#: Error codes that mean "try again later": AWS throttled us or had a passing fault.
THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "IDPCommunicationError",
        "ServiceUnavailable",
        "ServiceFailure",
        "InternalFailure",
    }
)
#: Error codes that mean the access key itself is not (or no longer) valid.
KEY_PROBLEMS = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_transient(exc: ClientError) -> bool:
    """A 5xx, no status at all, or throttling: worth retrying with backoff."""
    status = http_status(exc)
    return status >= 500 or status == 0 or error_code(exc) in THROTTLING


def describe(exc: ClientError) -> str:
    """``AccessDenied, HTTP 403: <AWS's message>`` (AWS's messages name no secret)."""
    message = error_message(exc)[:200]
    return f"{error_code(exc) or 'error'}, HTTP {http_status(exc) or '?'}" + (f": {message}" if message else "")
