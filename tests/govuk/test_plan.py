"""What init would add, decided on text alone: names, the default role, what is kept, and proof nothing else moved."""

from __future__ import annotations

import pytest

from govuk_imds.config.aws_config import parse_ini
from govuk_imds.errors import ConfigError, InvalidInput
from govuk_imds.govuk.catalogue import load_catalogue
from govuk_imds.govuk.plan import Choices, Profile, appended, plan, profile_name, wanted_profiles

SERIAL = "arn:aws:iam::622626885786:mfa/first.last@digital.cabinet-office.gov.uk"


def choices(*roles: str, environments: tuple[str, ...] = ("integration", "production")) -> Choices:
    return Choices(environments, roles, SERIAL, "gds", "eu-west-1", "govuk-")


def test_the_catalogue_knows_govuks_accounts_and_roles() -> None:
    catalogue = load_catalogue()
    assert dict(catalogue.accounts) == {
        "test": "430354129336",
        "integration": "210287912431",
        "staging": "696911096973",
        "production": "172025368201",
        "tools": "900804735337",
    }
    assert catalogue.role_names == ("govuk-administrators", "govuk-powerusers", "govuk-users")
    assert catalogue.central_account == "622626885786"
    assert catalogue.environment_of("172025368201") == "production"


@pytest.mark.parametrize(
    ("typed", "email"),
    [
        ("first.last@digital.cabinet-office.gov.uk", "first.last@digital.cabinet-office.gov.uk"),
        ("  First.Last@Digital.Cabinet-Office.gov.uk\n", "first.last@digital.cabinet-office.gov.uk"),
        ("madhuri.nethi1@digital.cabinet-office.gov.uk", "madhuri.nethi1@digital.cabinet-office.gov.uk"),
    ],
)
def test_an_email_becomes_the_iam_user_and_mfa_device(typed: str, email: str) -> None:
    catalogue = load_catalogue()
    assert catalogue.check_email(typed) == email
    assert catalogue.mfa_serial(email) == f"arn:aws:iam::622626885786:mfa/{email}"
    assert catalogue.user_arn(email) == f"arn:aws:iam::622626885786:user/{email}"


@pytest.mark.parametrize(
    "typed",
    ["first.last@gmail.com", "first.last", "@digital.cabinet-office.gov.uk", "first last@digital.cabinet-office.gov.uk",
     "first.last@digital.cabinet-office.gov.uk.evil.example", "a/b@digital.cabinet-office.gov.uk",
     "x" * 40 + "@digital.cabinet-office.gov.uk"],
)
def test_anything_else_is_refused_in_one_line(typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        load_catalogue().check_email(typed)
    assert "\n" not in str(refused.value)


def test_roles_may_be_typed_short_and_any_other_is_taken_as_it_is() -> None:
    catalogue = load_catalogue()
    assert catalogue.role_name("powerusers") == "govuk-powerusers"
    assert catalogue.role_name("govuk-users") == "govuk-users"
    assert catalogue.role_name("govuk-fulladmin") == "govuk-fulladmin"
    with pytest.raises(InvalidInput):
        catalogue.role_name("not a role")


def test_the_first_role_names_the_environment_and_the_others_carry_their_suffix() -> None:
    assert profile_name("govuk-", "production", "govuk-powerusers", "govuk-powerusers") == "govuk-production"
    assert profile_name("govuk-", "production", "govuk-users", "govuk-powerusers") == "govuk-production-users"
    assert profile_name("govuk-", "production", "release-assumed", "govuk-users") == "govuk-production-release-assumed"
    names = [profile.name for profile in wanted_profiles(load_catalogue(), choices("govuk-powerusers", "govuk-users"))]
    assert names == [
        "govuk-integration", "govuk-integration-users", "govuk-production", "govuk-production-users", "gds"
    ]


def test_profiles_follow_govuks_guidance() -> None:
    production = wanted_profiles(load_catalogue(), choices("govuk-administrators"))[1]
    assert production.render() == (
        "[profile govuk-production]\n"
        "role_arn = arn:aws:iam::172025368201:role/govuk-administrators\n"
        f"mfa_serial = {SERIAL}\n"
        "source_profile = gds\n"
        "region = eu-west-1\n"
    )


def test_two_roles_that_would_share_a_name_are_refused() -> None:
    with pytest.raises(InvalidInput, match="share a profile name"):
        wanted_profiles(load_catalogue(), choices("govuk-users", "users"))


def test_an_existing_profile_is_kept_with_what_differs() -> None:
    wanted = wanted_profiles(load_catalogue(), choices("govuk-powerusers", environments=("production",)))
    existing = {"govuk-production": {"role_arn": "arn:aws:iam::172025368201:role/govuk-administrators",
                                     "mfa_serial": SERIAL, "source_profile": "gds", "region": "eu-west-1"}}
    decided = plan(wanted, existing)
    assert [profile.name for profile in decided.add] == ["gds"]
    [kept] = decided.kept
    assert kept.name == "govuk-production"
    assert kept.differences == (
        "role_arn is arn:aws:iam::172025368201:role/govuk-administrators "
        "(init would write arn:aws:iam::172025368201:role/govuk-powerusers)",
    )


@pytest.mark.parametrize(
    "original",
    ["", "# only a comment", "[default]\nregion = eu-west-2\n", "[default]\nregion = eu-west-2\n\n\n",
     "[default]\r\nregion = eu-west-2\r\n"],
)
def test_new_profiles_go_after_every_byte_that_was_there(original: str) -> None:
    new = [Profile("govuk-x", (("role_arn", "arn:aws:iam::123456789012:role/r"),)), Profile("gds", (("region", "r"),))]
    text = appended(original, new)
    assert text.startswith(original)
    newline = "\r\n" if "\r\n" in original else "\n"
    assert "\n" not in text.replace(newline, "")  # the file's own line ending throughout
    assert parse_ini(text)["profile govuk-x"] == {"role_arn": "arn:aws:iam::123456789012:role/r"}
    if original.strip():
        assert f"{newline}{newline}[profile govuk-x]" in text  # one blank line before what init adds


def test_a_layout_that_would_read_differently_is_refused() -> None:
    # A section that is already there (under a spelling botocore's loader did not report) would be written twice.
    with pytest.raises(ConfigError, match="add them yourself"):
        appended("[profile govuk-x]\nregion = a\n", [Profile("govuk-x", (("region", "b"),))])
