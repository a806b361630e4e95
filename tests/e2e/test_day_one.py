"""Day one and every day, end to end: `init` reading the MFA device from IAM (moto), `status` naming each
environment's account and role, and the prompt segment in a real bash."""

from __future__ import annotations

from tests.support.world import ACCOUNTS, World


def test_status_shows_each_environments_account_and_role(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("staging").returncode == 0
    shown = world.cli("status")
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()[1:5]
    assert header.split()[:4] == ["ENVIRONMENT", "STATE", "ACCOUNT", "ROLE"]
    by_name = {row.split()[0]: row.split() for row in rows}
    assert by_name["staging"][1:4] == ["active", ACCOUNTS["staging"], "govuk-administrators"]
    assert by_name["production"][1:4] == ["locked", ACCOUNTS["production"], "govuk-administrators"]
