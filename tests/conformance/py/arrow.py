"""S3 ListBuckets through pyarrow's ``S3FileSystem`` (the AWS SDK for C++), whose default chain takes its
credentials from the container endpoint; prints one JSON line, exits 1 on failure.

    python arrow.py http://127.0.0.1:PORT REGION

The SDK fetches credentials when the file system is made, and when that fails it goes on with unsigned requests
without a word: the only sign is the S3 error (or, against a server that allows anonymous access, none).
"""

import json
import sys
import time

import pyarrow.fs as pafs

started = time.monotonic()
try:
    filesystem = pafs.S3FileSystem(endpoint_override=sys.argv[1], scheme="http", region=sys.argv[2])
    buckets = [info.path for info in filesystem.get_file_info(pafs.FileSelector("/", recursive=False))]
except OSError as error:
    result: dict[str, object] = {"ok": False, "type": type(error).__name__, "message": str(error)}
else:
    result = {"ok": True, "buckets": buckets}
print(json.dumps({**result, "elapsed": time.monotonic() - started}))
sys.exit(0 if result["ok"] else 1)
