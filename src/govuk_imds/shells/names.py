"""``govuk-imds __complete environments|source-profiles``: the names a completion script offers, one a line.

Run on every TAB that completes a name, so it takes a lean path from ``entry`` (no argparse, no command modules)
and stays light: the settings and botocore's config loader, nothing else. It never prints an error: a shell's
completion is no place for one, and an AWS config that cannot be read simply offers nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..config.aws_config import load_environments, load_profiles
from ..config.settings import load_settings
from ..errors import GovukImdsError

KINDS = ("environments", "source-profiles")


def names(kind: str) -> list[str]:
    settings = load_settings(os.environ)
    if kind == "environments":
        environments = load_environments(settings)
        return sorted({*environments.specs, *environments.problems})
    profiles = load_profiles(settings.aws_config_file)
    named = {values.get("source_profile") for values in profiles.values()}
    return sorted(name for name in named if isinstance(name, str) and name)


def main(arguments: Sequence[str]) -> int:
    if len(arguments) != 1 or arguments[0] not in KINDS:
        print(f"usage: govuk-imds __complete {'|'.join(KINDS)}", file=sys.stderr)
        return 2
    try:
        found = names(arguments[0])
    except (GovukImdsError, OSError):
        return 0
    if found:
        print("\n".join(found))
    return 0
