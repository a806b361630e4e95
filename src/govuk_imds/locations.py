"""Where the runtime dir is, with nothing but ``os`` and ``sys``: shared by ``paths`` and the lean
``credential-process`` path, which must start in a few milliseconds."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

APP = "govuk-imds"


def runtime_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_RUNTIME_DIR/govuk-imds`` on Linux; a per-user temporary directory elsewhere."""
    explicit = environ.get("GOVUK_IMDS_RUNTIME_DIR")
    if explicit:
        return explicit
    xdg = environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, APP)
    if sys.platform == "darwin" and environ.get("TMPDIR"):
        # macOS gives each user a private 0700 $TMPDIR under /var/folders.
        return os.path.join(environ["TMPDIR"], APP)
    # Last resort: checked to be ours and 0700 before use, so a squatter's directory is refused.
    return f"/tmp/{APP}-{os.getuid()}"  # noqa: S108
