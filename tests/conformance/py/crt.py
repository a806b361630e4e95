"""One sts:GetCallerIdentity signed by the AWS Common Runtime (awscrt), whose default chain takes its credentials
from the container endpoint; prints one JSON line, exits 1 on failure.

    python crt.py http://127.0.0.1:PORT REGION

The request is signed by the CRT (``aws_sign_request`` with the default chain as its provider) and sent with urllib,
so the network guard sees it. The CRT never calls back when the token file is missing, so every wait is bounded.
"""

import json
import re
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from awscrt.auth import (
    AwsCredentialsProvider,
    AwsSignatureType,
    AwsSigningAlgorithm,
    AwsSigningConfig,
    aws_sign_request,
)
from awscrt.exceptions import AwsCrtError
from awscrt.http import HttpHeaders, HttpRequest

WAIT_SECONDS = 15
USER_AGENT = "govuk-imds-conformance/awscrt"
QUERY = "/?Action=GetCallerIdentity&Version=2011-06-15"


def whoami(endpoint: str, region: str) -> dict[str, object]:
    provider = AwsCredentialsProvider.new_default_chain()
    unsigned = HttpRequest("GET", QUERY, HttpHeaders([("Host", urlsplit(endpoint).netloc), ("User-Agent", USER_AGENT)]))
    config = AwsSigningConfig(
        algorithm=AwsSigningAlgorithm.V4,
        signature_type=AwsSignatureType.HTTP_REQUEST_HEADERS,
        credentials_provider=provider,
        region=region,
        service="sts",
    )
    try:
        # The provider's own error first (signing would only say AWS_AUTH_SIGNING_NO_CREDENTIALS); the signature
        # then uses what the provider cached: these credentials.
        credentials = provider.get_credentials().result(timeout=WAIT_SECONDS)
        signed = aws_sign_request(unsigned, config).result(timeout=WAIT_SECONDS)
    except AwsCrtError as error:
        return {"ok": False, "type": "AwsCrtError", "name": error.name, "message": error.message}
    except TimeoutError:
        return {"ok": False, "type": "TimeoutError", "message": f"no credentials within {WAIT_SECONDS} s"}
    request = urllib.request.Request(endpoint + QUERY, headers=dict(signed.headers))
    try:
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as answer:
            body = answer.read().decode()
    except urllib.error.HTTPError as refused:
        return {"ok": False, "type": "HTTPError", "message": f"{refused.code}: {refused.read().decode()}"}
    arn = re.search(r"<Arn>([^<]+)</Arn>", body)
    return {"ok": True, "arn": arn.group(1) if arn else None, "access_key_id": credentials.access_key_id}


started = time.monotonic()
result = whoami(sys.argv[1], sys.argv[2])
print(json.dumps({**result, "elapsed": time.monotonic() - started}))
sys.exit(0 if result["ok"] else 1)
