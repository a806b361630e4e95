"""Where a sign-in lands: only ever the AWS console's own host, whatever is typed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from govuk_imds.console.destination import SERVICES, destination, service_names
from govuk_imds.errors import InvalidInput


@pytest.mark.parametrize(
    ("region", "service", "path", "expected"),
    [
        ("eu-west-1", None, None, "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"),
        ("eu-west-1", "s3", None, "https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1"),
        ("eu-west-2", "EC2", None, "https://eu-west-2.console.aws.amazon.com/ec2/home?region=eu-west-2"),
        ("eu-west-1", "iam", None, "https://console.aws.amazon.com/iam/home"),
        ("eu-west-1", "logs", None,
         "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups"),
        ("eu-west-1", None, "ec2/home#Instances:instanceState=running",
         "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#Instances:instanceState=running"),
        ("eu-west-1", None, "s3/buckets/govuk-assets?tab=objects",
         "https://eu-west-1.console.aws.amazon.com/s3/buckets/govuk-assets?tab=objects&region=eu-west-1"),
        ("eu-west-1", None, "rds/home?region=us-east-1",  # a region in the path is the user's to choose
         "https://eu-west-1.console.aws.amazon.com/rds/home?region=us-east-1"),
        ("eu-west-1", None, "route53/v2/hostedzones", "https://console.aws.amazon.com/route53/v2/hostedzones"),
        ("us-gov-west-1", None, "cloudtrailv2/home",
         "https://us-gov-west-1.console.aws.amazon.com/cloudtrailv2/home?region=us-gov-west-1"),
    ],
)
def test_destinations(region: str, service: str | None, path: str | None, expected: str) -> None:
    assert destination(region, service=service, path=path) == expected


@pytest.mark.parametrize(
    "path",
    ["/evil", "//evil.example/x", "https://evil.example", "\\\\evil.example", "x\\y", "a b", "../x", "ec2/../../x",
     "Ec2/home", "", "-x", "ec2/home\n", "ec2//home", "@evil.example", "ec2/home?x=\u00e9"],
)
def test_paths_that_are_not_console_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidInput, match="is not a console path"):
        destination("eu-west-1", path=path)


def test_percent_escapes_stay_escapes_on_the_console_host() -> None:
    landed = urlsplit(destination("eu-west-1", path="ec2/%2F%2Fevil.example%0a"))
    assert (landed.netloc, landed.path) == ("eu-west-1.console.aws.amazon.com", "/ec2/%2F%2Fevil.example%0a")


def test_every_destination_stays_on_the_console_host() -> None:
    for name in SERVICES:
        host = urlsplit(destination("eu-west-1", service=name)).netloc
        assert host in {"eu-west-1.console.aws.amazon.com", "console.aws.amazon.com"}, name


def test_an_unknown_service_says_how_to_find_the_names_and_guesses() -> None:
    with pytest.raises(InvalidInput) as refused:
        destination("eu-west-1", service="cloudwach")
    message = str(refused.value)
    assert "unknown console service 'cloudwach'; did you mean 'cloudwatch'?" in message
    assert "`govuk-imds console --list-services`" in message and "--path" in message
    assert "\n" not in message


@pytest.mark.parametrize("region", ["mars-1", "EU-WEST-1", "eu-west-1.evil.example", "eu-west", ""])
def test_a_bad_region_is_refused(region: str) -> None:
    with pytest.raises(InvalidInput, match="is not an AWS region name"):
        destination(region)


def test_service_and_path_together_are_refused() -> None:
    with pytest.raises(InvalidInput, match="not both"):
        destination("eu-west-1", service="s3", path="s3/home")


def test_service_names_are_sorted_and_complete() -> None:
    assert service_names() == sorted(SERVICES)
