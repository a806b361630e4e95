"""S3 ListObjectsV2 through obstore (Rust's ``object_store``), which takes its credentials from the container
endpoint only when both the full URI and the token file are set; prints one JSON line, exits 1 on failure.

    python objects.py http://127.0.0.1:PORT REGION BUCKET
"""

import json
import sys
import time

import obstore
from obstore.store import S3Store

started = time.monotonic()
store = S3Store(sys.argv[3], endpoint=sys.argv[1], region=sys.argv[2], client_options={"allow_http": True})
try:
    paths = [meta["path"] for meta in obstore.list(store).collect()]
except Exception as error:
    result: dict[str, object] = {"ok": False, "type": type(error).__name__, "message": str(error)}
else:
    result = {"ok": True, "paths": paths}
print(json.dumps({**result, "elapsed": time.monotonic() - started}))
sys.exit(0 if result["ok"] else 1)
