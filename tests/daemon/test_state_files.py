"""The per-environment state files that prompt segments read: the service reports every unlock and lock (also the
ones it makes itself, at a session's end or on a refusal), and the files say exactly that, privately."""

from __future__ import annotations

import asyncio
import stat
from datetime import timedelta
from pathlib import Path

from govuk_imds.config.paths import RuntimePaths
from govuk_imds.core.clock import rfc3339
from govuk_imds.core.credentials import MfaSession
from govuk_imds.daemon.service import Service
from govuk_imds.daemon.state_files import StateFiles
from govuk_imds.errors import SessionRejected
from tests.daemon.test_service import MARGIN, spec
from tests.support.clock import FakeClock
from tests.support.fakes import ScriptedIssuer


def paths(tmp_path: Path) -> RuntimePaths:
    root = tmp_path / "run"
    root.mkdir(mode=0o700)
    return RuntimePaths(root)


def test_unlock_lock_and_the_end_of_a_session_are_written(tmp_path: Path) -> None:
    runtime = paths(tmp_path)
    states = StateFiles(runtime)

    async def scenario() -> None:
        clock = FakeClock()
        issuer = ScriptedIssuer(clock)
        service = Service(issuer, clock, rotation_margin=MARGIN, on_change=states.changed)
        service.set_environments({"production": spec("production"), "staging": spec("staging")})
        ends = clock.now() + timedelta(hours=2)
        session = MfaSession("ASIAMFA0000000000001", "m" * 40, "token", ends)
        await service.unlock(spec("production"), session, ends)
        assert runtime.environment_state("production").read_text() == (
            f"unlocked {int(ends.timestamp())} {rfc3339(ends)}\n"
        )
        assert not runtime.environment_state("staging").exists()  # never unlocked: no file, read as locked
        await service.lock("production")
        assert runtime.environment_state("production").read_text() == "locked\n"

        await service.unlock(spec("staging"), session, ends)
        assert runtime.environment_state("staging").read_text().startswith("unlocked ")
        clock.advance(timedelta(hours=2, seconds=1))
        await service.tick()  # the session has ended: the service locks it by itself
        assert runtime.environment_state("staging").read_text() == "locked\n"

        issuer.fail_with(SessionRejected("AccessDenied"))
        await service.unlock(spec("staging"), MfaSession("ASIAMFA0000000000002", "n" * 40, "t", ends + timedelta(
            hours=3)), clock.now() + timedelta(hours=1))
        assert runtime.environment_state("staging").read_text() == "locked\n"  # refused at once: never unlocked
        await service.close()

    asyncio.run(scenario())
    info = runtime.environment_state("production").stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(runtime.states_dir.stat().st_mode) == 0o700


def test_clear_forgets_every_environment_and_a_failed_write_is_only_logged(tmp_path: Path) -> None:
    runtime = paths(tmp_path)
    states = StateFiles(runtime)
    states.changed("production", None)
    states.changed("staging", None)
    states.clear()
    assert list(runtime.states_dir.iterdir()) == []
    runtime.states_dir.rmdir()
    runtime.states_dir.symlink_to(tmp_path)  # somebody planted a symlink: refused, and the daemon carries on
    states.changed("production", None)
    assert not (tmp_path / "production").exists()
