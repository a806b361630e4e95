"""The order MFA codes are looked for in, and what each source does when it has none or fails."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from govuk_imds.codes.configured import ConfiguredCommand
from govuk_imds.codes.sources import Command, Dialog, Given, Piped, read_code
from govuk_imds.errors import CodeSourceFailed, InvalidInput, PromptCancelled


class Recording:
    def __init__(self, code: str | None, why_not: str = "nothing here") -> None:
        self.value = code
        self.why_not = why_not
        self.asked = 0

    def code(self) -> str | None:
        self.asked += 1
        return self.value


def test_the_first_source_with_a_code_wins_and_the_rest_are_not_asked() -> None:
    empty, full, later = Recording(None), Recording("123456"), Recording("654321")
    assert read_code([empty, full, later], "fix") == "123456"
    assert (empty.asked, full.asked, later.asked) == (1, 1, 0)


def test_when_no_source_has_one_the_line_says_why_for_each() -> None:
    with pytest.raises(CodeSourceFailed) as failed:
        read_code([Recording(None, "stdin is empty"), Recording(None, "there is no terminal")], "pass --code")
    assert str(failed.value) == "no MFA code to use: stdin is empty; there is no terminal; pass --code"


def test_given_and_piped_codes_are_checked() -> None:
    assert Given(" 123456 ").code() == "123456"
    with pytest.raises(InvalidInput):
        Given("12ab56").code()
    assert Piped(io.StringIO("123456\n"), "example").code() == "123456"
    assert Piped(io.StringIO(""), "example").code() is None  # an empty stdin (a service, < /dev/null) has none
    with pytest.raises(CodeSourceFailed) as refused:
        Piped(io.StringIO("two words\n"), "example").code()
    assert str(refused.value) == "stdin did not hold a six-digit MFA code; pipe in the code alone, e.g. `example`"


def test_a_source_that_is_there_and_fails_is_not_passed_over(tmp_path: Path) -> None:
    after = Recording("123456")
    broken = Command(ConfiguredCommand(str(tmp_path / "absent"), "config.toml"), 5, lambda: None, "type it")
    with pytest.raises(CodeSourceFailed):
        read_code([broken, after], "fix")
    assert after.asked == 0


def test_no_terminal_means_the_terminal_has_no_code() -> None:
    # The tests run in a session of their own under CI; here, make sure by asking in a child without one.
    import subprocess
    import sys

    asked = subprocess.run(
        [sys.executable, "-c", "from govuk_imds.codes.sources import Terminal; print(Terminal('serial').code())"],
        capture_output=True, text=True, timeout=30, start_new_session=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert asked.stdout.strip() == "None", asked.stderr


def zenity(tmp_path: Path, *answers: str) -> dict[str, str]:
    """A stand-in zenity that answers each call with the next line of ``answers`` (``cancel``: exit 1)."""
    (tmp_path / "answers").write_text("\n".join(answers) + "\n")
    program = tmp_path / "zenity"
    program.write_text(f"""#!/bin/sh
echo "$@" >> {tmp_path}/argv
answer=$(head -1 {tmp_path}/answers); sed -i 1d {tmp_path}/answers
[ "$answer" = cancel ] && exit 1
[ "$answer" = hang ] && exec sleep 60
echo "$answer"
""")
    program.chmod(0o755)
    return {"DISPLAY": ":99", "PATH": f"{tmp_path}:/usr/bin:/bin"}


def dialog(environ: dict[str, str], timeout: float = 10) -> Dialog:
    return Dialog("production", timeout, environ, "govuk-imds unlock production")


def test_the_gui_prompt_asks_again_after_something_that_is_not_six_digits(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    environ = zenity(tmp_path, "abc", "123456")
    monkeypatch.setenv("PATH", environ["PATH"])
    assert dialog(environ).code() == "123456"
    first, second = (tmp_path / "argv").read_text().splitlines()
    assert "--text=MFA code for production" in first
    assert "--text=That was not six digits. MFA code for production" in second


def test_a_cancelled_or_unanswered_gui_prompt_says_the_environment_stays_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = zenity(tmp_path, "cancel", "hang")
    monkeypatch.setenv("PATH", environ["PATH"])
    with pytest.raises(PromptCancelled) as cancelled:
        dialog(environ).code()
    assert str(cancelled.value) == ("the prompt for the MFA code was cancelled; production stays locked "
                                    "(`govuk-imds unlock production` asks again)")
    with pytest.raises(PromptCancelled, match="was not answered within 1 s; production stays locked"):
        dialog(environ, timeout=1).code()


def test_no_display_means_the_gui_prompt_has_no_code() -> None:
    assert dialog({}).code() is None
