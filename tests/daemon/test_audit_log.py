"""The audit record's file: private, append-only, rotated by size within a bound; a file that cannot be written is
reported, never fatal; reading gives every record, oldest file first."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from govuk_imds.core.callers import Caller, Process
from govuk_imds.daemon.audit import AuditLog, AuditTrail, audit_files, caller_json, read_records

CALLER = Caller(uid=1000, chain=(
    Process(4242, 4000, "aws", "/usr/bin/python3.11", ("/usr/bin/python3", "/usr/bin/aws", "s3", "ls"), "/srv"),
    Process(4000, 1, "bash", "/usr/bin/bash", ("-bash",), "/home/u"),
))


def trail(path: Path, max_size: int = 1024, files: int = 3) -> AuditTrail:
    audit = AuditTrail(AuditLog(path, max_size=max_size, files=files))
    audit.open()
    return audit


def record(audit: AuditTrail, number: int, caller: Caller | None = CALLER) -> None:
    audit.record(at=datetime(2026, 3, 2, 9, 0, number % 60, tzinfo=UTC), environment="production",
                 role="arn:aws:iam::1:role/r", status=200, caller=caller, user_agent=f"client/{number}")


def test_records_rotate_within_the_bound_and_read_back_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    audit = trail(path, max_size=2048, files=3)
    for number in range(200):
        record(audit, number)
    audit.close()
    files = audit_files(path)
    assert [file.name for file in files] == ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
    assert all(file.stat().st_size <= 2048 for file in files)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert {stat.S_IMODE(file.stat().st_mode) for file in files} == {0o600}
    agents = [str(document["user_agent"]) for document in read_records(path) if document]
    numbers = [int(agent.split("/")[1]) for agent in agents]
    assert numbers == sorted(numbers) and numbers[-1] == 199  # in order, the newest kept, the oldest dropped
    assert numbers[0] > 0


def test_one_file_only_starts_afresh_when_full(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = trail(path, max_size=2048, files=1)
    for number in range(50):
        record(audit, number)
    audit.close()
    assert [file.name for file in audit_files(path)] == ["audit.jsonl"]
    assert path.stat().st_size <= 2048


def test_a_restart_appends_to_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for number in range(2):
        audit = trail(path, max_size=1 << 20)
        record(audit, number)
        audit.close()
    assert [document and document["user_agent"] for document in read_records(path)] == ["client/0", "client/1"]


def test_a_record_holds_the_caller_and_its_parents(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = trail(path)
    record(audit, 7)
    audit.record(at=datetime(2026, 3, 2, 9, 1, tzinfo=UTC), environment="production", role=None, status=403,
                 caller=Caller(problem="it hung up"), user_agent=None, reason="refused: deny_callers")
    audit.close()
    served, refused = [document for document in read_records(path) if document]
    assert served["time"] == "2026-03-02T09:00:07.000Z"
    assert served["caller"] == {
        "uid": 1000, "pid": 4242, "name": "aws", "exe": "/usr/bin/python3.11",
        "argv": ["/usr/bin/python3", "/usr/bin/aws", "s3", "ls"], "cwd": "/srv",
        "parents": [{"pid": 4000, "name": "bash", "exe": "/usr/bin/bash", "argv": ["-bash"], "cwd": "/home/u"}],
    }
    assert (refused["result"], refused["reason"]) == ("refused", "refused: deny_callers")
    assert refused["caller"] == {"uid": None, "unknown": "it hung up"}
    last = audit.last_client("production")
    assert last is not None and (last["result"], last["pid"]) == ("refused", None)


def test_a_file_of_someone_elses_mode_or_a_symlink_is_refused_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    os.chmod(path, 0o644)
    audit = trail(path)
    record(audit, 1)
    assert audit.problem is not None and "not a private file of yours" in audit.problem
    assert path.read_text() == ""
    linked = tmp_path / "linked" / "audit.jsonl"
    linked.parent.mkdir(mode=0o700)
    linked.symlink_to(tmp_path / "elsewhere")
    audit = trail(linked)
    record(audit, 1)
    assert audit.problem is not None and not (tmp_path / "elsewhere").exists()


def test_a_directory_that_cannot_be_made_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the directory should be")
    audit = trail(tmp_path / "state" / "audit.jsonl")
    record(audit, 1)  # nothing raised
    assert audit.problem is not None
    assert audit.last_client("production") is not None  # status still shows the last client


@pytest.mark.parametrize("argument", ["--token=abc", "--password", "x" * 40])
def test_the_callers_command_line_is_redacted_once_for_all_its_requests(argument: str) -> None:
    caller = Caller(uid=1, chain=(Process(1, 0, "tool", None, ("tool", argument, "value")),))
    encoded = caller_json(caller)
    assert encoded is caller_json(caller)  # cached: keep-alive requests reuse it
    assert "[redacted]" in json.loads(encoded)["argv"][1] + json.loads(encoded)["argv"][2]
