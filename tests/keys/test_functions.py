"""The small pieces of the key commands that need no AWS: the MFA device lookup, the listing lines, removal, and
confirmation on the terminal."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govuk_imds.cli._common import terminal_confirm
from govuk_imds.config.aws_config import source_profile_mfa_serial as mfa_serial_for
from govuk_imds.config.paths import RuntimePaths
from govuk_imds.config.settings import Settings
from govuk_imds.core.credentials import LongTermKey
from govuk_imds.errors import ConfigError, InvalidInput, KeyOperationError
from govuk_imds.keys.listing import KeyListing, describe_listing, remove_key
from govuk_imds.keystore.store import MemoryStore

KEY = LongTermKey.parse("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
SERIAL = "arn:aws:iam::123456789012:mfa/first.last@digital.cabinet-office.gov.uk"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def settings_with(tmp_path: Path, aws_config: str | None) -> Settings:
    path = tmp_path / "aws-config"
    if aws_config is not None:
        path.write_text(aws_config)
    return Settings(config_file=tmp_path / "config.toml", runtime=RuntimePaths(tmp_path / "run"), aws_config_file=path)


# -- the MFA device for rotation ------------------------------------------------------------------------------------


def test_the_source_profiles_own_mfa_serial_is_used(tmp_path: Path) -> None:
    config = f"[profile gds]\nmfa_serial = {SERIAL}\n\n[profile govuk-staging]\nrole_arn = x\n"
    assert mfa_serial_for(settings_with(tmp_path, config), "gds") == SERIAL


def test_without_one_the_environments_device_is_used(tmp_path: Path) -> None:
    config = (
        "[profile govuk-production]\nrole_arn = arn:aws:iam::410987654321:role/govuk-administrators\n"
        f"mfa_serial = {SERIAL}\nsource_profile = gds\n\n[profile gds]\nregion = eu-west-1\n"
    )
    assert mfa_serial_for(settings_with(tmp_path, config), "gds") == SERIAL


@pytest.mark.parametrize("config", [None, "[profile gds]\nregion = eu-west-1\n", "[profile other]\nmfa_serial = x\n"])
def test_no_device_anywhere_is_one_clear_error(tmp_path: Path, config: str | None) -> None:
    with pytest.raises(ConfigError, match=r"\[profile gds\] has no mfa_serial; add `mfa_serial = arn:aws:iam::"):
        mfa_serial_for(settings_with(tmp_path, config), "gds")


# -- listing lines --------------------------------------------------------------------------------------------------


def listing(age: timedelta | None, problem: str | None = None) -> KeyListing:
    created = NOW - age if age is not None else None
    return KeyListing("gds", KEY, "first.last", "Active" if created else None, created, problem)


def test_a_young_key_is_one_line_without_a_warning() -> None:
    assert describe_listing(listing(timedelta(days=12)), NOW, timedelta(days=90)) == [
        "gds  …MPLE  first.last  Active  created 2026-05-20 (12 days ago)"
    ]


@pytest.mark.parametrize(("days", "warned"), [(89, False), (90, False), (91, True), (400, True)])
def test_keys_older_than_the_limit_are_warned_about(days: int, warned: bool) -> None:
    lines = describe_listing(listing(timedelta(days=days)), NOW, timedelta(days=90))
    assert len(lines) == (2 if warned else 1)
    if warned:
        assert lines[1] == (
            f"warning: the key for gds is older than 90 days ({days} days); run `govuk-imds rotate-key gds`"
        )


def test_an_unknown_age_says_why_and_never_warns() -> None:
    lines = describe_listing(listing(None, "AWS does not accept the key …MPLE"), NOW, timedelta(days=0))
    assert lines == ["gds  …MPLE  first.last  age unknown: AWS does not accept the key …MPLE"]


def test_listing_lines_never_show_the_secret_or_the_whole_key_id() -> None:
    text = "\n".join(describe_listing(listing(timedelta(days=365)), NOW, timedelta(days=90)))
    assert KEY.access_key_id not in text
    assert KEY.secret_access_key not in text


# -- remove ---------------------------------------------------------------------------------------------------------


def test_remove_deletes_after_confirmation() -> None:
    store = MemoryStore()
    store.put("gds", KEY)
    questions: list[str] = []

    def confirm(question: str) -> bool:
        questions.append(question)
        return True

    assert remove_key("gds", store, confirm) == KEY
    assert store.get("gds") is None
    assert questions == ["Delete the key LongTermKey(…MPLE) for 'gds' from the keyring? It stays valid in AWS."]


def test_remove_declined_keeps_the_key() -> None:
    store = MemoryStore()
    store.put("gds", KEY)
    with pytest.raises(KeyOperationError, match=r"nothing changed: the keyring keeps LongTermKey\(…MPLE\)"):
        remove_key("gds", store, lambda question: False)
    assert store.get("gds") == KEY


def test_removing_nothing_asks_nothing() -> None:
    def confirm(question: str) -> bool:
        raise AssertionError("nothing to confirm")

    assert remove_key("gds", MemoryStore(), confirm) is None


# -- confirmation ---------------------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("y\n", True), ("YES\n", True), ("n\n", False), ("\n", False), ("", False), ("yess\n", False)],
)
def test_the_terminal_is_asked_and_only_yes_means_yes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], answer: str, expected: bool
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    assert terminal_confirm(False)("Remove it?") is expected
    captured = capsys.readouterr()
    assert captured.err == "Remove it? [y/N] "
    assert captured.out == ""


def test_without_a_terminal_it_refuses_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    with pytest.raises(InvalidInput, match="there is no terminal to ask on; pass --yes"):
        terminal_confirm(False)


def test_yes_asks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert terminal_confirm(True)("Remove it?") is True
