"""The daemon's request path at several commits, side by side: is a change in throughput the code or the machine?

    .venv/bin/python -m benchmarks.commits f5be3bd 4694a2c HEAD      # three rounds, alternating, keep-alive c=64

Each commit's ``src/`` is exported with ``git archive`` and run by this checkout's CLI entry point through
``PYTHONPATH``, in the test suite's world (moto STS behind the MFA proxy, a private keyring), with auditing off
where the commit has it. wrk (pinned to CPU 0) drives the daemon (pinned to CPU 1) for a 2 s warm-up and a 6 s
measurement; the daemon's CPU time comes from ``/proc/<pid>/stat``. Prints each run, then the medians.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from .stack import ROOT, World, make_world, moto_and_proxy


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(world: World, token: str, seconds: int) -> str:
    argv = ["taskset", "-c", "0", "wrk", "-t1", "-c64", f"-d{seconds}s", "-H", f"Authorization: {token}",
            world.url("production")]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _export(commit: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def _one_run(world: World, source: Path) -> tuple[float, float]:
    """(requests per second, daemon CPU µs per request) for the code in ``source``."""
    world.environment["PYTHONPATH"] = str(source)
    text = world.config_file.read_text().replace('log_level = "DEBUG"', 'log_level = "INFO"')
    if (source / "govuk_imds" / "daemon" / "audit.py").exists():
        text += "\n[audit]\nenabled = false\n"
    world.config_file.write_text(text)
    world.add_key()
    world.start()
    unlocked = world.unlock("production")
    if unlocked.returncode != 0:
        raise RuntimeError(unlocked.stderr)
    pid = world.daemon_pid()
    assert pid is not None
    token = world.token("production")
    subprocess.run(["taskset", "-a", "-p", "-c", "1", str(pid)], capture_output=True, check=False)
    _wrk(world, token, 2)
    before = _cpu_seconds(pid)
    printed = _wrk(world, token, 6)
    used = _cpu_seconds(pid) - before
    total = re.search(r"(\d+) requests in", printed)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", printed)
    if total is None or rate is None:
        raise RuntimeError(f"wrk printed no figures:\n{printed}")
    return float(rate.group(1)), used / int(total.group(1)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {commit: [] for commit in arguments.commits}
    with tempfile.TemporaryDirectory() as exported, moto_and_proxy() as (moto, sts):
        sources = {commit: _export(commit, Path(exported) / str(n)) for n, commit in enumerate(arguments.commits)}
        for round_number in range(arguments.rounds):
            order = arguments.commits[round_number % len(arguments.commits):] + arguments.commits[
                :round_number % len(arguments.commits)]
            for commit in order:
                with tempfile.TemporaryDirectory() as home, make_world(Path(home), sts, moto) as world:
                    rate, cpu = _one_run(world, sources[commit])
                runs[commit].append((rate, cpu))
                print(f"round {round_number + 1} {commit:>10} {rate:8.0f} req/s {cpu:6.1f} µs/request", flush=True)
    print("\n| commit | req/s (median) | daemon CPU µs/request (median) |\n|---|---:|---:|")
    for commit, rows in runs.items():
        print(f"| {commit} | {statistics.median(r for r, _ in rows):,.0f} | "
              f"{statistics.median(c for _, c in rows):.1f} |")


if __name__ == "__main__":
    main()
