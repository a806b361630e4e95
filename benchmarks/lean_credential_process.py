"""A reference for section 2: the least a ``credential_process`` helper can do, to show what a lean
``govuk-imds credential-process`` could cost. Standard library only (``socket`` and ``json``: ``http.client`` alone
imports ``ssl`` and ``email`` and costs more than the rest), no argparse, no AWS config parsing: the port comes from
the daemon's state file, the token from its token file; one GET; the Version 1 JSON on stdout.

    credential_process = /path/to/python /path/to/benchmarks/lean_credential_process.py production

Not a product: it skips the checks and messages of the real command (unknown environment, daemon not running).
"""

import json
import os
import socket
import sys


def main() -> int:
    name = sys.argv[1].removeprefix("govuk-")
    runtime = os.environ.get("GOVUK_IMDS_RUNTIME_DIR") or os.path.join(os.environ["XDG_RUNTIME_DIR"], "govuk-imds")
    with open(os.path.join(runtime, "state.json"), "rb") as state:
        port = json.load(state)["port"]
    with open(os.path.join(runtime, "tokens", name), "rb") as token_file:
        token = token_file.read().decode("ascii")
    request = (f"GET /v1/credentials/{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {token}\r\n"
               "Connection: close\r\n\r\n").encode("ascii")
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    document = json.loads(body)
    if status != 200:
        print(document.get("message", status), file=sys.stderr)
        return 1
    json.dump({"Version": 1, "AccessKeyId": document["AccessKeyId"], "SecretAccessKey": document["SecretAccessKey"],
               "SessionToken": document["Token"], "Expiration": document["Expiration"]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
