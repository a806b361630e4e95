"""What the daemon does for a tool refused as locked, and how often (``core.attention``): pure, on a fake clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from govuk_imds.core.attention import REMIND_EVERY, Action, Reminders, client_label, locked_notice, response
from tests.support.clock import FakeClock


def test_one_reminder_per_environment_per_interval() -> None:
    clock = FakeClock()
    reminders = Reminders()
    assert reminders.due("production", clock.now())
    assert not any(reminders.due("production", clock.now()) for _ in range(1000))
    assert reminders.due("staging", clock.now())  # each environment has its own interval
    clock.advance(REMIND_EVERY - timedelta(seconds=1))
    assert not reminders.due("production", clock.now())
    clock.advance(timedelta(seconds=1))
    assert reminders.due("production", clock.now())
    assert not reminders.due("production", clock.now())


def test_a_clock_that_jumped_back_does_not_silence_reminders_for_ever() -> None:
    clock = FakeClock()
    reminders = Reminders()
    assert reminders.due("production", clock.now())
    clock.jump_to(clock.now() - timedelta(hours=2))
    assert reminders.due("production", clock.now())


@pytest.mark.parametrize(
    ("mode", "fresh_code", "action", "mfa_process"),
    [
        ("notify", False, Action.NOTIFY, False),
        ("notify", True, Action.NOTIFY, False),
        ("gui", False, Action.PROMPT, True),
        ("gui", True, Action.PROMPT, False),  # a person types: mfa_process might need nobody
        ("off", False, Action.NOTHING, False),
    ],
)
def test_what_is_done_per_mode(mode: str, fresh_code: bool, action: Action, mfa_process: bool) -> None:
    wanted = response(mode, fresh_code)
    assert (wanted.action, wanted.mfa_process) == (action, mfa_process)


def test_the_notice_names_the_environment_the_tool_and_the_command() -> None:
    summary, body = locked_notice("production", client_label("aws-cli/1.32.0 md/Botocore#1.34.0 ua/2.0"))
    assert summary == "govuk-imds: production is locked"
    assert body == ("aws-cli/1.32.0 was refused production's credentials. Unlock it in a terminal: "
                    "govuk-imds unlock production")
    assert locked_notice("staging", client_label(None))[1].startswith("A tool was refused staging's credentials.")
    assert client_label("x" * 500) == "x" * 60
