"""Runtime files: private directories, atomic 0600 writes, symlink refusal, where each file lives."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from govuk_imds.config.files import atomic_write, ensure_private_dir, read_private, read_user_file
from govuk_imds.config.paths import RuntimePaths, default_runtime_dir
from govuk_imds.errors import ConfigError, UnsafeRuntimeDir
from tests.support.files import IS_ROOT, OTHER_UID, mode, umask

# -- ensure_private_dir ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_ensure_private_dir_creates_0700_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    target = tmp_path / "govuk-imds"
    with umask(mask):
        ensure_private_dir(target)
    assert target.is_dir()
    assert not target.is_symlink()
    assert mode(target) == 0o700


def test_ensure_private_dir_creates_missing_parents(tmp_path: Path) -> None:
    target = tmp_path / "run" / "user" / "govuk-imds"
    ensure_private_dir(target)
    assert mode(target) == 0o700


def test_ensure_private_dir_accepts_an_existing_private_dir(tmp_path: Path) -> None:
    target = tmp_path / "govuk-imds"
    target.mkdir(mode=0o700)
    (target / "keep").write_bytes(b"x")
    ensure_private_dir(target)
    ensure_private_dir(target)
    assert (target / "keep").read_bytes() == b"x"


@pytest.mark.parametrize("wide", [0o755, 0o750, 0o701, 0o777])
def test_ensure_private_dir_refuses_a_dir_open_to_others(tmp_path: Path, wide: int) -> None:
    target = tmp_path / "govuk-imds"
    target.mkdir()
    target.chmod(wide)
    with pytest.raises(UnsafeRuntimeDir) as caught:
        ensure_private_dir(target)
    assert str(target) in str(caught.value)
    assert "chmod 0700" in str(caught.value)
    assert mode(target) == wide  # refused, not silently "fixed"


def test_ensure_private_dir_refuses_a_symlink_to_a_private_dir(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "govuk-imds"
    link.symlink_to(real)
    with pytest.raises(UnsafeRuntimeDir) as caught:
        ensure_private_dir(link)
    assert str(link) in str(caught.value)


def test_ensure_private_dir_refuses_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "govuk-imds"
    target.write_bytes(b"")
    target.chmod(0o600)
    with pytest.raises(UnsafeRuntimeDir):
        ensure_private_dir(target)


@pytest.mark.skipif(not IS_ROOT, reason="only root can hand a directory to another uid")
def test_ensure_private_dir_refuses_a_dir_owned_by_someone_else(tmp_path: Path) -> None:
    target = tmp_path / "govuk-imds"
    target.mkdir(mode=0o700)
    os.chown(target, OTHER_UID, -1)
    with pytest.raises(UnsafeRuntimeDir) as caught:
        ensure_private_dir(target)
    assert str(OTHER_UID) in str(caught.value)


# -- atomic_write -----------------------------------------------------------------------------------------------------


@pytest.fixture
def private(tmp_path: Path) -> Path:
    directory = tmp_path / "private"
    directory.mkdir(mode=0o700)
    return directory


@pytest.mark.parametrize("data", [b"", b"token-without-newline", b"\x00\xff\n\r binary", b"x" * 100_000])
def test_atomic_write_is_0600_with_exact_bytes_even_under_umask_0(private: Path, data: bytes) -> None:
    target = private / "state.json"
    with umask(0):
        atomic_write(target, data)
    assert target.read_bytes() == data
    assert mode(target) == 0o600
    assert stat.S_ISREG(target.lstat().st_mode)
    assert sorted(path.name for path in private.iterdir()) == ["state.json"]  # no temporary file left


def test_atomic_write_replaces_an_existing_wider_file(private: Path) -> None:
    target = private / "state.json"
    target.write_bytes(b"old contents that are longer than the new ones")
    target.chmod(0o644)
    with umask(0):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert mode(target) == 0o600


def test_atomic_write_replaces_a_symlink_without_writing_through_it(private: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    victim.chmod(0o644)
    target = private / "production"
    target.symlink_to(victim)
    atomic_write(target, b"token")
    assert not target.is_symlink()
    assert target.read_bytes() == b"token"
    assert mode(target) == 0o600
    assert victim.read_bytes() == b"precious"
    assert mode(victim) == 0o644


def test_atomic_write_does_not_follow_a_symlink_planted_at_its_temporary_name(private: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = private / "production"
    (private / f".production.{os.getpid()}.tmp").symlink_to(victim)
    atomic_write(target, b"token")
    assert target.read_bytes() == b"token"
    assert victim.read_bytes() == b"precious"
    assert sorted(path.name for path in private.iterdir()) == ["production"]


# -- read_private -----------------------------------------------------------------------------------------------------


def test_read_private_reads_our_own_file(private: Path) -> None:
    atomic_write(private / "f", b"abc")
    assert read_private(private / "f") == b"abc"


def test_read_private_refuses_a_symlink(private: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"attacker-chosen token")
    victim.chmod(0o600)
    (private / "production").symlink_to(victim)
    with pytest.raises(UnsafeRuntimeDir) as caught:
        read_private(private / "production")
    assert str(private / "production") in str(caught.value)


@pytest.mark.parametrize("wide", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_read_private_refuses_files_others_can_read_or_write(private: Path, wide: int) -> None:
    target = private / "production"
    target.write_bytes(b"token")
    target.chmod(wide)
    with pytest.raises(UnsafeRuntimeDir) as caught:
        read_private(target)
    assert str(target) in str(caught.value)


def test_read_private_never_returns_data_for_a_directory(private: Path) -> None:
    (private / "production").mkdir(mode=0o700)
    with pytest.raises((OSError, UnsafeRuntimeDir)):
        read_private(private / "production")


def test_read_private_refuses_a_directory_with_unsafe_runtime_dir(private: Path) -> None:
    (private / "production").mkdir(mode=0o700)
    with pytest.raises(UnsafeRuntimeDir):
        read_private(private / "production")


@pytest.mark.skipif(not IS_ROOT, reason="only root can hand a file to another uid")
def test_read_private_refuses_a_file_owned_by_someone_else(private: Path) -> None:
    target = private / "production"
    atomic_write(target, b"token")
    os.chown(target, OTHER_UID, -1)
    with pytest.raises(UnsafeRuntimeDir):
        read_private(target)


def test_read_private_missing_file_is_file_not_found(private: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_private(private / "missing")


# -- where the files live -------------------------------------------------------------------------------------------


def test_runtime_dir_choice(tmp_path: Path) -> None:
    explicit = tmp_path / "explicit"
    assert default_runtime_dir({"GOVUK_IMDS_RUNTIME_DIR": str(explicit), "XDG_RUNTIME_DIR": "/run/user/1"}) == explicit
    assert default_runtime_dir({"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path("/run/user/1000/govuk-imds")
    if sys.platform != "darwin":
        assert default_runtime_dir({}) == Path(f"/tmp/govuk-imds-{os.getuid()}")


def test_runtime_paths_layout(tmp_path: Path) -> None:
    paths = RuntimePaths(tmp_path)
    assert paths.tokens_dir == tmp_path / "tokens"
    assert paths.token_file("production") == tmp_path / "tokens" / "production"
    assert paths.control_socket.parent == tmp_path
    assert paths.state_file.parent == tmp_path


def test_dev_null_reads_as_an_empty_user_file_as_it_does_for_every_aws_tool() -> None:
    """``AWS_CONFIG_FILE=/dev/null`` means "no file" to botocore; our refusal of devices must not turn it into an
    error (``init`` and the unlocking CLI point the AWS files at /dev/null before they call AWS)."""
    assert read_user_file(os.devnull, 1024) == b""
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_user_file("/dev/zero", 1024)
