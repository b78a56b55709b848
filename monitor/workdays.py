"""The working-day calendar: notice periods in working days and SLA clocks in working hours.

Rules (PRODUCT.md, "Working days — the counting rules"):

* Working days are Monday–Friday, minus Vietnamese public holidays (the ``holidays`` package,
  country VN), minus configured extra days off, plus configured make-up working days (swapped
  Saturdays). The government's yearly swaps are configuration, because the package lags behind.
* A notice in working days counts the working days strictly after the local day of the
  announcement and strictly before the local day the change takes effect.
* An SLA of N working hours counts only time inside working hours on working days.

Every deadline value is configuration labelled with its legal source (:class:`Rules`).
Everything here is pure and deterministic: no clock is read, no I/O is done.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays.countries.vietnam import Vietnam
from pydantic import BeforeValidator, Field, field_validator, model_validator

from npsp_common.types import StrictModel

__all__ = [
    "DEFAULT_EXTRA_DAYS_OFF",
    "DEFAULT_EXTRA_WORKING_DAYS",
    "DEFAULT_WORKING_HOURS",
    "MAX_SCAN_DAYS",
    "CalendarSettings",
    "DayEntry",
    "DayInfo",
    "Notice",
    "Rule",
    "Rules",
    "WorkCalendar",
]

#: Upper bound on the number of days any single computation scans (about ten years).
MAX_SCAN_DAYS = 3700

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _parse_time(value: object) -> object:
    """Refuse bare numbers: YAML 1.1 reads an unquoted ``13:00`` as the integer 780."""
    if isinstance(value, bool | int | float):
        raise ValueError(
            f'time {value!r} is a number: write times as quoted strings such as "13:00" '
            "(YAML reads an unquoted 13:00 as the sexagesimal number 780)"
        )
    return value


ClockTime = Annotated[dt.time, BeforeValidator(_parse_time)]
Span = tuple[ClockTime, ClockTime]

DEFAULT_WORKING_HOURS: list[tuple[dt.time, dt.time]] = [
    (dt.time(8, 0), dt.time(12, 0)),
    (dt.time(13, 0), dt.time(17, 0)),
]


def _check_spans(spans: list[tuple[dt.time, dt.time]], what: str) -> list[tuple[dt.time, dt.time]]:
    if not spans:
        raise ValueError(f"{what}: at least one span of working hours is needed")
    previous_end: dt.time | None = None
    for start, end in spans:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"{what}: write times without an offset; the calendar has a timezone")
        if start >= end:
            raise ValueError(f"{what}: span {start:%H:%M}–{end:%H:%M} must start before it ends")
        if previous_end is not None and start < previous_end:
            raise ValueError(
                f"{what}: span starting {start:%H:%M} overlaps the previous span ending "
                f"{previous_end:%H:%M} (spans must be sorted and must not overlap)"
            )
        previous_end = end
    return spans


class DayEntry(StrictModel):
    """A configured day off or make-up working day, with where it was decided."""

    date: dt.date
    reason: str = Field(min_length=1)


class Rule(StrictModel):
    """A deadline, labelled with its legal source."""

    value: int = Field(ge=0)
    unit: Literal["working_days", "working_hours"]
    source: str = Field(min_length=1)


class Rules(StrictModel):
    """The deadlines the monitor checks (QĐ 31/2021/QĐ-TTg; check against QĐ 29/2026/QĐ-TTg)."""

    secure_server_change_notice: Rule = Rule(
        value=3, unit="working_days", source="QĐ 31/2021/QĐ-TTg, Chương VII"
    )
    maintenance_notice: Rule = Rule(
        value=5, unit="working_days", source="QĐ 31/2021/QĐ-TTg, Điều 52 khoản 2"
    )
    incident_sla: Rule = Rule(
        value=8, unit="working_hours", source="QĐ 31/2021/QĐ-TTg, Điều 52 khoản 1"
    )


#: Public-sector swaps for 2025–2026 (shared/data/agencies-vn.yaml, ``calendar.overrides``).
#: holidays 0.109 already has 2025-05-02 and 2026-08-31; repeating them is harmless.
DEFAULT_EXTRA_DAYS_OFF: list[DayEntry] = [
    DayEntry(date=dt.date(2025, 5, 2), reason="swap with 2025-04-26"),
    DayEntry(date=dt.date(2026, 1, 2), reason="12729/VPCP-KGVX 25/12/2025; swap with 2026-01-10"),
    DayEntry(date=dt.date(2026, 8, 31), reason="TB 9441/TB-BNV 16/10/2025; swap with 2026-08-22"),
]
#: holidays 0.109 already has 2025-04-26 and 2026-08-22; it lacks 2026-01-10.
DEFAULT_EXTRA_WORKING_DAYS: list[DayEntry] = [
    DayEntry(
        date=dt.date(2025, 4, 26),
        reason="swap with 2025-05-02 (PM approval, 2025 holiday plan)",
    ),
    DayEntry(date=dt.date(2026, 1, 10), reason="12729/VPCP-KGVX 25/12/2025; make-up Saturday"),
    DayEntry(date=dt.date(2026, 8, 22), reason="TB 9441/TB-BNV 16/10/2025; make-up Saturday"),
]


class CalendarSettings(StrictModel):
    """The ``calendar:`` section of the daemon config.

    Note: giving ``extra_days_off`` or ``extra_working_days`` replaces the shipped list; copy the
    defaults you still need.
    """

    timezone: str = "Asia/Ho_Chi_Minh"
    working_hours: list[Span] = Field(default_factory=lambda: list(DEFAULT_WORKING_HOURS))
    extra_days_off: list[DayEntry] = Field(default_factory=lambda: list(DEFAULT_EXTRA_DAYS_OFF))
    extra_working_days: list[DayEntry] = Field(
        default_factory=lambda: list(DEFAULT_EXTRA_WORKING_DAYS)
    )
    agency_working_hours: dict[str, list[Span]] = {}
    rules: Rules = Rules()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Asia/Ho_Chi_Minh"
            ) from exc
        return value

    @field_validator("working_hours")
    @classmethod
    def _valid_hours(cls, value: list[tuple[dt.time, dt.time]]) -> list[tuple[dt.time, dt.time]]:
        return _check_spans(value, "working_hours")

    @field_validator("agency_working_hours")
    @classmethod
    def _valid_agency_hours(
        cls, value: dict[str, list[tuple[dt.time, dt.time]]]
    ) -> dict[str, list[tuple[dt.time, dt.time]]]:
        for agency, spans in value.items():
            if not agency.strip():
                raise ValueError("agency_working_hours: an agency id must not be empty")
            _check_spans(spans, f"agency_working_hours[{agency}]")
        return value

    @model_validator(mode="after")
    def _no_conflicting_days(self) -> CalendarSettings:
        for name, entries in (
            ("extra_days_off", self.extra_days_off),
            ("extra_working_days", self.extra_working_days),
        ):
            seen: set[dt.date] = set()
            for entry in entries:
                if entry.date in seen:
                    raise ValueError(f"{name}: {entry.date.isoformat()} is listed twice")
                seen.add(entry.date)
        both = {e.date for e in self.extra_days_off} & {e.date for e in self.extra_working_days}
        if both:
            dates = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(
                f"{dates} listed both in extra_days_off and in extra_working_days: "
                "a date is either a day off or a working day"
            )
        return self


@dataclass(frozen=True, slots=True)
class DayInfo:
    """Whether a date is a working day, and why."""

    date: dt.date
    working: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Working days counted strictly between the day announced and the day effective."""

    working_days: int
    days: list[dt.date]

    def meets(self, rule: Rule) -> bool:
        """Whether this notice satisfies a rule counted in working days."""
        if rule.unit != "working_days":
            raise ValueError(f"rule ({rule.source}) is counted in {rule.unit}, not working days")
        return self.working_days >= rule.value


class WorkCalendar:
    """Working days and working hours for Vietnamese public agencies."""

    def __init__(self, settings: CalendarSettings | None = None) -> None:
        self.settings = settings if settings is not None else CalendarSettings()
        self.tz = ZoneInfo(self.settings.timezone)
        self._holidays = self._make_holidays()
        self._min_year = max(int(self._holidays.start_year), dt.MINYEAR)
        self._max_year = min(int(self._holidays.end_year), dt.MAXYEAR)
        self._working = {e.date: e.reason for e in self.settings.extra_working_days}
        self._off = {e.date: e.reason for e in self.settings.extra_days_off}
        self._cache: dict[dt.date, DayInfo] = {}

    @staticmethod
    def _make_holidays() -> Vietnam:
        # Years expand lazily on lookup; Vietnamese names when the package has them.
        if "vi" in Vietnam.supported_languages:
            return Vietnam(language="vi")  # type: ignore[no-untyped-call]
        return Vietnam()  # type: ignore[no-untyped-call]  # pragma: no cover

    # ----------------------------------------------------------------- days

    def day(self, d: dt.date) -> DayInfo:
        """Whether ``d`` is a working day, with the reason."""
        if isinstance(d, dt.datetime):
            d = d.date()
        info = self._cache.get(d)
        if info is None:
            info = self._classify(d)
            self._cache[d] = info
        return info

    def _classify(self, d: dt.date) -> DayInfo:
        if d in self._working:
            return DayInfo(d, True, f"make-up working day: {self._working[d]}")
        if d in self._off:
            return DayInfo(d, False, self._off[d])
        if not self._min_year <= d.year <= self._max_year:
            raise ValueError(
                f"{d.isoformat()} is outside the years the holiday calendar covers "
                f"({self._min_year}–{self._max_year})"
            )
        # Membership expands the year, which also fills weekend_workdays for it.
        name = self._holidays.get(d)
        if name is not None:
            return DayInfo(d, False, str(name))
        if d in self._holidays.weekend_workdays:
            return DayInfo(d, True, "make-up working day (holidays package)")
        if d.weekday() >= 5:
            return DayInfo(d, False, f"weekend ({_WEEKDAY_NAMES[d.weekday()]})")
        return DayInfo(d, True, "working day")

    def is_working_day(self, d: dt.date) -> bool:
        return self.day(d).working

    def days(self, start: dt.date, end: dt.date) -> list[DayInfo]:
        """Every date from ``start`` to ``end`` inclusive."""
        if end < start:
            raise ValueError(
                f"the range ends ({end.isoformat()}) before it starts ({start.isoformat()})"
            )
        count = (end - start).days + 1
        if count > MAX_SCAN_DAYS:
            raise ValueError(f"a range of {count} days is longer than {MAX_SCAN_DAYS} days")
        return [self.day(start + dt.timedelta(days=i)) for i in range(count)]

    # --------------------------------------------------------------- notice

    def local(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` in the calendar's time zone; a naive datetime is taken as local time."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            return moment.replace(tzinfo=self.tz)
        return moment.astimezone(self.tz)

    def notice(self, announced: dt.datetime, effective: dt.datetime) -> Notice:
        """Working days strictly after the day announced and strictly before the day effective."""
        a, e = self.local(announced), self.local(effective)
        if e < a:
            raise ValueError(
                f"the change takes effect ({e.isoformat()}) before it was announced "
                f"({a.isoformat()})"
            )
        first, last = a.date() + dt.timedelta(days=1), e.date() - dt.timedelta(days=1)
        if last < first:
            return Notice(0, [])
        counted = [info.date for info in self.days(first, last) if info.working]
        return Notice(len(counted), counted)

    # -------------------------------------------------------- working hours

    def _spans(self, agency: str | None) -> list[tuple[dt.time, dt.time]]:
        if agency is not None and agency in self.settings.agency_working_hours:
            return list(self.settings.agency_working_hours[agency])
        return list(self.settings.working_hours)

    def _day_spans(
        self, d: dt.date, spans: list[tuple[dt.time, dt.time]]
    ) -> list[tuple[float, float]]:
        """Working spans of ``d`` as epoch seconds (empty on a day off)."""
        if not self.day(d).working:
            return []
        return [
            (
                dt.datetime.combine(d, s, tzinfo=self.tz).timestamp(),
                dt.datetime.combine(d, e, tzinfo=self.tz).timestamp(),
            )
            for s, e in spans
        ]

    def _local_date(self, ts: float) -> dt.date:
        return dt.datetime.fromtimestamp(ts, self.tz).date()

    def _dates_from(self, first: dt.date) -> Iterator[dt.date]:
        for i in range(MAX_SCAN_DAYS):
            yield first + dt.timedelta(days=i)

    def _to_ts(self, moment: float | dt.datetime) -> float:
        if isinstance(moment, dt.datetime):
            return self.local(moment).timestamp()
        if isinstance(moment, bool) or not math.isfinite(moment):
            raise ValueError(f"invalid moment {moment!r}")
        return float(moment)

    def _due_ts(self, start_ts: float, hours: float, agency: str | None) -> float:
        if isinstance(hours, bool) or not math.isfinite(hours) or hours < 0:
            raise ValueError(f"hours must be a finite number ≥ 0, not {hours!r}")
        spans = self._spans(agency)
        remaining = hours * 3600.0
        # Spans never cross midnight, so the scan starts at the local date of the start.
        for d in self._dates_from(self._local_date(start_ts)):
            for span_start, span_end in self._day_spans(d, spans):
                if span_end < start_ts:
                    continue
                begin = max(span_start, start_ts)
                available = span_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        raise ValueError(f"{hours} working hours do not fit in {MAX_SCAN_DAYS} days from the start")

    def add_working_hours(self, start: float, hours: float, agency: str | None = None) -> float:
        """Epoch seconds when ``hours`` working hours from epoch ``start`` end.

        Satisfies the alert pipeline's ``WorkingTime`` protocol.
        """
        return self._due_ts(self._to_ts(start), hours, agency)

    def add_working_hours_ts(self, start_ts: float, hours: float) -> float:
        """Alias of :meth:`add_working_hours` (epoch seconds in and out)."""
        return self.add_working_hours(start_ts, hours)

    def due(self, start: dt.datetime, hours: float, agency: str | None = None) -> dt.datetime:
        """When an ``hours``-working-hour clock started at ``start`` ends (aware, local time).

        The result always lies inside working hours on a working day; the end of a span counts
        as inside (16:00 + 1 h is 17:00 the same day, not 08:00 the next morning).
        """
        due_ts = self._due_ts(self._to_ts(start), hours, agency)
        return dt.datetime.fromtimestamp(due_ts, self.tz)

    def working_hours_between(
        self, start: float | dt.datetime, end: float | dt.datetime, agency: str | None = None
    ) -> float:
        """Working hours from ``start`` to ``end`` (the inverse of :meth:`due`)."""
        start_ts, end_ts = self._to_ts(start), self._to_ts(end)
        if end_ts < start_ts:
            raise ValueError("the end of the interval is before its start")
        last = self._local_date(end_ts)
        first = self._local_date(start_ts)
        if (last - first).days + 1 > MAX_SCAN_DAYS:
            raise ValueError(f"an interval longer than {MAX_SCAN_DAYS} days")
        spans = self._spans(agency)
        total = 0.0
        for d in self._dates_from(first):
            if d > last:
                break
            for span_start, span_end in self._day_spans(d, spans):
                overlap = min(span_end, end_ts) - max(span_start, start_ts)
                if overlap > 0:
                    total += overlap
        return total / 3600.0

    def is_working_time(self, moment: float | dt.datetime, agency: str | None = None) -> bool:
        """Whether ``moment`` lies inside working hours (span ends included) on a working day."""
        ts = self._to_ts(moment)
        return any(
            s <= ts <= e for s, e in self._day_spans(self._local_date(ts), self._spans(agency))
        )
