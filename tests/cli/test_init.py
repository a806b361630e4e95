"""`govuk-imds init` and `accounts` as a person runs them: the installed command against a temporary HOME.

What init promises: it adds GOV.UK's environments, never replaces a profile, leaves every other byte and the file's
mode as they were, follows a symlinked config (keeping the link), refuses a read-only one in one line, and with
``--dry-run`` prints the change as a diff and writes nothing. (Reading the MFA device from IAM needs a stored key and
moto: tests/e2e/test_day_one.py.)
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from govuk_imds.config.aws_config import parse_ini
from tests.support.world import BIN

EMAIL = "first.last@digital.cabinet-office.gov.uk"
SERIAL = f"arn:aws:iam::622626885786:mfa/{EMAIL}"
HAND_WRITTEN = (
    "# my own notes: keep them\n"
    "[default]\n"
    "region = eu-west-2\n"
    "output=json\n"
    "\n"
    "; a profile of another team\n"
    "[profile other-team]\n"
    "role_arn = arn:aws:iam::111111111111:role/them\n"
    "source_profile = default\n"
    "s3 =\n"
    "    max_concurrent_requests = 4\n"
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def run(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GOVUK_IMDS_RUNTIME_DIR": str(home / "run"),
        "LANG": "C.UTF-8",
    }
    return subprocess.run([str(BIN / "govuk-imds"), *args], input=stdin, capture_output=True, text=True,
                          env=environment, timeout=60, check=False)


def init(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(home, "init", "--email", EMAIL, *args)


def config(home: Path) -> Path:
    return home / ".aws" / "config"


def write_config(home: Path, text: str, mode: int = 0o600) -> Path:
    path = config(home)
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_an_empty_home_gets_every_environment_and_the_source_profile(home: Path) -> None:
    done = init(home, "--role", "govuk-powerusers")
    assert done.returncode == 0, done.stderr
    sections = parse_ini(config(home).read_text())
    assert list(sections) == [f"profile govuk-{name}" for name in ("test", "integration", "staging", "production",
                                                                   "tools")] + ["profile gds"]
    assert sections["profile govuk-production"] == {
        "role_arn": "arn:aws:iam::172025368201:role/govuk-powerusers",
        "mfa_serial": SERIAL,
        "source_profile": "gds",
        "region": "eu-west-1",
    }
    assert sections["profile gds"] == {"mfa_serial": SERIAL, "region": "eu-west-1"}
    assert stat.S_IMODE(config(home).stat().st_mode) == 0o600
    assert stat.S_IMODE(config(home).parent.stat().st_mode) == 0o700
    assert "govuk-imds add gds" in done.stdout  # the next step
    assert f"arn:aws:iam::622626885786:user/{EMAIL}" in done.stdout


def test_the_environments_it_writes_are_environments(home: Path) -> None:
    assert init(home, "--role", "powerusers", "--role", "users").returncode == 0
    printed = run(home, "env", "production-users", "--json")
    assert printed.returncode == 0, printed.stderr
    assert '"GOVUK_IMDS_ENVIRONMENT": "production-users"' in printed.stdout
    listed = run(home, "accounts")
    assert listed.returncode == 0, listed.stderr
    production = next(line for line in listed.stdout.splitlines() if line.startswith("production "))
    assert "172025368201" in production
    assert "govuk-production (govuk-powerusers)" in production
    assert "govuk-production-users (govuk-users)" in production


def test_comments_order_and_other_profiles_stay_byte_for_byte(home: Path) -> None:
    path = write_config(home, HAND_WRITTEN, mode=0o640)
    done = init(home, "--role", "govuk-administrators", "--environment", "integration")
    assert done.returncode == 0, done.stderr
    after = path.read_bytes()
    assert after.startswith(HAND_WRITTEN.encode())
    added = after[len(HAND_WRITTEN):].decode()
    assert added.startswith("\n[profile govuk-integration]\n")
    assert set(parse_ini(added)) == {"profile govuk-integration", "profile gds"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_an_existing_govuk_production_is_left_alone_and_reported(home: Path) -> None:
    mine = (
        "[profile govuk-production]\n"
        "# my own role\n"
        "role_arn = arn:aws:iam::172025368201:role/govuk-administrators\n"
        "source_profile = gds\n"
        f"mfa_serial = {SERIAL}\n"
    )
    path = write_config(home, mine)
    done = init(home, "--role", "govuk-powerusers", "--environment", "production", "--environment", "staging")
    assert done.returncode == 0, done.stderr
    assert path.read_text().startswith(mine)
    assert path.read_text().count("[profile govuk-production]") == 1
    assert "left as it is: [profile govuk-production] is already there" in done.stdout
    assert "role_arn is arn:aws:iam::172025368201:role/govuk-administrators" in done.stdout
    assert "added to" in done.stdout
    assert "govuk-staging" in done.stdout
    again = init(home, "--role", "govuk-powerusers", "--environment", "production", "--environment", "staging")
    assert again.returncode == 0
    assert "nothing to add" in again.stdout


def test_a_read_only_config_is_one_clear_line_and_unchanged(home: Path) -> None:
    path = write_config(home, HAND_WRITTEN, mode=0o444)
    done = init(home, "--role", "govuk-users")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "read-only (mode 0444)" in line
    assert "chmod u+w" in line
    assert path.read_text() == HAND_WRITTEN
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_a_symlinked_config_is_followed_and_the_link_kept(home: Path, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "aws-config"
    real.write_text(HAND_WRITTEN)
    real.chmod(0o644)
    (home / ".aws").mkdir()
    config(home).symlink_to(real)
    done = init(home, "--role", "govuk-users", "--environment", "test")
    assert done.returncode == 0, done.stderr
    assert config(home).is_symlink()
    assert os.readlink(config(home)) == str(real)
    assert real.read_text().startswith(HAND_WRITTEN)
    assert "[profile govuk-test]" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o644
    assert [entry.name for entry in dotfiles.iterdir()] == ["aws-config"]  # no temporary file left behind


@pytest.mark.parametrize("email", ["first.last@gmail.com", "first.last", "first last@digital.cabinet-office.gov.uk"])
def test_an_invalid_email_is_one_line_and_writes_nothing(home: Path, email: str) -> None:
    done = run(home, "init", "--email", email, "--role", "govuk-users")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "first.last@digital.cabinet-office.gov.uk" in line
    assert not config(home).exists()


def test_without_a_terminal_the_missing_answers_are_named(home: Path) -> None:
    no_role = init(home)
    assert no_role.returncode == 2
    assert "--role" in no_role.stderr
    no_email = run(home, "init", "--role", "govuk-users")
    assert no_email.returncode == 2
    assert "--email" in no_email.stderr
    assert not config(home).exists()


def test_dry_run_prints_a_diff_that_makes_the_same_file_and_writes_nothing(home: Path, tmp_path: Path) -> None:
    path = write_config(home, HAND_WRITTEN)
    dry = init(home, "--role", "govuk-powerusers", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert path.read_text() == HAND_WRITTEN
    assert dry.stdout.startswith(f"--- {path}\n+++ {path} (after init)\n@@ ")
    diff = dry.stdout[: dry.stdout.index("would add to")]
    copy = tmp_path / "copy"
    copy.write_text(HAND_WRITTEN)
    subprocess.run(["patch", "--quiet", str(copy)], input=diff, text=True, check=True)
    assert init(home, "--role", "govuk-powerusers").returncode == 0
    assert copy.read_text() == path.read_text()


def test_the_source_profile_region_and_central_account_can_be_chosen(home: Path) -> None:
    done = init(home, "--role", "govuk-users", "--environment", "integration", "--source-profile", "gds-users",
                "--region", "eu-west-2", "--central-account", "123456789012")
    assert done.returncode == 0, done.stderr
    sections = parse_ini(config(home).read_text())
    assert sections["profile govuk-integration"]["source_profile"] == "gds-users"
    assert sections["profile govuk-integration"]["region"] == "eu-west-2"
    assert sections["profile gds-users"]["mfa_serial"] == f"arn:aws:iam::123456789012:mfa/{EMAIL}"
    bad = init(home, "--role", "govuk-users", "--central-account", "12345")
    assert bad.returncode == 2
    assert "12-digit" in bad.stderr


def test_accounts_lists_what_init_knows_and_json_too(home: Path) -> None:
    listed = run(home, "accounts")
    assert listed.returncode == 0, listed.stderr
    for name, account in [("test", "430354129336"), ("tools", "900804735337")]:
        assert any(line.split()[:3] == [name, account, "-"] for line in listed.stdout.splitlines())
    assert "govuk-imds init" in listed.stdout  # nothing configured: the way forward
    assert init(home, "--role", "govuk-users", "--environment", "tools").returncode == 0
    document = json.loads(run(home, "accounts", "--json").stdout)
    tools = next(item for item in document["accounts"] if item["environment"] == "tools")
    assert tools == {"environment": "tools", "account_id": "900804735337",
                     "profiles": [{"profile": "govuk-tools", "role": "govuk-users"}]}
