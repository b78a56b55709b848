"""Freshness conditions: how old a check's data is, in working hours of its agency.

A probe dates the data (:class:`npsp_common.types.DataTime`: a JSON field of an ``http`` or
``api`` answer, the last push of a ``heartbeat``); only the daemon knows the calendar, so it
judges the age here, before the result reaches the votes and the state machine. The age counts
the agency's working hours (its own hours if the calendar gives them, the country's public
holidays and swapped working Saturdays): a province that sends nothing over the weekend is not
stale on Monday at 08:05, and one silent since Thursday 10:00 is stale with a limit of
8 working hours by Friday 10:00.

Stale data makes the result degraded or failing, as the condition's ``severity`` says; a result
that already failed keeps its own reason. The age is on the result too
(``npsp_data_age_working_hours``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from npsp_common.types import Freshness, ProbeResult, Why
from probes.reasons import english, why

from .registry import CheckEntry
from .workdays import MAX_SCAN_DAYS, WorkCalendar

__all__ = ["FreshnessJudge", "freshness_of"]

# Older data is stale whatever the limit; counting back further would scan years of days.
_LOOKBACK = (MAX_SCAN_DAYS - 2) * 86400.0


def freshness_of(entry: CheckEntry) -> Freshness | None:
    """The check's freshness condition, if its kind has one and it is set."""
    found = getattr(entry.spec, "freshness", None)
    return found if isinstance(found, Freshness) else None


class FreshnessJudge:
    """Judges dated results with the running calendar (``calendar()``: it changes on reload)."""

    def __init__(self, calendar: Callable[[], WorkCalendar]) -> None:
        self._calendar = calendar

    def age(self, at: float, now: float, agency: str) -> float:
        """Working hours of ``agency`` from ``at`` to ``now`` (0 for a time in the future)."""
        start = max(min(at, now), now - _LOOKBACK)
        return self._calendar().working_hours_between(start, now, agency)

    def judge(self, entry: CheckEntry, result: ProbeResult, now: float) -> ProbeResult:
        """``result`` with its data's age, made degraded or failing when the data is stale."""
        data = result.data
        condition = freshness_of(entry)
        if data is None or condition is None:
            return result
        age = round(self.age(data.at, now, entry.agency), 3)
        dated = dataclasses.replace(result, data=dataclasses.replace(data, age_working_hours=age))
        if age <= condition.max_working_hours or not result.ok:
            return dated
        reason = _stale(condition, age, data.at, since_start=data.since_start)
        if condition.severity == "down":
            return dataclasses.replace(
                dated, ok=False, reason=english(reason), why=reason, degraded=False
            )
        if result.degraded:
            return dated  # already degraded: its first warning stays the reason
        return dataclasses.replace(dated, reason=english(reason), why=reason, degraded=True)


def _stale(condition: Freshness, age: float, at: float, *, since_start: bool) -> Why:
    limit = condition.max_working_hours
    if condition.path is not None:
        return why("data.stale", path=condition.path, age=age, limit=limit, at=at)
    if since_start:
        return why("data.stale_since_start", age=age, limit=limit, at=at)
    return why("data.stale_push", age=age, limit=limit, at=at)
