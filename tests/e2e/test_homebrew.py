"""The Homebrew formula (packaging/homebrew/govuk-imds.rb), checked and installed on Linux as far as Linux allows.

Checked: Ruby parses it; its resources are exactly what govuk-imds needs on macOS (requirement markers evaluated as
on macOS) at versions that satisfy every requirement; its version is the package's. Installed the way
``virtualenv_install_with_resources`` does it: a virtualenv under ``libexec``, every resource built from its sdist
(fetched by URL and checked against the formula's sha256, no dependency resolution), then govuk-imds itself from an
sdist, the command linked into ``bin``, and completions written as ``generate_completions_from_executable`` does;
then the formula's ``test do`` commands and the zsh and fish completions from where Homebrew puts them.

Not exercised here (macOS or Homebrew itself): brew's own download cache and sandbox, Homebrew's python@3.13 (the
machine's Python builds the venv, with the few backports an older Python needs besides the formula's resources),
the macOS compilers, the Keychain backend and launchd, `brew audit`/`brew style`,
and the formula's url/sha256 for a published release (govuk-imds is installed from an sdist built here). Building
the C extensions of aiohttp and its kin from source takes a few minutes on a fresh machine; pip's wheel cache makes
later runs quick.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import govuk_imds
from tests.support.packaging import ROOT, build_distributions, run, the
from tests.support.terminal import Terminal
from tests.support.world import require

FORMULA = ROOT / "packaging" / "homebrew" / "govuk-imds.rb"


def resources_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("formula_resources", FORMULA.with_name("formula_resources.py"))
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look themselves up there
        spec.loader.exec_module(module)
    return module


def test_ruby_parses_the_formula() -> None:
    ruby = shutil.which("ruby")
    require(ruby is not None, "ruby (Debian: apt-get install ruby)")
    assert run([str(ruby), "-c", str(FORMULA)]).stdout.strip() == "Syntax OK"


def test_the_resources_are_what_govuk_imds_needs_on_macos() -> None:
    formula = resources_module()
    resources = {canonicalize_name(item.name): item for item in formula.read_resources()}
    needed = formula.macos_closure()
    assert set(resources) == set(needed), "run packaging/homebrew/formula_resources.py to update the formula"
    assert "secretstorage" not in resources and "jeepney" not in resources  # Linux only
    for name, item in resources.items():
        filename = item.url.rsplit("/", 1)[-1]
        assert re.fullmatch(r"https://files\.pythonhosted\.org/packages/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{60}/.+\.tar\.gz",
                            item.url), item.url
        assert canonicalize_name(filename.rsplit("-", 1)[0]) == name
    # Every requirement along the way accepts the version the formula pins.
    for name in ["govuk-imds", *needed]:
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            target = canonicalize_name(requirement.name)
            if target in resources and (requirement.marker is None or requirement.marker.evaluate(formula.MACOS)):
                assert requirement.specifier.contains(resources[target].version, prereleases=True), (name, text)
    text = FORMULA.read_text()
    assert f"/govuk_imds-{govuk_imds.__version__}.tar.gz" in text
    assert re.search(r'^  sha256 "[0-9a-f]{64}"$', text, re.M)


@pytest.fixture(scope="module")
def cellar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The formula installed the way Homebrew's `virtualenv_install_with_resources` installs it."""
    formula = resources_module()
    scratch = tmp_path_factory.mktemp("brew")
    prefix = scratch / "Cellar" / "govuk-imds" / govuk_imds.__version__
    libexec = prefix / "libexec"
    run([sys.executable, "-m", "venv", str(libexec)])
    python = str(libexec / "bin" / "python")
    resources = formula.read_resources()
    requirements = scratch / "resources.txt"
    requirements.write_text("".join(f"{item.name} @ {item.url} --hash=sha256:{item.sha256}\n" for item in resources))
    from_source = ",".join(item.name for item in resources)
    run([python, "-m", "pip", "install", "--no-deps", "--no-binary", from_source, "--require-hashes",
         "-r", str(requirements)], timeout=900)
    # The formula is written for Homebrew's python@3.13; this machine's older Python needs a few backports more
    # (typing_extensions for aiohttp, importlib_metadata for keyring, ...), installed the ordinary way.
    this_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    listed = {canonicalize_name(item.name) for item in resources}
    backports = [f"{name}=={version}" for name, version in formula.macos_closure(python=this_python).items()
                 if name not in listed]
    if backports:
        run([python, "-m", "pip", "install", "--no-deps", *backports])
    build_distributions(scratch, scratch / "dist", wheel=False)
    run([python, "-m", "pip", "install", "--no-deps", "--no-binary", "govuk-imds",
         str(the(scratch / "dist", "govuk_imds-*.tar.gz"))])
    (prefix / "bin").mkdir()
    (prefix / "bin" / "govuk-imds").symlink_to(libexec / "bin" / "govuk-imds")
    # generate_completions_from_executable(bin/"govuk-imds", "completion")
    places = {"bash": "share/bash-completion/completions/govuk-imds", "zsh": "share/zsh/site-functions/_govuk-imds",
              "fish": "share/fish/vendor_completions.d/govuk-imds.fish"}
    for shell, place in places.items():
        target = prefix / place
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(run([str(prefix / "bin" / "govuk-imds"), "completion", shell]).stdout)
    return prefix


def user_environment(cellar: Path, home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {"PATH": f"{cellar / 'bin'}:/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "GOVUK_IMDS_RUNTIME_DIR": str(home / "run"), "LANG": "C.UTF-8", "TERM": "xterm"}


def test_the_formulas_own_test_passes(cellar: Path, tmp_path: Path) -> None:
    environment = user_environment(cellar, tmp_path / "home")
    command = str(cellar / "bin" / "govuk-imds")
    assert f"govuk-imds {govuk_imds.__version__}" in run([command, "--version"], env=environment).stdout
    diff = run([command, "init", "--dry-run", "--role", "govuk-users", "--email",
                "first.last@digital.cabinet-office.gov.uk"], env=environment).stdout
    assert "+role_arn = arn:aws:iam::172025368201:role/govuk-users" in diff
    assert not (tmp_path / "home" / ".aws" / "config").exists()
    # Nothing from the project's own venv: the command runs on the formula's libexec alone.
    where = run([str(cellar / "libexec" / "bin" / "python"), "-c", "import govuk_imds, aiohttp, boto3, keyring; "
                 "print(govuk_imds.__file__)"], env=environment).stdout
    assert where.startswith(str(cellar / "libexec"))


def test_completions_work_from_where_homebrew_puts_them(cellar: Path, tmp_path: Path) -> None:
    environment = user_environment(cellar, tmp_path / "home")
    (tmp_path / "home" / ".aws").mkdir()
    (tmp_path / "home" / ".aws" / "config").write_text(
        "[profile govuk-staging]\nrole_arn = arn:aws:iam::696911096973:role/govuk-users\n"
        "mfa_serial = arn:aws:iam::622626885786:mfa/first.last@digital.cabinet-office.gov.uk\nsource_profile = gds\n"
    )
    run(["bash", "-n", str(cellar / "share/bash-completion/completions/govuk-imds")])
    fish = shutil.which("fish")
    require(fish is not None, "fish (Debian: apt-get install fish)")
    found = run([str(fish), "--no-config", "-c",
                 f"set -p fish_complete_path {cellar / 'share/fish/vendor_completions.d'}; "
                 "complete -C'govuk-imds unlock sta'"], env=environment).stdout
    assert found.split() == ["staging"]
    zsh = shutil.which("zsh")
    require(zsh is not None, "zsh (Debian: apt-get install zsh)")
    with Terminal([str(zsh), "-f", "-i"], environment) as terminal:
        # Autoloaded from $fpath, as Homebrew's zsh setup does: no eval.
        terminal.send(f"PS1='zsh> '; bindkey -e; fpath=({cellar / 'share/zsh/site-functions'} $fpath); "
                      "autoload -Uz compinit && compinit -u -D; echo READY:$((1+1))\r")
        terminal.expect("READY:2")
        terminal.send("govuk-imds unlock sta\t\x01echo RESULT:$((6*7)) \r")
        assert terminal.expect(rb"RESULT:42 ([^\r\n]*)").group(1).decode().strip() == "govuk-imds unlock staging"
        terminal.send("exit\r")
