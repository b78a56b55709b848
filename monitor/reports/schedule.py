"""The scheduled reports' desk: at each tick of the rules desks (on the daemon's clock, on the
cluster's leader only: :func:`monitor.rules.desk.run_desks`), each enabled schedule's trigger
(:mod:`monitor.reports.triggers`) is asked for its last fire time at or before now; if that
fire's reports were not produced yet (the store says: ``report_runs``), they are produced and
queued (:class:`monitor.reports.produce.Producer`).

**Misfires.** A fire missed while the daemon was down is caught at the next start, once: only
the most recent fire is looked at, and only if it is at most ``reports.grace`` old (default 3
days); an older one is skipped and logged. Never twice: the ``report_runs`` row and the
messages are one transaction, its key unique per (schedule, period, scope). A fire before the
database held any monitoring is not caught up either: a new install does not open with the
report of a month it did not watch.

**The periods of a fire.** A fire reports on the month or week before the one it falls in, and
on any earlier one that no fire covered since the previous fire: a week wholly off (Tết) has no
working day to send its predecessor's report on, so the Monday after Tết sends both weeks'.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from apscheduler.triggers.base import BaseTrigger

from notifiers.base import ChannelName

from ..config.reports import ReportSchedule, ReportsSettings
from ..rules.desk import RulesContext
from ..workdays import WorkCalendar
from . import runs_store
from .model import ReportError
from .periods import Period, PeriodKind, previous_period
from .produce import Producer
from .triggers import last_fire, trigger_of

log = logging.getLogger(__name__)

__all__ = ["MAX_CATCH_UP", "ReportDesk", "periods_of"]

#: Periods one fire reports on at most (itself and those no fire covered).
MAX_CATCH_UP = 4
#: How far back a fire is looked for beyond the grace (to log one that is skipped).
_LOOKBACK = 45 * 86400.0
#: After a failed attempt (the database away), the next one waits this long.
RETRY_AFTER = 60.0


def periods_of(kind: PeriodKind, fired: float, previous: float | None) -> list[Period]:
    """The periods a fire at ``fired`` reports on, oldest first: the one before it, and those
    before that which the ``previous`` fire (None: none) did not cover."""
    latest = previous_period(kind, fired)
    covered = -float("inf") if previous is None else previous_period(kind, previous).ends
    out = [latest]
    while len(out) < MAX_CATCH_UP:
        earlier = previous_period(kind, out[-1].starts)
        if earlier.starts < covered:
            break
        out.append(earlier)
    return out[::-1]


@dataclass
class _Plan:
    """A schedule's trigger, as built for one version of its settings and the calendar."""

    schedule: ReportSchedule
    calendar: WorkCalendar
    trigger: BaseTrigger
    done_until: float = 0.0  # nothing to do before this (the next fire, or a retry)


class ReportDesk:
    """Produces the scheduled reports when due (a :class:`monitor.rules.desk.Desk`)."""

    def __init__(
        self,
        ctx: RulesContext,
        producer: Producer,
        settings: Callable[[], ReportsSettings],
    ) -> None:
        self.ctx = ctx
        self.producer = producer
        self.settings = settings
        self._plans: dict[str, _Plan] = {}
        self._last_run: int | None = None  # the newest report_runs id seen by refresh()

    async def refresh(self) -> None:
        """Each fire asks the store; here, only whether another process (``npsp-monitor
        report send --now``, another host) produced a report since the last look: its messages
        are in the outbox, and the outbox is woken for them rather than after its idle wait
        (up to a minute)."""
        last = await self.ctx.store.transact(runs_store.last_id)
        if self._last_run is not None and last > self._last_run:
            for channel in get_args(ChannelName):
                self.producer.wake(channel)
        self._last_run = last

    def _plan(self, name: str, schedule: ReportSchedule) -> _Plan:
        plan = self._plans.get(name)
        calendar = self.ctx.calendar
        if plan is None or plan.schedule is not schedule or plan.calendar is not calendar:
            plan = _Plan(schedule, calendar, trigger_of(schedule.trigger, calendar))
            self._plans[name] = plan  # a reload: looked at afresh
        return plan

    async def tick(self, now: float) -> None:
        settings = self.settings()
        for name, schedule in settings.schedules.items():
            if not schedule.enabled:
                continue
            plan = self._plan(name, schedule)
            if now < plan.done_until:
                continue
            try:
                await self._run(name, plan, now, settings.grace)
            except Exception:
                plan.done_until = now + RETRY_AFTER
                raise
            upcoming = plan.trigger.get_next_fire_time(
                None, dt.datetime.fromtimestamp(now, dt.UTC) + dt.timedelta(microseconds=1)
            )
            plan.done_until = float("inf") if upcoming is None else upcoming.timestamp()

    async def _run(self, name: str, plan: _Plan, now: float, grace: float) -> None:
        fired = last_fire(plan.trigger, now, grace + _LOOKBACK)
        if fired is None:
            return
        kind = plan.schedule.period
        watched = await self.ctx.store.transact(lambda db: runs_store.monitored_before(db, fired))
        if not watched:
            log.info(
                "scheduled report not made: nothing was monitored before its time",
                extra={"schedule": name, "period": previous_period(kind, fired).label},
            )
            return
        if now - fired > grace:
            log.warning(
                "scheduled report skipped: its time passed while the daemon was not running,"
                " longer ago than reports.grace",
                extra={"schedule": name, "period": previous_period(kind, fired).label},
            )
            return
        previous = last_fire(plan.trigger, fired - 1.0, _LOOKBACK)
        for period in periods_of(kind, fired, previous):
            try:
                outcome = await self.producer.produce(name, plan.schedule, period, fired, now)
            except ReportError as exc:  # a period not begun: a schedule that makes no sense
                log.warning("scheduled report not made: %s", exc, extra={"schedule": name})
                continue
            if outcome.already and not outcome.produced:
                log.debug("scheduled report %s %s: produced already", name, period.label)
