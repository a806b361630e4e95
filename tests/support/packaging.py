"""Building govuk-imds's sdist and wheel the standard way, from exactly the files git tracks (so nothing lying
around in a developer's checkout can hide a file missing from the release)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a step of an install; a failure shows its whole output."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done


def build_distributions(scratch: Path, out: Path, *, wheel: bool = True) -> None:
    """``python -m build`` (the wheel is built from the sdist) on a copy of the tracked files."""
    checkout = scratch / "checkout"
    for name in filter(None, run(["git", "ls-files", "-z"], cwd=ROOT).stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = checkout / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    run([sys.executable, "-m", "build", *([] if wheel else ["--sdist"]), "--outdir", str(out), str(checkout)])


def the(directory: Path, pattern: str) -> Path:
    [found] = directory.glob(pattern)
    return found
