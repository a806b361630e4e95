"""The GUI prompt: which dialog runs where, what each exit means (as measured with the real tools), and running
one (stand-in programs here; the daemon-started prompt end to end is in tests/e2e/test_locked_tools.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from govuk_imds.desktop.dialog import Outcome, Result, dialog_argv, judge, run


def which(*present: str):  # type: ignore[no-untyped-def]
    return lambda tool: f"/usr/bin/{tool}" if tool in present else None


def test_zenity_asks_with_hidden_text_and_its_own_timeout() -> None:
    argv = dialog_argv("MFA code for production", 60, {"DISPLAY": ":0"}, platform="linux",
                       which=which("zenity", "kdialog"))
    assert argv == ["/usr/bin/zenity", "--entry", "--hide-text", "--title=govuk-imds",
                    "--text=MFA code for production", "--timeout=60"]


def test_kde_gets_kdialog_with_its_rich_text_label_escaped() -> None:
    argv = dialog_argv("MFA code for <b>prod</b> & co", 60, {"WAYLAND_DISPLAY": "wayland-0",
                                                            "XDG_CURRENT_DESKTOP": "KDE"},
                       platform="linux", which=which("zenity", "kdialog"))
    assert argv == ["/usr/bin/kdialog", "--title", "govuk-imds", "--password",
                    "MFA code for &lt;b&gt;prod&lt;/b&gt; &amp; co"]


def test_no_display_or_no_dialog_program_means_no_prompt() -> None:
    # zenity exits 1 without a display, exactly as for Cancel: so it is never started there.
    assert dialog_argv("x", 60, {}, platform="linux", which=which("zenity")) is None
    assert dialog_argv("x", 60, {"DISPLAY": ":0"}, platform="linux", which=which()) is None


def test_macos_passes_the_texts_as_arguments() -> None:
    argv = dialog_argv('code" & do shell script "id', 60, {}, platform="darwin", which=which())
    assert argv is not None
    assert argv[0] == "osascript"
    assert argv[-3:] == ['code" & do shell script "id', "govuk-imds", "60"]


@pytest.mark.parametrize(
    ("tool", "returncode", "stdout", "stderr", "expected"),
    [
        ("zenity", 0, "123456\n", "", Result(Outcome.ANSWERED, "123456")),
        ("zenity", 0, "", "", Result(Outcome.CANCELLED)),  # the window was destroyed
        ("zenity", 1, "", "", Result(Outcome.CANCELLED)),
        ("zenity", 5, "", "", Result(Outcome.TIMED_OUT)),
        ("zenity", 255, "", "Gtk-WARNING: cannot open display", Result(Outcome.FAILED,
                                                                       "Gtk-WARNING: cannot open display")),
        ("kdialog", 0, "123456\n", "", Result(Outcome.ANSWERED, "123456")),
        ("kdialog", 1, "", "", Result(Outcome.CANCELLED)),
        ("kdialog", 134, "", "qt.qpa.xcb: could not connect to display", Result(
            Outcome.FAILED, "qt.qpa.xcb: could not connect to display")),
        ("osascript", 1, "", "execution error: User canceled. (-128)", Result(Outcome.CANCELLED)),
        ("osascript", 1, "", "execution error: Not authorized (-1743)", Result(
            Outcome.FAILED, "execution error: Not authorized (-1743)")),
        ("osascript", 0, "", "", Result(Outcome.CANCELLED)),  # "giving up after": nothing typed
    ],
)
def test_what_each_exit_means(tool: str, returncode: int, stdout: str, stderr: str, expected: Result) -> None:
    assert judge(tool, returncode, stdout, stderr) == expected


def stand_in(tmp_path: Path, body: str) -> list[str]:
    program = tmp_path / "zenity"
    program.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\n{body}\n")
    program.chmod(0o755)
    return [str(program), "--entry"]


def test_running_a_dialog_returns_what_was_typed(tmp_path: Path) -> None:
    assert run(stand_in(tmp_path, "echo 123456"), 5) == Result(Outcome.ANSWERED, "123456")
    assert run(stand_in(tmp_path, "exit 1"), 5) == Result(Outcome.CANCELLED)


def test_a_dialog_that_hangs_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    assert run(stand_in(tmp_path, "exec sleep 60"), 1) == Result(Outcome.TIMED_OUT)
    assert time.monotonic() - started < 30
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_missing_dialog_program_fails_in_words(tmp_path: Path) -> None:
    assert run([str(tmp_path / "nothing-here")], 5) == Result(Outcome.FAILED, "No such file or directory")
