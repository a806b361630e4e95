"""Running ``mfa_process`` and judging what it printed: real programs (small shell scripts) for the running, plain
values for the judging."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from govuk_imds.codes.command import Finished, Verdict, judge, quoted, run

YKMAN = ["ykman", "oath", "accounts", "code", "--single", "gds-users"]


def script(tmp_path: Path, body: str) -> list[str]:
    program = tmp_path / "code-source"
    program.write_text("#!/bin/sh\n" + body + "\n")
    program.chmod(0o755)
    return [str(program)]


@pytest.mark.parametrize(
    ("finished", "problem", "fix"),
    [
        (Finished(0, b""), "printed nothing", "it must print the six-digit code alone on stdout"),
        (Finished(0, b" \n\n"), "printed nothing", "it must print the six-digit code alone on stdout"),
        (Finished(0, b"abcdef\n"), "printed something that is not a six-digit code",
         "it must print the six-digit code alone"),
        (Finished(0, b"12345\n"), "printed 5 digits, not 6", "it must print the six-digit code alone"),
        (Finished(0, b"123456\n654321\n"), "printed 2 lines", "it must print the six-digit code alone"),
        (Finished(0, b"\xff\xfe"), "printed something that is not text", "it must print the six-digit code alone"),
        (Finished(0, b"1" * 5000), "printed far more than a code", "it must print the six-digit code alone"),
        (Finished(None, b""), "gave no code within 30 s and was stopped",
         "touch your YubiKey when it flashes, or raise code_timeout in config.toml"),
        (Finished(1, b"", "ERROR: No YubiKey detected!\n"), "exited with status 1 (ERROR: No YubiKey detected!)",
         "plug in your YubiKey"),
        (Finished(1, b"", "Touch your YubiKey...\nERROR: Touch account timed out!\n"),
         "exited with status 1 (ERROR: Touch account timed out!)", "touch your YubiKey when it flashes"),
        (Finished(1, b"", "Error: Multiple matches, make the query more specific.\n"),
         "exited with status 1 (Error: Multiple matches, make the query more specific.)",
         "name one OATH account exactly (`ykman oath accounts list` shows them)"),
        (Finished(2, b"", "Enter the password: Aborted!\n"), "exited with status 2 (Enter the password: Aborted!)",
         "run `ykman oath access remember` once, so that it can run without asking"),
        (Finished(3, b""), "exited with status 3", "run it in a terminal to see why"),
    ],
)
def test_what_a_command_printed_and_how_it_ended_is_judged(finished: Finished, problem: str, fix: str) -> None:
    assert judge(finished, YKMAN, 30) == Verdict(problem=problem, fix=fix)


def test_six_digits_alone_are_the_code() -> None:
    assert judge(Finished(0, b"  123456 \r\n"), YKMAN, 30).code == "123456"


def test_ykman_without_single_is_told_about_it() -> None:
    verdict = judge(Finished(0, b"gds-users  123456\n"), ["ykman", "oath", "accounts", "code", "gds-users"], 30)
    assert verdict.fix == ("it must print the six-digit code alone (ykman: `ykman oath accounts code --single "
                           "<account>`)")


def test_a_quoted_line_never_repeats_a_code_or_a_seed() -> None:
    assert quoted("warning\ncode was 123456, seed JBSWY3DPEHPK3PXPJBSWY3DP\x1b[31m\n") == (
        "code was …, seed …?[31m"
    )
    assert repr(Verdict(code="123456")).count("123456") == 0


def test_it_runs_without_a_shell_with_stdin_closed(tmp_path: Path) -> None:
    argv = script(tmp_path, 'if [ -t 0 ]; then echo tty; else cat; echo "args:$#:$1"; fi')
    finished = run([*argv, "a b; echo injected"], 5, lambda: None)
    assert finished.returncode == 0
    assert finished.stdout == b"args:1:a b; echo injected\n"  # one argument, nothing read from stdin


def test_a_request_to_touch_is_passed_on_once_while_it_waits(tmp_path: Path) -> None:
    told: list[float] = []
    argv = script(tmp_path, "echo 'Touch your YubiKey...' >&2; sleep 0.5; echo touch again >&2; echo 123456")
    started = time.monotonic()
    finished = run(argv, 10, lambda: told.append(time.monotonic()))
    ended = time.monotonic()
    assert finished.stdout == b"123456\n"
    assert len(told) == 1
    assert told[0] - started < ended - started - 0.3  # told before the code came, not after


def test_a_command_that_hangs_is_stopped_with_whatever_it_started(tmp_path: Path) -> None:
    argv = script(tmp_path, f"sleep 60 & echo $! > {tmp_path}/child; sleep 60")
    started = time.monotonic()
    finished = run(argv, 1, lambda: None)
    assert finished.returncode is None
    assert time.monotonic() - started < 30
    assert gone(int((tmp_path / "child").read_text()))


def test_a_command_that_leaves_a_child_holding_its_output_finishes_and_the_child_goes(tmp_path: Path) -> None:
    argv = script(tmp_path, f"sleep 30 & echo $! > {tmp_path}/child; echo 123456")
    started = time.monotonic()
    finished = run(argv, 20, lambda: None)
    assert (finished.returncode, finished.stdout) == (0, b"123456\n")
    assert time.monotonic() - started < 10
    assert gone(int((tmp_path / "child").read_text()))


def test_a_command_that_closes_its_output_early_is_waited_for(tmp_path: Path) -> None:
    argv = script(tmp_path, "echo 123456; exec >&- 2>&-; sleep 0.5; exit 0")
    finished = run(argv, 20, lambda: None)
    assert (finished.returncode, finished.stdout) == (0, b"123456\n")


def gone(pid: int) -> bool:
    time.sleep(0.1)  # the kill is sent; the kernel tidies up
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


def test_a_program_that_is_not_there_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run([str(tmp_path / "missing")], 5, lambda: None)
    (tmp_path / "not-executable").write_text("echo 1")
    with pytest.raises(PermissionError):
        run([str(tmp_path / "not-executable")], 5, lambda: None)
    assert os.path.exists(tmp_path / "not-executable")
