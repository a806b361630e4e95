"""Where in the AWS console a sign-in lands: the federation ``Destination``, built only from checked parts.

The result is always ``https://<region>.console.aws.amazon.com/<path>`` (or the global
``https://console.aws.amazon.com/<path>`` for global services): a ``--service`` name from the table below, or a
``--path`` that is the part of a console address after the host. Nothing typed can change the host. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.shapes import REGION
from ..errors import InvalidInput

#: ``--service`` names and where each lands. There is no official list of console paths; these are the addresses
#: the console itself shows for the services GOV.UK uses. Anything else: ``--path``.
SERVICES = {
    "acm": "acm/home",
    "athena": "athena/home",
    "billing": "billing/home",
    "cloudformation": "cloudformation/home",
    "cloudfront": "cloudfront/v4/home",
    "cloudtrail": "cloudtrailv2/home",
    "cloudwatch": "cloudwatch/home",
    "codebuild": "codesuite/codebuild/home",
    "codepipeline": "codesuite/codepipeline/home",
    "config": "config/home",
    "cost-explorer": "cost-management/home",
    "dynamodb": "dynamodbv2/home",
    "ec2": "ec2/home",
    "ecr": "ecr/home",
    "ecs": "ecs/home",
    "eks": "eks/home",
    "elasticache": "elasticache/home",
    "elb": "ec2/home#LoadBalancers:",
    "guardduty": "guardduty/home",
    "iam": "iam/home",
    "kms": "kms/home",
    "lambda": "lambda/home",
    "logs": "cloudwatch/home#logsV2:log-groups",
    "opensearch": "aos/home",
    "organizations": "organizations/v2/home",
    "parameter-store": "systems-manager/parameters",
    "rds": "rds/home",
    "route53": "route53/v2/home",
    "s3": "s3/home",
    "secretsmanager": "secretsmanager/home",
    "securityhub": "securityhub/home",
    "sns": "sns/home",
    "sqs": "sqs/home",
    "ssm": "systems-manager/home",
    "support": "support/home",
    "vpc": "vpc/home",
    "waf": "wafv2/home",
}
#: Services whose console lives on the global host and takes no region.
GLOBAL_SERVICES = frozenset({"billing", "cloudfront", "cost-management", "iam", "organizations", "route53", "support"})
HOME = "console/home"
#: A console path: printable URL characters only, never a scheme, a leading slash or backslash, ``//`` or ``..``.
_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/?#-]{1,2048}")


def destination(region: str, *, service: str | None = None, path: str | None = None) -> str:
    """The console address to land on; ``InvalidInput`` for a bad region, an unknown service or a bad path."""
    if not REGION.fullmatch(region):
        raise InvalidInput(f"{region!r} is not an AWS region name (like eu-west-1)")
    if service is not None and path is not None:
        raise InvalidInput("give --service or --path, not both")
    if service is not None:
        path = _service_path(service)
    elif path is not None:
        _check_path(path)
    else:
        path = HOME
    first_segment = path.split("/", 1)[0]
    global_service = first_segment in GLOBAL_SERVICES
    host = "console.aws.amazon.com" if global_service else f"{region}.console.aws.amazon.com"
    parts = urlsplit(f"https://{host}/{path}")
    if parts.scheme != "https" or parts.netloc != host:  # the checks above make this impossible; kept as the rule
        raise InvalidInput(f"--path {path!r} would leave the AWS console")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not global_service and not any(key == "region" for key, _ in query):
        query.append(("region", region))  # in the query, before any #fragment (where the console's views live)
    return urlunsplit(("https", host, parts.path, urlencode(query), parts.fragment))


def service_names() -> list[str]:
    return sorted(SERVICES)


def _service_path(service: str) -> str:
    found = SERVICES.get(service.lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(service.lower(), SERVICES, n=1, cutoff=0.5)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise InvalidInput(
        f"unknown console service {service!r}; {guess}`govuk-imds console --list-services` lists the names, and "
        "--path PATH lands anywhere else (PATH: the console's address after the host, like cloudtrailv2/home)"
    )


def _check_path(path: str) -> None:
    before_fragment = path.split("#", 1)[0]
    if (
        not _PATH.fullmatch(path)
        or path.startswith(("/", "\\"))
        or "//" in before_fragment
        or ".." in before_fragment.split("?", 1)[0].split("/")
        or not re.match(r"[a-z0-9]", path)
    ):
        raise InvalidInput(
            f"--path {path!r} is not a console path; give the part of a console address after the host, "
            "like ec2/home#Instances: or s3/buckets/NAME"
        )
