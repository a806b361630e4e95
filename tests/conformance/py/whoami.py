"""One sts:GetCallerIdentity through boto3's default credential chain; prints one JSON line, exits 1 on failure.

    python whoami.py http://127.0.0.1:PORT [CALLS]

With CALLS > 1, the same client calls that many times (to see whether botocore refreshes in between).
"""

import json
import sys

from sdk import Client

client = Client(sys.argv[1])
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 1):
    result = client.whoami()
    print(json.dumps(result))
sys.exit(0 if result["ok"] else 1)
