"""Running wrk (pinned to the client CPU) and reading its results from the Lua ``done`` hook."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .stack import CLIENT_CPU, pinned

REPORT_LUA = Path(__file__).with_name("wrk_report.lua")


@dataclass(frozen=True)
class Load:
    """What wrk sends: ``connections`` at once, keep-alive or a new connection per request."""

    connections: int
    keepalive: bool = True

    @property
    def label(self) -> str:
        if self.keepalive:
            return f"keep-alive c={self.connections}"
        return f"new connection per request c={self.connections}"

    @property
    def key(self) -> str:
        return f"{'ka' if self.keepalive else 'close'}{self.connections}"


@dataclass
class WrkResult:
    requests: int
    duration_us: int
    bytes: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    status_errors: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int
    mean_us: float
    #: CPU time (user + system) the server process(es) used during the run, if they were given: steadier than
    #: throughput on a shared machine, because it does not count the time the server waited for a CPU.
    server_cpu_ms: float | None = None

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.server_cpu_ms is None or not self.requests:
            return None
        return self.server_cpu_ms * 1000 / self.requests

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rps": self.rps, "cpu_us_per_request": self.cpu_us_per_request}


def command(url: str, load: Load, seconds: float, headers: dict[str, str], *, timeout: float = 5.0) -> list[str]:
    argv = [
        "wrk",
        "-t1",
        f"-c{load.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout:g}s",
        "-s",
        str(REPORT_LUA),
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    if not load.keepalive:
        argv += ["-H", "Connection: close"]
    return pinned([*argv, url], CLIENT_CPU)


def parse(output: str, argv: list[str]) -> WrkResult:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            return WrkResult(**json.loads(line[len("BENCH_JSON ") :]))
    raise RuntimeError(f"wrk printed no result ({' '.join(argv)}):\n{output[-2000:]}")


def cpu_ms(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants still running (nginx's worker), in ms."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) * 1000 / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run(url: str, load: Load, seconds: float, headers: dict[str, str], server_pid: int | None = None) -> WrkResult:
    argv = command(url, load, seconds, headers)
    before = cpu_ms(server_pid) if server_pid else 0.0
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({' '.join(argv)}): {done.stderr[-2000:]}")
    result = parse(done.stdout, argv)
    if server_pid:
        result.server_cpu_ms = cpu_ms(server_pid) - before
    return result


def start(url: str, load: Load, seconds: float, headers: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    """wrk in the background (for floods); finish with :func:`finish`."""
    argv = command(url, load, seconds, headers)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), argv


def finish(process: subprocess.Popen[str], argv: list[str], seconds: float) -> WrkResult:
    out, err = process.communicate(timeout=seconds + 60)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({' '.join(argv)}): {err[-2000:]}")
    return parse(out, argv)
