"""A long-running boto3 program: one client kept for the whole run (botocore caches its credentials until they come
within 15 minutes of expiry), next to a client from a new session each round (which fetches from the endpoint
every time). Reads one line per round from stdin, answers one JSON line per round.

    python long_lived.py http://127.0.0.1:PORT
"""

import json
import sys

from sdk import Client

endpoint = sys.argv[1]
kept = Client(endpoint)
for _line in sys.stdin:
    print(json.dumps({"kept": kept.whoami(), "fresh": Client(endpoint).whoami()}), flush=True)
