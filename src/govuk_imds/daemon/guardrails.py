"""The guard-rails on the request path, once the token is right: who is calling, whether the environment's
``deny_callers`` refuses them, and an audit record of every answer.

``Guardrails.visit`` runs before the answer: it starts (or reuses, on a keep-alive connection) the lookup of the
calling process and waits for it within the budget (``callers.Budget``). An environment with ``deny_callers``
refuses a caller it cannot identify within that budget (see docs/design.md, "Guard-rails", for why failing closed
is right there); one without answers anyway, and its record is written when the lookup ends.
``Guardrails.finish`` writes the record once the answer is known. With auditing off and no ``deny_callers``,
nothing is looked up.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from ..core.callers import Caller, refusal
from ..core.clock import Clock
from ..core.guards import Guards
from .audit import AuditTrail
from .callers import Budget, CallerFinder, settle


class Guardrails:
    def __init__(
        self,
        finder: CallerFinder,
        trail: AuditTrail,
        clock: Clock,
        *,
        guards_for: Callable[[str], Guards],
        setting_for: Callable[[str], str],
        role_of: Callable[[str], str | None],
        budget: Budget | None = None,
    ) -> None:
        self._finder = finder
        self.trail = trail
        self._clock = clock
        self._guards_for = guards_for
        self._setting_for = setting_for
        self._role_of = role_of
        self._budget = budget or Budget()

    async def visit(self, transport: asyncio.BaseTransport | None, environment: str,
                    user_agent: str | None) -> Visit:
        deny = self._guards_for(environment).deny_callers
        if not deny and not self.trail.enabled:
            return Visit(environment, user_agent, None, None, None)
        lookup = self._finder.lookup(transport)
        budget = self._budget.deny if deny else self._budget.audit
        # A keep-alive request finds its connection's lookup done: no need to wait, or to make a coroutine.
        caller = lookup.result() if lookup.done() and not lookup.cancelled() else await settle(lookup, budget)
        refused = None
        if deny:
            judged = caller or Caller(problem=f"the search for it took longer than {budget * 1000:.0f} ms")
            refused = _verdict(environment, deny, judged, self._setting_for(environment))
        return Visit(environment, user_agent, lookup, caller, refused)

    def finish(self, visit: Visit, status: int, reason: str | None) -> None:
        """Record the answer given to ``visit`` (``reason``: an error answer's message)."""
        if not self.trail.enabled:
            return
        at, lookup, caller = self._clock.now(), visit.lookup, visit.caller
        if caller is None and lookup is not None:
            if not lookup.done():
                # Answered within the budget before the caller was found: record it when the search ends.
                lookup.add_done_callback(lambda done: self._record(visit, at, status, reason, _result(done), True))
                return
            caller = _result(lookup)
        self._record(visit, at, status, reason, caller, False)

    def _record(self, visit: Visit, at: datetime, status: int, reason: str | None, caller: Caller | None,
                late: bool) -> None:
        self.trail.record(at=at, environment=visit.environment, role=self._role_of(visit.environment),
                          status=status, caller=caller, user_agent=visit.user_agent, reason=reason, late=late)


class Visit(NamedTuple):
    """One request's passage through the guard-rails: ``refusal`` is the 403's message when the caller is denied."""

    environment: str
    user_agent: str | None
    lookup: asyncio.Future[Caller] | None
    caller: Caller | None
    refusal: str | None


@functools.lru_cache(maxsize=128)
def _verdict(environment: str, deny: tuple[str, ...], caller: Caller, setting: str) -> str | None:
    """``refusal``, judged once per caller: every keep-alive request of a connection has the same one."""
    return refusal(environment, deny, caller, setting)


def _result(lookup: asyncio.Future[Caller]) -> Caller | None:
    return None if lookup.cancelled() else lookup.result()
