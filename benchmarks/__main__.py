"""``python -m benchmarks [--quick] [--out DIR] [--only SECTION ...]``; normally run through ``scripts/bench``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from . import report
from .stack import ROOT
from .suite import Plan, log, run_all

SECTIONS = ("endpoint", "floods", "user", "cli", "footprint", "sts", "audit")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs for development (results in build/)")
    parser.add_argument("--out", type=Path, help="where to write benchmarks.md/.png/.json "
                                                 "(default: docs/, or build/benchmarks/ with --quick)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="do not measure: re-render the report from a results file")
    arguments = parser.parse_args(argv)
    out = arguments.out or (ROOT / "build" / "benchmarks" if arguments.quick else ROOT / "docs")
    out.mkdir(parents=True, exist_ok=True)
    command = "scripts/bench" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    profile_file = out / "benchmarks-profile.txt"

    def write(results: dict[str, Any], final: bool) -> None:
        (out / "benchmarks.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
        if not final:
            return
        report.chart(results, out / "benchmarks.png")
        text = report.markdown(results, results.get("command", command), "benchmarks.png",
                               profile_file.name if profile_file.exists() else None)
        (out / "benchmarks.md").write_text(text)

    if arguments.render:
        results = json.loads(arguments.render.read_text())
        write(results, final=True)
        log(f"re-rendered {out / 'benchmarks.md'}")
        return 0
    plan = Plan.make(arguments.quick)
    results = run_all(plan, profile_file, set(arguments.only) if arguments.only else None,
                      progress=lambda partial: write({**partial, "command": command}, final=False))
    results["command"] = command
    write(results, final=True)
    log(f"wrote {out / 'benchmarks.md'}, {out / 'benchmarks.png'} and {out / 'benchmarks.json'}")
    for target, measured, ok in report.targets(results):
        log(f"{'MET   ' if ok else 'MISSED' if ok is not None else '      '} {target}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
