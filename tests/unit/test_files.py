"""Runtime files: private directories, atomic 0600 writes, symlink refusal, and the per-environment token files."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from govuk_imds.errors import UnsafeRuntimeDir
from govuk_imds.paths import (
    RuntimePaths,
    atomic_write,
    default_runtime_dir,
    ensure_private_dir,
    read_private,
)
from govuk_imds.tokens import TokenStore, new_token

TOKEN_SHAPE = re.compile(rb"[A-Za-z0-9_-]{43,}")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
OTHER_UID = 54321


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


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


# -- TokenStore -------------------------------------------------------------------------------------------------------


@pytest.fixture
def paths(tmp_path: Path) -> RuntimePaths:
    return RuntimePaths(tmp_path / "run")


def test_new_token_shape() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(TOKEN_SHAPE.fullmatch(token) for token in tokens)


def test_token_file_is_private_url_safe_and_has_no_trailing_newline(paths: RuntimePaths) -> None:
    store = TokenStore(paths)
    with umask(0):
        store.ensure("production")
    data = paths.token_file("production").read_bytes()
    assert TOKEN_SHAPE.fullmatch(data)
    assert not data.endswith((b"\n", b"\r"))
    assert mode(paths.token_file("production")) == 0o600
    assert mode(paths.tokens_dir) == 0o700
    assert store.matches("production", data)


def test_tokens_differ_per_environment(paths: RuntimePaths) -> None:
    store = TokenStore(paths)
    names = ["integration", "staging", "production"]
    for name in names:
        store.ensure(name)
    tokens = {name: paths.token_file(name).read_bytes() for name in names}
    assert len(set(tokens.values())) == 3
    assert store.matches("production", tokens["production"])
    assert not store.matches("production", tokens["staging"])
    assert not store.matches("staging", tokens["production"])


def test_tokens_survive_a_daemon_restart(paths: RuntimePaths) -> None:
    first = TokenStore(paths)
    first.ensure("production")
    token = paths.token_file("production").read_bytes()
    second = TokenStore(paths)
    second.ensure("production")
    assert paths.token_file("production").read_bytes() == token
    assert second.matches("production", token)


@pytest.mark.parametrize(
    "bad",
    [b"", b"short", b"A" * 42, b"A" * 43 + b"\n", b"A" * 20 + b" " + b"A" * 22, b"A" * 129, "é".encode() * 30],
)
def test_malformed_token_file_is_replaced(paths: RuntimePaths, bad: bytes) -> None:
    paths.tokens_dir.parent.mkdir(mode=0o700)
    paths.tokens_dir.mkdir(mode=0o700)
    atomic_write(paths.token_file("production"), bad)
    store = TokenStore(paths)
    store.ensure("production")
    data = paths.token_file("production").read_bytes()
    assert data != bad
    assert TOKEN_SHAPE.fullmatch(data)
    assert store.matches("production", data)
    assert not store.matches("production", bad)


def test_token_file_others_can_read_is_not_used(paths: RuntimePaths) -> None:
    TokenStore(paths).ensure("production")
    leaked = paths.token_file("production").read_bytes()
    paths.token_file("production").chmod(0o644)
    store = TokenStore(paths)
    with pytest.raises(UnsafeRuntimeDir):
        store.ensure("production")
    assert not store.matches("production", leaked)


def test_tokens_dir_open_to_others_is_refused(paths: RuntimePaths) -> None:
    paths.root.mkdir(mode=0o700)
    paths.tokens_dir.mkdir()
    paths.tokens_dir.chmod(0o755)
    with pytest.raises(UnsafeRuntimeDir):
        TokenStore(paths).ensure("production")


def test_rotate_changes_file_and_memory(paths: RuntimePaths) -> None:
    store = TokenStore(paths)
    store.ensure("production")
    store.ensure("staging")
    old = paths.token_file("production").read_bytes()
    staging = paths.token_file("staging").read_bytes()
    with umask(0):
        store.rotate("production")
    new = paths.token_file("production").read_bytes()
    assert new != old
    assert TOKEN_SHAPE.fullmatch(new)
    assert mode(paths.token_file("production")) == 0o600
    assert store.matches("production", new)
    assert not store.matches("production", old)
    # Other environments are untouched, and a restarted daemon picks up the rotated token.
    assert paths.token_file("staging").read_bytes() == staging
    assert store.matches("staging", staging)
    restarted = TokenStore(paths)
    restarted.ensure("production")
    assert restarted.matches("production", new)


def test_rotate_without_ensure_creates_the_token(paths: RuntimePaths) -> None:
    store = TokenStore(paths)
    store.rotate("production")
    assert store.matches("production", paths.token_file("production").read_bytes())


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param(b"", id="empty"),
        pytest.param("é".encode(), id="non-ascii-utf8"),
        pytest.param(b"\xff\xfe\x00", id="invalid-utf8"),
        pytest.param("ünïcødé-tøken".encode() * 4, id="long-non-ascii"),
        pytest.param(b"\r\n", id="newline"),
    ],
)
def test_matches_is_false_never_an_exception_for_odd_input(paths: RuntimePaths, presented: bytes) -> None:
    store = TokenStore(paths)
    store.ensure("production")
    assert store.matches("production", presented) is False
    assert store.matches("unknown", presented) is False


def test_matches_refuses_prefixes_extensions_and_near_misses(paths: RuntimePaths) -> None:
    store = TokenStore(paths)
    store.ensure("production")
    token = paths.token_file("production").read_bytes()
    assert store.matches("production", token) is True
    for presented in (token[:-1], token[:8], token + b"x", token + b"\n", b" " + token, token.swapcase()):
        assert store.matches("production", presented) is False
    assert store.matches("production", token[:-1] + "é".encode()) is False


def test_matches_before_ensure_or_for_unknown_environment(paths: RuntimePaths) -> None:
    store = TokenStore(paths)
    assert store.matches("production", b"anything") is False
    store.ensure("production")
    token = paths.token_file("production").read_bytes()
    assert store.matches("staging", token) is False


def test_symlinked_token_file_is_refused_and_its_target_untouched(paths: RuntimePaths, tmp_path: Path) -> None:
    paths.root.mkdir(mode=0o700)
    paths.tokens_dir.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_bytes(b"A" * 43)
    victim.chmod(0o600)
    paths.token_file("production").symlink_to(victim)
    store = TokenStore(paths)
    with pytest.raises(UnsafeRuntimeDir):
        store.ensure("production")
    assert victim.read_bytes() == b"A" * 43
    assert not store.matches("production", b"A" * 43)
