"""Installing like a real tool: build the sdist and wheel from a clean copy of the checkout, check them with twine,
install the wheel with pipx into a fresh location, and use the `govuk-imds` it puts on PATH as a newcomer would:
`--version`, `init --dry-run`, `start`, `status`, `stop`.

Dependencies come from the package index through pip's ordinary configuration (its cache makes a second run quick).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import govuk_imds
from tests.support.packaging import build_distributions, run, the
from tests.support.world import BIN, free_port


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build_distributions(tmp_path_factory.mktemp("scratch"), out)
    return out


def test_the_sdist_and_wheel_pass_twine_and_carry_the_data(dist: Path) -> None:
    wheel = the(dist, "govuk_imds-*.whl")
    sdist = the(dist, "govuk_imds-*.tar.gz")
    assert wheel.name.startswith(f"govuk_imds-{govuk_imds.__version__}-py3-none-any")
    run([str(BIN / "twine"), "check", "--strict", str(wheel), str(sdist)])
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("govuk_imds/govuk/accounts.toml", "govuk_imds/shells/snippets/prompt.bash",
                 "govuk_imds/shells/snippets/prompt.zsh", "govuk_imds/shells/snippets/prompt.fish",
                 "govuk_imds/shells/snippets/starship.toml"):
        assert data in names
    assert not [name for name in names if name.startswith("tests/")]


@pytest.fixture(scope="module")
def installed(dist: Path) -> Iterator[Path]:
    """`pipx install <wheel>` into a fresh PIPX_HOME: the `govuk-imds` a user would have on PATH."""
    with tempfile.TemporaryDirectory(prefix="pipx-") as place:
        home = Path(place)
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "PIPX_HOME": str(home / "pipx"),
            "PIPX_BIN_DIR": str(home / "bin"),
            "PIPX_MAN_DIR": str(home / "man"),
            **{name: value for name, value in os.environ.items() if name.startswith("PIP_")},
        }
        run([str(BIN / "pipx"), "install", "--python", sys.executable, str(the(dist, "govuk_imds-*.whl"))],
            env=environment)
        yield home / "bin" / "govuk-imds"


def test_the_installed_command_works_as_a_newcomer_uses_it(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "govuk-imds").mkdir(parents=True)
    port = free_port()
    (home / ".config" / "govuk-imds" / "config.toml").write_text(f"port = {port}\n")
    runtime = Path(tempfile.mkdtemp(prefix="imds-"))  # short: Unix socket paths are limited to ~100 bytes
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                   "GOVUK_IMDS_RUNTIME_DIR": str(runtime), "LANG": "C.UTF-8"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run([str(installed), *args], env=environment, timeout=60)

    assert os.path.realpath(installed).startswith(str(installed.parents[1] / "pipx"))  # pipx's own venv, not ours
    assert cli("--version").stdout.strip() == f"govuk-imds {govuk_imds.__version__}"
    dry = cli("init", "--dry-run", "--email", "first.last@digital.cabinet-office.gov.uk", "--role", "govuk-users")
    assert "+role_arn = arn:aws:iam::172025368201:role/govuk-users" in dry.stdout  # from the wheel's account data
    assert not (home / ".aws" / "config").exists()
    assert "accounts" in cli("completion", "bash").stdout
    try:
        cli("start")
        status = cli("status")
        assert f"govuk-imds running on 127.0.0.1:{port}" in status.stdout
        cli("stop")
    finally:
        subprocess.run([str(installed), "stop"], env=environment, capture_output=True, timeout=30, check=False)
        shutil.rmtree(runtime, ignore_errors=True)
