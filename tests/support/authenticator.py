"""Stand-ins for the programs that hand out MFA codes: ``ykman`` (a YubiKey's OATH account) and ``zenity`` (a GUI
prompt a person types into), as real executables on ``PATH``.

Both print a real TOTP for the STS emulator's device secret, so the MFA-checking proxy verifies every code they
give. Each code they print is written to a ledger (and ``World.code()`` skips those), so tests get a fresh code
without waiting 30 s. A test tells a stand-in what to do next with ``set(tool, *behaviours)``: one behaviour per
call, the last one repeated. Every call is recorded (argv, whether stdin was a terminal or /dev/null, pid), so a
test can check what govuk-imds ran and that it stopped what it gave up on.

    ykman:  code (the default), touch (asks for a touch on stderr first, as ykman does), fail ("ERROR: No YubiKey
            detected!", exit 1), hang, empty, letters, two-lines, name (``<account>  <code>``, ykman without
            --single), short (five digits)
    zenity: answer (the default), cancel (exit 1), hang, junk (types letters), timeout (exit 5)
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
TOOLS = ("ykman", "zenity")
SCRIPT = """#!{python}
import sys
sys.path.insert(0, {repository!r})
from tests.support.authenticator import main
sys.exit(main({tool!r}, {root!r}))
"""


class Authenticator:
    """The stand-ins' directory: ``bin`` goes first on ``PATH``."""

    def __init__(self, root: Path, secret: str) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        (root / "secret").write_text(secret)
        for tool in TOOLS:
            script = self.bin / tool
            script.write_text(SCRIPT.format(python=sys.executable, repository=str(REPOSITORY), tool=tool,
                                            root=str(root)))
            script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def set(self, tool: str, *behaviours: str) -> None:
        (self.root / f"{tool}.plan").write_text(json.dumps(list(behaviours)))

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        log = self.root / "calls"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return [call for call in calls if tool is None or call["tool"] == tool]

    def printed(self) -> list[str]:
        """Every code a stand-in printed (or ``World.code()`` handed out), oldest first."""
        return ledger_codes(self.root)


def ledger_codes(root: Path) -> list[str]:
    ledger = root / "ledger"
    return ledger.read_text().split() if ledger.exists() else []


def record_code(root: Path, code: str) -> None:
    with (root / "ledger").open("a") as ledger:
        ledger.write(code + "\n")


def _fresh_code(root: Path) -> str:
    """A TOTP STS accepts now (this step, the next or the previous one) that nobody has been handed yet."""
    import pyotp

    totp = pyotp.TOTP((root / "secret").read_text().strip())
    with (root / "ledger.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        used = set(ledger_codes(root))
        now = time.time()
        for offset in (0, 1, -1):
            code = str(totp.at(now, counter_offset=offset))
            if code not in used:
                record_code(root, code)
                return code
    raise SystemExit("stand-in: every code valid now has been handed out")


def _next_behaviour(root: Path, tool: str, default: str) -> str:
    plan_file = root / f"{tool}.plan"
    with (root / "plan.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        plan = json.loads(plan_file.read_text()) if plan_file.exists() else []
        if not plan:
            return default
        if len(plan) > 1:
            plan_file.write_text(json.dumps(plan[1:]))
        return str(plan[0])


def _stdin_kind() -> str:
    if os.isatty(0):
        return "terminal"
    try:
        mode = os.fstat(0)
    except OSError:
        return "closed"
    null = os.stat(os.devnull)
    return "devnull" if (mode.st_rdev, mode.st_ino) == (null.st_rdev, null.st_ino) else "other"


def main(tool: str, root_text: str) -> int:
    root = Path(root_text)
    behaviour = _next_behaviour(root, tool, "code" if tool == "ykman" else "answer")
    call = {"tool": tool, "argv": sys.argv[1:], "behaviour": behaviour, "stdin": _stdin_kind(), "pid": os.getpid(),
            "display": os.environ.get("DISPLAY")}
    with (root / "calls").open("a") as log:
        log.write(json.dumps(call) + "\n")
    if behaviour == "hang":
        time.sleep(3600)
    if tool == "zenity":
        return _zenity(root, behaviour)
    return _ykman(root, behaviour)


def _ykman(root: Path, behaviour: str) -> int:
    if behaviour == "fail":
        print("ERROR: No YubiKey detected!", file=sys.stderr)
        return 1
    if behaviour == "empty":
        return 0
    if behaviour == "letters":
        print("abcdef")
        return 0
    if behaviour == "short":
        print("12345")
        return 0
    if behaviour == "touch":
        print("Touch your YubiKey...", file=sys.stderr, flush=True)
        time.sleep(0.3)
    code = _fresh_code(root)
    if behaviour == "two-lines":
        print(f"{code}\n{code}")
    elif behaviour == "name":
        print(f"gds-users  {code}")
    else:
        print(code)
    return 0


def _zenity(root: Path, behaviour: str) -> int:
    if behaviour == "cancel":
        return 1
    if behaviour == "timeout":
        return 5
    if behaviour == "junk":
        print("abcdef")
        return 0
    print(_fresh_code(root))
    return 0
