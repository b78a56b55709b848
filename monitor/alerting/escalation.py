"""Escalation: an incident nobody acknowledged within N working hours goes up a level.

Level 1 goes to the agency's high-level admins, level 2 to the Government Office operations team.
Working hours and acknowledgements arrive with the working-day rules; until then they sit behind
two small interfaces with plain defaults (office hours Monday-Friday without holidays; nothing
acknowledged).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

from .settings import Target

LEVELS: tuple[Target, ...] = ("high-level-admins", "operations")


class WorkingTime(Protocol):
    """Adds working hours to a moment."""

    def add_working_hours(self, start: float, hours: float) -> float: ...


class Acknowledgements(Protocol):
    """Says whether someone took charge of an incident."""

    def acknowledged(self, incident: str) -> bool: ...


class NoAcknowledgements:
    """Until incidents can be acknowledged, none is."""

    def acknowledged(self, incident: str) -> bool:
        del incident
        return False


class OfficeHours:
    """08:00-12:00 and 13:00-17:00, Monday to Friday, Asia/Ho_Chi_Minh; no holidays yet."""

    def __init__(
        self,
        spans: tuple[tuple[dt.time, dt.time], ...] = (
            (dt.time(8), dt.time(12)),
            (dt.time(13), dt.time(17)),
        ),
        tz: str = "Asia/Ho_Chi_Minh",
    ) -> None:
        self.spans = spans
        self.tz = ZoneInfo(tz)

    def add_working_hours(self, start: float, hours: float) -> float:
        left = dt.timedelta(hours=hours)
        moment = dt.datetime.fromtimestamp(start, self.tz)
        for _ in range(3660):  # ten years of days: a bound, never reached in practice
            if moment.weekday() < 5:
                for begin, end in self.spans:
                    span_start = moment.replace(
                        hour=begin.hour, minute=begin.minute, second=0, microsecond=0
                    )
                    span_end = moment.replace(
                        hour=end.hour, minute=end.minute, second=0, microsecond=0
                    )
                    lo = max(moment, span_start)
                    if lo >= span_end:
                        continue
                    if lo + left <= span_end:
                        return (lo + left).timestamp()
                    left -= span_end - lo
            moment = (moment + dt.timedelta(days=1)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
        raise ValueError("no working time found")
