"""A flood of 10,000 requests leaves a bounded, rotated audit record with no secret in it.

The flooding client carries secrets in its own command line, as careless scripts do (the endpoint's token, the MFA
code, a secret key in ``NAME=value`` form), so the record's redaction is tested against what a real process shows
in /proc, not against a string made up for a unit test. Every served key, secret and session token, every
environment's token and the MFA code are then looked for in every file the record has, and in the daemon's log.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from tests.support.world import World

# Sends REQUESTS GETs: most on a few keep-alive connections, some on a new connection each; prints every distinct
# answer body it got (the served credentials) as JSON lines.
FLOOD = """
import http.client, json, sys
port, name, token, requests = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
bodies, statuses = set(), {}
def get(connection):
    headers = {"Authorization": token, "User-Agent": "flood/1 " + token}
    connection.request("GET", f"/v1/credentials/{name}", headers=headers)
    answer = connection.getresponse()
    body = answer.read()
    statuses[answer.status] = statuses.get(answer.status, 0) + 1
    bodies.add(body)
fresh = requests // 20
for _ in range(fresh):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    get(connection)
    connection.close()
keep = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(4)]
for index in range(requests - fresh):
    get(keep[index % 4])
print(json.dumps(statuses))
for body in bodies:
    print(body.decode())
"""
MAX_SIZE = 64 * 1024
FILES = 3


def test_ten_thousand_requests_leave_a_bounded_rotated_record_without_secrets(world: World, tmp_path: Path) -> None:
    world.config_file.write_text(world.config_file.read_text()
                                 + f'\n[audit]\nmax_size = "{MAX_SIZE // 1024}KB"\nfiles = {FILES}\n')
    world.add_key()
    world.start()
    code = world.code()
    unlocked = world.cli("unlock", "production", "--code", code)
    assert unlocked.returncode == 0, unlocked.stderr
    token = world.token("production")
    script = tmp_path / "flood.py"
    script.write_text(FLOOD)
    secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    flood = subprocess.run(
        # the secrets in argv are the point: the record must not copy them from /proc/<pid>/cmdline
        [sys.executable, str(script), str(world.port), "production", token, "10000", "--code", code,
         f"AWS_SECRET_ACCESS_KEY={secret_key}"],
        capture_output=True, text=True, timeout=300, check=False)
    assert flood.returncode == 0, flood.stderr
    statuses, *bodies = flood.stdout.splitlines()
    assert json.loads(statuses) == {"200": 10000}
    served = [json.loads(body) for body in bodies]
    assert world.cli("stop").returncode == 0  # the daemon writes what it has queued before it exits

    directory = world.home / ".local" / "state" / "govuk-imds"
    files = sorted(directory.iterdir())
    assert [file.name for file in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        assert file.stat().st_size <= MAX_SIZE
    records = [json.loads(line) for file in files for line in file.read_text().splitlines()]
    assert 0 < len(records) < 10000  # the oldest were rotated away
    assert all(record["result"] == "served" for record in records)
    newest = max(records, key=lambda record: str(record["time"]))
    assert newest["caller"]["argv"][1] == str(script)

    # what the client's command line became in the record
    argv = newest["caller"]["argv"]
    assert argv[2:6] == [str(world.port), "production", "[redacted]", "10000"]
    assert argv[6:] == ["--code", "[redacted]", "AWS_SECRET_ACCESS_KEY=[redacted]"]
    assert newest["user_agent"] == "flood/1 [redacted]"

    secrets = {token, code, secret_key, *(world.token(name) for name in ("staging", "integration"))}
    for document in served:
        secrets |= {document["AccessKeyId"], document["SecretAccessKey"], document["Token"]}
    written = "".join(file.read_text() for file in files) + world.log()
    leaked = [secret for secret in secrets if secret in written]
    assert leaked == []
    assert token[:16] not in written and token[-16:] not in written
