"""Where the console's sign-in goes: AWS's us-east-1 host, or an emulator our own config names (https, or loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from govuk_imds.aws.endpoints import signin_url
from govuk_imds.config.paths import RuntimePaths
from govuk_imds.config.settings import Settings
from govuk_imds.errors import ConfigError


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, "https://us-east-1.signin.aws.amazon.com"),
        ("https://signin.example/", "https://signin.example"),
        ("http://127.0.0.1:5002", "http://127.0.0.1:5002"),
        ("http://localhost:5002/", "http://localhost:5002"),
        ("http://[::1]:5002", "http://[::1]:5002"),
        ("http://signin.example", None),  # a sign-in token in plain HTTP off this machine
        ("ftp://127.0.0.1", None),
        ("https://signin.example/?x=1", None),
        ("https://", None),
    ],
)
def test_the_signin_url_is_https_or_loopback(tmp_path: Path, configured: str | None, expected: str | None) -> None:
    settings = Settings(config_file=tmp_path / "config.toml", runtime=RuntimePaths(tmp_path), aws_config_file=tmp_path,
                        signin_endpoint_url=configured)
    if expected is None:
        with pytest.raises(ConfigError, match=f"{tmp_path}/config.toml: signin.endpoint_url must be"):
            signin_url(settings)
    else:
        assert signin_url(settings) == expected
