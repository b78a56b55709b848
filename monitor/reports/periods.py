"""The periods a report covers besides the month: the ISO week (Monday 00:00 to the next Monday
00:00, Vietnam's time), named ``YYYY-Www``; and the period before a moment, which a scheduled
report covers. Pure: no clock, no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from .figures import month_bounds
from .model import TZ, Report, ReportError

__all__ = ["Period", "PeriodKind", "agency_report", "parse_period", "previous_period"]

PeriodKind = Literal["month", "week"]
_MONTH = re.compile(r"\d{4}-\d{2}")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")


@dataclass(frozen=True, slots=True)
class Period:
    """``[starts, ends)`` in epoch seconds, and its name (``2026-01``, ``2026-W05``)."""

    kind: PeriodKind
    label: str
    starts: float
    ends: float


def _week(year: int, week: int) -> Period:
    try:
        monday = dt.date.fromisocalendar(year, week, 1)
    except ValueError:
        text = f"invalid week {year}-W{week:02d}: write YYYY-Www, e.g. 2026-W05"
        raise ReportError(text) from None
    start = dt.datetime.combine(monday, dt.time(), tzinfo=TZ)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), tzinfo=TZ)
    return Period("week", f"{year}-W{week:02d}", start.timestamp(), end.timestamp())


def parse_period(label: str) -> Period:
    """A month (``YYYY-MM``) or an ISO week (``YYYY-Www``); :class:`ReportError` otherwise."""
    if _MONTH.fullmatch(label):
        starts, ends = month_bounds(label)
        return Period("month", label, starts, ends)
    found = _WEEK.fullmatch(label)
    if found is None:
        raise ReportError(f"invalid period {label!r}: write YYYY-MM (a month) or YYYY-Www (a week)")
    return _week(int(found[1]), int(found[2]))


def previous_period(kind: PeriodKind, moment: float) -> Period:
    """The month or week before the one holding ``moment`` (Vietnam's time)."""
    day = dt.datetime.fromtimestamp(moment, TZ).date()
    if kind == "month":
        last = day.replace(day=1) - dt.timedelta(days=1)
        return parse_period(f"{last.year:04d}-{last.month:02d}")
    year, week, _ = (day - dt.timedelta(days=7)).isocalendar()
    return _week(year, week)


def agency_report(report: Report, agency: str) -> Report | None:
    """The part of ``report`` about one agency (its totals are the agency's); None if the
    report has no such agency."""
    found = next((a for a in report.agencies if a.id == agency), None)
    if found is None:
        return None
    return Report(
        month=report.month,
        starts=report.starts,
        ends=report.ends,
        until=report.until,
        generated_at=report.generated_at,
        agencies=(found,),
        totals=found.figures,
        agency=agency,
        senior_rights=tuple(r for r in report.senior_rights if r.agency == agency),
    )
