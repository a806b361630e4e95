"""A description of the machine a run happened on, for the top of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "?"


def _source() -> str:
    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()
    changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"], capture_output=True,
                             text=True, check=False).stdout.strip().splitlines()
    if not head:
        return "not a git checkout"
    return f"commit {head}" + (f" plus uncommitted changes to {len(changed)} file(s) in src/" if changed else "")


def _package(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def describe() -> dict[str, Any]:
    import aiohttp

    flags = _first("/proc/cpuinfo", "flags") or ""
    memory_kib = int((_first("/proc/meminfo", "MemTotal") or "0 kB").split()[0])
    os_name = "?"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cpu_model": _first("/proc/cpuinfo", "model name") or platform.processor() or "?",
        "cpu_mhz": _first("/proc/cpuinfo", "cpu MHz"),
        "cores": os.cpu_count(),
        "virtualised": "hypervisor" in flags.split(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": os_name,
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "wrk": _version(["wrk", "--version"]).split(" Copyright")[0],
        "nginx": _version(["nginx", "-v"]),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "source": _source(),
        "awscli": _package("awscli"),
        "botocore": _package("botocore"),
        "moto": _package("moto"),
        "uvloop": _package("uvloop"),
    }
