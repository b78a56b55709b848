"""When a scheduled report is due: APScheduler's triggers for the calendar arithmetic — its
:class:`~apscheduler.triggers.cron.CronTrigger` in the calendar's time zone for a crontab line,
and :class:`NthWorkingDayTrigger` ("the Nth working day of the month or week at HH:MM") on the
working-day calendar — asked by :func:`last_fire` for the last time one fired at or before a
moment.

Only the triggers are used, never APScheduler's scheduler: its loop sleeps on the wall clock and
keeps what ran in its own job store, where the daemon needs a tick on its own injectable clock
(the tests move it across Tết), that runs on the cluster's leader only, and a record of what was
produced that several hosts share (the ``report_runs`` table, written with the messages). A
trigger is a pure function of a moment, so the desk asks it at each tick instead
(:mod:`monitor.reports.schedule`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from ..config.reports import TriggerSettings
from ..workdays import WorkCalendar

__all__ = ["MAX_PERIODS", "NthWorkingDayTrigger", "last_fire", "trigger_of"]

#: Months or weeks a trigger looks ahead for a fire time before it gives up (a week of six
#: days off, or a working_day 23 in a short month, is skipped; none for years is not).
MAX_PERIODS = 60


class NthWorkingDayTrigger(BaseTrigger):  # type: ignore[misc]  # untyped base
    """Fires at ``at`` (calendar time) on the ``n``-th working day of each month or week
    (``n`` = 1 the first, -1 the last). A period with fewer working days than ``|n|`` has no
    fire time."""

    __slots__ = ("at", "calendar", "n", "of")

    def __init__(
        self, calendar: WorkCalendar, n: int, of: Literal["month", "week"], at: dt.time
    ) -> None:
        if n == 0:
            raise ValueError("n counts from 1 (the first working day) or -1 (the last)")
        self.calendar = calendar
        self.n = n
        self.of = of
        self.at = at

    def _first_day(self, day: dt.date) -> dt.date:
        if self.of == "month":
            return day.replace(day=1)
        return day - dt.timedelta(days=day.weekday())

    def _next_first(self, first: dt.date) -> dt.date:
        if self.of == "month":
            return (first + dt.timedelta(days=32)).replace(day=1)
        return first + dt.timedelta(days=7)

    def working_day(self, first: dt.date) -> dt.date | None:
        """The ``n``-th working day of the month or week that begins on ``first``."""
        last = self._next_first(first) - dt.timedelta(days=1)
        days = [d.date for d in self.calendar.days(first, last) if d.working]
        index = self.n - 1 if self.n > 0 else self.n
        return days[index] if -len(days) <= index < len(days) else None

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        """The first fire time at or after ``now`` (and after ``previous_fire_time``)."""
        tz = self.calendar.tz
        first = self._first_day(now.astimezone(tz).date())
        for _ in range(MAX_PERIODS):
            day = self.working_day(first)
            if day is not None:
                fire = dt.datetime.combine(day, self.at, tzinfo=tz)
                if fire >= now and (previous_fire_time is None or fire > previous_fire_time):
                    return fire
            first = self._next_first(first)
        return None

    def __getstate__(self) -> dict[str, Any]:  # APScheduler's job stores pickle triggers
        return {"calendar": self.calendar.settings, "n": self.n, "of": self.of, "at": self.at}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.calendar = WorkCalendar(state["calendar"])
        self.n, self.of, self.at = state["n"], state["of"], state["at"]

    def __repr__(self) -> str:
        return f"NthWorkingDayTrigger(n={self.n}, of={self.of!r}, at={self.at:%H:%M})"


def trigger_of(settings: TriggerSettings, calendar: WorkCalendar) -> BaseTrigger:
    """The trigger a schedule's ``trigger:`` describes, in the calendar's time zone."""
    if settings.cron is not None:
        return CronTrigger.from_crontab(settings.cron, timezone=calendar.tz)
    assert settings.working_day is not None  # the config's validator ensures it
    return NthWorkingDayTrigger(calendar, settings.working_day, settings.of, settings.at)


def last_fire(trigger: BaseTrigger, now: float, lookback: float) -> float | None:
    """The last fire time (epoch seconds) in ``[now - lookback, now]``, if any.

    APScheduler 3 answers only "the next fire time from a moment": this walks forward from
    ``now - lookback`` (a few steps for a monthly or weekly trigger)."""
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    moment = at - dt.timedelta(seconds=lookback)
    fire: dt.datetime | None = trigger.get_next_fire_time(None, moment)
    last: dt.datetime | None = None
    while fire is not None and fire <= at:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(microseconds=1))
    return None if last is None else last.timestamp()
