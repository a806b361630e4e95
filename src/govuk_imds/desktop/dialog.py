"""A GUI prompt for an MFA code: zenity or kdialog on Linux, ``osascript``'s dialog on macOS.

The code comes back on the dialog's stdout (a pipe), never through argv or a file; the prompt and the title are
argv and hold no secret ("MFA code for production"). What each tool's exit means was measured under Xvfb (zenity
3.44, kdialog 22.12; docs/design.md): zenity exits 1 both for Cancel and for "no display", so no display means no
dialog here rather than a cancel; kdialog renders its label as rich text, so the label is escaped; zenity's is
plain text. osascript's dialog is written from Apple's documentation and is untested (no Mac here).
"""

from __future__ import annotations

import enum
import html
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..core.text import last_line

TITLE = "govuk-imds"
#: ``display dialog`` with the prompt and title as ``on run argv``'s arguments (no AppleScript quoting needed).
OSASCRIPT_DIALOG = (
    "on run argv",
    'display dialog (item 1 of argv) with title (item 2 of argv) default answer "" with hidden answer '
    'buttons {"Cancel", "Unlock"} default button "Unlock" cancel button "Cancel" giving up after (item 3 of argv)',
    "return text returned of result",
    "end run",
)
#: Most of what a person types into the box: more is not a code, and is not kept.
MAX_ANSWER = 256


class Outcome(enum.Enum):
    ANSWERED = "answered"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed out"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    text: str = ""  # what was typed (ANSWERED), or why the tool failed (FAILED)


def dialog_argv(
    prompt: str,
    timeout_seconds: int,
    environ: Mapping[str, str],
    *,
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str] | None:
    """The dialog to run, or ``None`` when there is no graphical session to show one in (no ``DISPLAY`` or
    ``WAYLAND_DISPLAY`` on Linux) or no dialog program. KDE desktops get kdialog first, others zenity."""
    if platform == "darwin":
        lines = [part for line in OSASCRIPT_DIALOG for part in ("-e", line)]
        return ["osascript", *lines, prompt, TITLE, str(timeout_seconds)]
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return None
    order = ("kdialog", "zenity") if "KDE" in environ.get("XDG_CURRENT_DESKTOP", "").upper() else ("zenity", "kdialog")
    for tool in order:
        path = which(tool)
        if path is None:
            continue
        if tool == "zenity":
            # --password has no --text in zenity 3 (its label is fixed), so --entry --hide-text carries ours.
            return [path, "--entry", "--hide-text", f"--title={TITLE}", f"--text={prompt}",
                    f"--timeout={timeout_seconds}"]
        return [path, "--title", TITLE, "--password", html.escape(prompt)]  # no timeout of its own: ``run`` has one
    return None


def judge(tool: str, returncode: int, stdout: str, stderr: str) -> Result:
    """What a dialog's exit means, per tool (measured; see the module's docstring)."""
    answer = stdout.strip()
    if returncode == 0:
        # zenity whose window was destroyed, and macOS's "giving up after", exit 0 with nothing typed.
        return Result(Outcome.ANSWERED, answer) if answer else Result(Outcome.CANCELLED)
    if returncode == 1:
        if tool == "osascript" and "-128" not in stderr:  # -128 is "User canceled"; anything else is an error
            return Result(Outcome.FAILED, last_line(stderr) or "exit status 1")
        return Result(Outcome.CANCELLED)
    if returncode == 5 and tool == "zenity":
        return Result(Outcome.TIMED_OUT)
    return Result(Outcome.FAILED, last_line(stderr) or f"exit status {returncode}")


def run(argv: list[str], timeout_seconds: float) -> Result:
    """Show the dialog and wait for the person, at most ``timeout_seconds`` (kdialog has no timeout, and a dialog
    whose window is lost would wait for ever); it is killed then. It stays in this process's group, so whatever
    stops this process (Ctrl-C, the daemon giving up on it) takes the dialog off the screen too."""
    tool = os.path.basename(argv[0])
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        return Result(Outcome.FAILED, exc.strerror or str(exc))
    try:
        stdout, stderr = process.communicate(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return Result(Outcome.TIMED_OUT)
    except BaseException:
        process.kill()
        process.wait()
        raise
    text = stdout[:MAX_ANSWER].decode("utf-8", "replace")
    return judge(tool, process.returncode, text, stderr.decode("utf-8", "replace"))
