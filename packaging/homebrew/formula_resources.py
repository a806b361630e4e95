#!/usr/bin/env python3
"""Keep the Homebrew formula's resources equal to what govuk-imds needs on macOS.

Homebrew installs a Python application into a virtualenv of its own, from source distributions it lists as
`resource` blocks, each pinned by URL and sha256. This script computes that list from the installed govuk-imds
(its requirements and theirs, with markers evaluated as on macOS, so Linux-only SecretStorage is left out), fetches
each sdist with pip to hash it, and rewrites the resources of govuk-imds.rb between its two marker lines; with
`--sdist`, it also pins the project's own release sdist. Run it with the project's venv after a dependency changes:

    .venv/bin/python packaging/homebrew/formula_resources.py [--sdist dist/govuk_imds-X.Y.Z.tar.gz]

tests/e2e/test_homebrew.py imports ``macos_closure`` and ``read_resources`` to check the formula against the
installed dependencies and to install it the way Homebrew would.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

FORMULA = Path(__file__).with_name("govuk-imds.rb")
BEGIN = "  # -- resources: written by packaging/homebrew/formula_resources.py --"
END = "  # -- end of resources --"
#: The Python Homebrew's formula depends on, and the platform, for evaluating requirement markers.
MACOS = {
    "sys_platform": "darwin",
    "platform_system": "Darwin",
    "os_name": "posix",
    "platform_machine": "arm64",
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
_RESOURCE = re.compile(r'resource "(?P<name>[^"]+)" do\s+url "(?P<url>[^"]+)"\s+sha256 "(?P<sha256>[0-9a-f]{64})"')


@dataclass(frozen=True)
class Resource:
    name: str
    url: str
    sha256: str

    @property
    def version(self) -> str:
        filename = self.url.rsplit("/", 1)[-1].removesuffix(".tar.gz")
        return filename.rsplit("-", 1)[-1]


def macos_closure(project: str = "govuk-imds", python: str = MACOS["python_version"]) -> dict[str, str]:
    """Every distribution ``project`` needs on macOS with that Python, by canonical name, at its installed version."""
    environment = {**MACOS, "python_version": python, "python_full_version": f"{python}.0"}
    found: dict[str, str] = {}
    pending = [Requirement(text) for text in metadata.requires(project) or []]
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found[name] = metadata.version(requirement.name)
        pending += [Requirement(text) for text in metadata.requires(requirement.name) or []]
    return dict(sorted(found.items()))


def read_resources(formula: Path = FORMULA) -> list[Resource]:
    return [Resource(**match.groupdict()) for match in _RESOURCE.finditer(formula.read_text())]


def _sdist(name: str, version: str, into: Path) -> tuple[Path, str]:
    """The sdist of ``name==version``, fetched by pip, and the URL pip fetched it from (from pip's own log)."""
    log = into / f"{name}.log"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", name, "--dest", str(into),
         "--log", str(log), f"{name}=={version}"],
        check=True,
    )
    [path] = [path for path in into.glob("*.tar.gz") if canonicalize_name(path.name.rsplit("-", 1)[0]) == name]
    [url] = set(re.findall(rf"https://files\.pythonhosted\.org/packages/[0-9a-f/]+/{re.escape(path.name)}",
                           log.read_text()))
    return path, url


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _block(name: str, path: Path, url: str) -> str:
    return f'  resource "{name}" do\n    url "{url}"\n    sha256 "{_digest(path)}"\n  end\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help="the release sdist of govuk-imds, to pin as the formula's url")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        blocks = [_block(name, *_sdist(name, version, Path(scratch))) for name, version in macos_closure().items()]
    text = FORMULA.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    text = text[:start] + "\n" + "\n".join(blocks) + text[end:]
    if arguments.sdist:
        version = arguments.sdist.name.removeprefix("govuk_imds-").removesuffix(".tar.gz")
        url = f"https://files.pythonhosted.org/packages/source/g/govuk-imds/{arguments.sdist.name}"
        text = re.sub(r'^  url ".*"$', f'  url "{url}"', text, count=1, flags=re.M)
        text = re.sub(r'^  sha256 ".*"$', f'  sha256 "{_digest(arguments.sdist)}"', text, count=1, flags=re.M)
        print(f"pinned govuk-imds {version}")
    FORMULA.write_text(text)
    print(f"wrote {len(blocks)} resources to {FORMULA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
