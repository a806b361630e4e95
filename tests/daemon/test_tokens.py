"""The per-environment token files: private, URL-safe, no trailing newline, kept across restarts, put back by
``ensure`` when they go missing, new only when asked for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from govuk_imds.config.files import atomic_write
from govuk_imds.config.paths import RuntimePaths
from govuk_imds.daemon.tokens import TokenStore, new_token
from govuk_imds.errors import UnsafeRuntimeDir
from tests.support.files import mode, umask

TOKEN_SHAPE = re.compile(rb"[A-Za-z0-9_-]{43,}")


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


@pytest.mark.parametrize("damage", ["deleted", "emptied", "replaced", "newline added"])
def test_ensure_puts_back_the_file_of_a_token_it_holds_with_the_same_token(paths: RuntimePaths, damage: str) -> None:
    """`govuk-imds reload` repairs a token file this way: copies of the token (in shells' environments) stay valid."""
    store = TokenStore(paths)
    store.ensure("production")
    path = paths.token_file("production")
    token = path.read_bytes()
    if damage == "deleted":
        path.unlink()
    else:
        atomic_write(path, {"emptied": b"", "replaced": new_token(), "newline added": token + b"\n"}[damage])
    with umask(0):
        store.ensure("production")
    assert path.read_bytes() == token
    assert mode(path) == 0o600
    assert store.matches("production", token)


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


def test_tokens_are_kept_only_for_the_socket_the_previous_daemon_recorded(paths: RuntimePaths) -> None:
    first = TokenStore(paths)
    assert first.start_serving_on("boot-1/7/4242") is False  # nothing recorded yet: start afresh
    first.ensure("production")
    token = paths.token_file("production").read_bytes()
    # Same socket, held throughout by the service manager: kept.
    assert TokenStore(paths).start_serving_on("boot-1/7/4242") is True
    assert paths.token_file("production").read_bytes() == token
    # Another socket (a restarted socket unit, a reboot): every file goes, the next ensure makes a new token.
    again = TokenStore(paths)
    assert again.start_serving_on("boot-1/7/9999") is False
    assert not paths.token_file("production").exists()
    again.ensure("production")
    assert paths.token_file("production").read_bytes() != token


def test_a_daemon_that_bound_its_own_socket_records_nothing_and_trusts_nothing(paths: RuntimePaths) -> None:
    store = TokenStore(paths)
    store.start_serving_on("boot-1/7/4242")
    store.ensure("staging")
    assert TokenStore(paths).start_serving_on(None) is False
    assert not paths.listener_record.exists()
    assert list(paths.tokens_dir.iterdir()) == []
    # A plain bind in between breaks the chain: the old socket's identity is no longer trusted either.
    assert TokenStore(paths).start_serving_on("boot-1/7/4242") is False
