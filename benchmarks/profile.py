"""Where the daemon's time goes under load: py-spy samples the running daemon while wrk drives it.

``py-spy record --format raw`` writes collapsed stacks ("frame;frame;... count"); this module turns them into
inclusive and self percentages per function, of the samples in which the daemon was running Python (idle samples,
the event loop waiting in epoll, are excluded by py-spy). Sampling is blocking (the daemon pauses for each sample),
because non-blocking samples of coroutine stacks come out torn.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .stack import CLIENT_CPU, pinned


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def start(pid: int, seconds: int, output: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """Sample ``pid`` for ``seconds`` (pinned to the client CPU, non-blocking); collapsed stacks into ``output``."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("py-spy is not installed (scripts/bench installs it into .venv)")
    argv = [executable, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
            "--nolineno", "--format", "raw", "--output", str(output)]
    return subprocess.Popen(pinned(argv, CLIENT_CPU), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*)\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('function')} ({path})"


@dataclass
class Profile:
    samples: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)

    def top(self, counter: Counter[str], count: int) -> list[tuple[str, float]]:
        if not self.samples:
            return []
        return [(name, 100.0 * hits / self.samples) for name, hits in counter.most_common(count)]

    def share(self, predicate: str) -> float:
        """Percentage of samples whose stack contains a frame whose name contains ``predicate``."""
        if not self.samples:
            return 0.0
        hits = max((hits for name, hits in self.inclusive.items() if predicate in name), default=0)
        return 100.0 * hits / self.samples


def parse(text: str, thread_marker: str = "BaseEventLoop._run_once") -> Profile:
    """Only stacks of the event loop's thread (``thread_marker`` in the stack) count: the daemon's executor
    threads wait on a queue, which py-spy does not always recognise as idle."""
    profile = Profile()
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        frames = [frame for frame in frames if not frame.startswith(("process ", "thread "))]
        if not frames or not any(thread_marker in frame for frame in frames):
            continue
        profile.samples += count
        for frame in set(frames):
            profile.inclusive[frame] += count
        profile.self_time[frames[-1]] += count
    return profile
