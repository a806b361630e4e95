"""Redaction of everything the daemon logs, and the library loggers pinned to WARNING."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator

import pytest

from govuk_imds.daemon.logs import NOISY_LIBRARIES, RedactingFormatter, configure, redact, redact_argv

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
TEMP_KEY_ID = "ASIAQWERTYUIOPASWXYZ"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEGx2h3bGlmZXRpbWVz+/Az" * 8 + "=="
MFA_CODE = "493817"


@pytest.mark.parametrize(("key_id", "last_four"), [(KEY_ID, "MPLE"), (TEMP_KEY_ID, "WXYZ")])
@pytest.mark.parametrize("template", ["{}", "key {} used", "AccessKeyId={}&x", '{{"AccessKeyId": "{}"}}', "<k>{}</k>"])
def test_key_ids_keep_only_their_last_four(key_id: str, last_four: str, template: str) -> None:
    text = template.format(key_id)
    redacted = redact(text)
    assert key_id not in redacted
    assert key_id[:-4] not in redacted
    assert f"…{last_four}" in redacted


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(SECRET, id="secret-access-key"),
        pytest.param(SESSION_TOKEN, id="session-token"),
        pytest.param(secrets.token_urlsafe(32), id="bearer-token"),  # 43 URL-safe characters
        pytest.param("Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0K0+/", id="secret-with-plus-and-slash"),
    ],
)
@pytest.mark.parametrize(
    "template",
    ["{}", "secret={}", '"SecretAccessKey": "{}"', "<SessionToken>{}</SessionToken>", "Authorization: {}\r\n"],
)
def test_secrets_and_tokens_are_removed(secret: str, template: str) -> None:
    redacted = redact(template.format(secret))
    assert secret not in redacted
    assert secret[:16] not in redacted
    assert secret[-16:] not in redacted
    assert "[redacted]" in redacted


@pytest.mark.parametrize(
    "text",
    [
        f"TokenCode={MFA_CODE}&Version=2011-06-15",
        f'{{"TokenCode": "{MFA_CODE}"}}',
        f"code {MFA_CODE} refused",
        f"({MFA_CODE})",
        MFA_CODE,
        f"AWS refused the code {MFA_CODE}.",
        f"TokenCode:{MFA_CODE}",
    ],
)
def test_six_digit_codes_are_removed(text: str) -> None:
    assert MFA_CODE not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25 16:04:05,123 INFO govuk_imds.daemon.app: listening on 127.0.0.1:9911",
        "serving production until 2026-11-25T16:04:05Z",
        "environments: integration, staging, production",
        "assumed arn:aws:iam::410987654321:role/govuk-administrators for account 410987654321",
        "retrying in 2.5 s (attempt 3 of 10)",
        "version 1.123456 of something",
        "pid 4242 port 9911",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


# -- configure() ----------------------------------------------------------------------------------------------------


@pytest.fixture
def pristine_logging() -> Iterator[None]:
    """configure() changes process-wide logging: put everything back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = [*NOISY_LIBRARIES, "govuk_imds", "botocore.endpoint", "urllib3.connectionpool", "aiohttp.access"]
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)


@pytest.mark.usefixtures("pristine_logging")
def test_library_loggers_are_pinned_to_warning_even_at_debug() -> None:
    stream = io.StringIO()
    configure("DEBUG", stream, {})
    assert logging.getLogger().level == logging.DEBUG
    for name in ("botocore", "urllib3", "aiohttp", "boto3", "botocore.endpoint", "urllib3.connectionpool"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    logging.getLogger("botocore.endpoint").debug("Response body: %s", SECRET)
    logging.getLogger("urllib3.connectionpool").info("GET /?TokenCode=%s", MFA_CODE)
    logging.getLogger("aiohttp.access").info("127.0.0.1 GET /v1/credentials/production 200")
    assert stream.getvalue() == ""
    logging.getLogger("botocore.endpoint").warning("retrying")
    assert "retrying" in stream.getvalue()


@pytest.mark.usefixtures("pristine_logging")
def test_debug_record_with_secrets_is_written_redacted() -> None:
    stream = io.StringIO()
    configure("DEBUG", stream, {})
    logging.getLogger("govuk_imds.daemon.service").debug(
        "got %s %s %s with code %s", TEMP_KEY_ID, SECRET, SESSION_TOKEN, MFA_CODE
    )
    written = stream.getvalue()
    assert "govuk_imds.daemon.service" in written
    assert "DEBUG" in written
    for secret in (TEMP_KEY_ID, SECRET, SESSION_TOKEN, MFA_CODE, SESSION_TOKEN[:20]):
        assert secret not in written
    assert "…WXYZ" in written


@pytest.mark.usefixtures("pristine_logging")
def test_tracebacks_are_redacted_too() -> None:
    stream = io.StringIO()
    configure("INFO", stream, {})
    try:
        raise ValueError(f"bad secret {SECRET}")
    except ValueError:
        logging.getLogger("govuk_imds").exception("failed")
    written = stream.getvalue()
    assert "Traceback" in written
    assert SECRET not in written


@pytest.mark.usefixtures("pristine_logging")
def test_root_level_is_honoured() -> None:
    stream = io.StringIO()
    configure("WARNING", stream, {})
    logging.getLogger("govuk_imds").info("quiet")
    logging.getLogger("govuk_imds").warning("loud")
    assert "quiet" not in stream.getvalue()
    assert "loud" in stream.getvalue()


@pytest.mark.usefixtures("pristine_logging")
def test_timestamps_only_outside_the_journal() -> None:
    plain, journal = io.StringIO(), io.StringIO()
    configure("INFO", plain, {})
    logging.getLogger("govuk_imds").info("hello")
    configure("INFO", journal, {"JOURNAL_STREAM": "8:12345"})
    logging.getLogger("govuk_imds").info("hello")
    assert journal.getvalue() == "INFO govuk_imds: hello\n"
    line = plain.getvalue()
    assert line.endswith(" INFO govuk_imds: hello\n")
    assert line[:4].isdigit()  # an asctime such as "2026-11-25 16:04:05,123", kept by the redactor


@pytest.mark.usefixtures("pristine_logging")
def test_configure_twice_does_not_duplicate_lines() -> None:
    stream = io.StringIO()
    configure("INFO", io.StringIO(), {})
    configure("INFO", stream, {})
    logging.getLogger("govuk_imds").info("once")
    assert stream.getvalue().count("once") == 1
    assert len(logging.getLogger().handlers) == 1


def test_redacting_formatter_on_its_own() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (KEY_ID,), None)
    assert RedactingFormatter("%(message)s").format(record) == "key …MPLE"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["aws", "configure", "set", "aws_secret_access_key", "short"],
         ["aws", "configure", "set", "aws_secret_access_key", "[redacted]"]),
        (["mysql", "--password", "hunter2"], ["mysql", "--password", "[redacted]"]),
        (["tool", "--api-key=abc123"], ["tool", "--api-key=[redacted]"]),
        (["env", "AWS_SESSION_TOKEN=abc", "terraform"], ["env", "AWS_SESSION_TOKEN=[redacted]", "terraform"]),
        (["curl", "-H", "Authorization: abc"], ["curl", "-H", "Authorization:[redacted]"]),
        (["git", "clone", "https://user:pw@example.com/r"], ["git", "clone", "https://[redacted]@example.com/r"]),
        (["govuk-imds", "unlock", "production", "--code", MFA_CODE],
         ["govuk-imds", "unlock", "production", "--code", "[redacted]"]),
        (["python3", SESSION_TOKEN], ["python3", "[redacted]"]),
        (["terraform", "plan", "-out", "plan.tfplan"], ["terraform", "plan", "-out", "plan.tfplan"]),
    ],
)
def test_a_command_line_loses_what_looks_like_a_secret(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected


def test_a_path_that_exists_is_kept_however_long() -> None:
    script = "/usr/lib/node_modules/npm/bin/npm-cli-that-is-long-enough.js"
    assert redact_argv(["node", script]) == ["node", "[redacted].js"]
    assert redact_argv(["node", script], keep=lambda argument: argument == script) == ["node", script]
    assert redact_argv(["--token", script], keep=lambda argument: True) == ["--token", "[redacted]"]
