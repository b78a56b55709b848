"""The working-day calendar: Vietnamese holidays 2025–2027, swaps, notices, SLA clocks."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import yaml
from holidays.countries.vietnam import Vietnam
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.workdays import (
    MAX_SCAN_DAYS,
    CalendarSettings,
    DayEntry,
    Rule,
    Rules,
    WorkCalendar,
)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkCalendar(CalendarSettings())
D = dt.date


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ)


def off(d: dt.date) -> bool:
    return not CAL.day(d).working


# ------------------------------------------------------------------ calendar facts


@pytest.mark.parametrize(
    "day",
    [D(2025, 1, 27), D(2025, 1, 28), D(2025, 1, 29), D(2025, 1, 30), D(2025, 1, 31)]
    + [D(2025, 2, 1)]
    + [D(2026, 2, d) for d in range(16, 21)],
)
def test_tet_2025_2026_are_days_off(day: dt.date) -> None:
    assert off(day)


def test_tet_neighbours_are_working_days() -> None:
    assert CAL.day(D(2025, 2, 3)).working  # Monday after Tết 2025
    assert CAL.day(D(2026, 2, 13)).working  # Friday before Tết 2026
    assert CAL.day(D(2026, 2, 23)).working  # Monday after


def test_tet_2027_as_the_package_has_it() -> None:
    package = Vietnam(years=2027, language="vi")  # type: ignore[no-untyped-call]
    tet = sorted(d for d, name in package.items() if "Tết" in name and d.month == 2)
    # What holidays 0.109 says (29 Tết shifted to Thursday, mùng 4 and 5 compensate the weekend).
    assert tet == [D(2027, 2, d) for d in range(4, 11)]
    for d in tet:
        assert off(d), d
    assert CAL.day(D(2027, 2, 11)).working
    assert CAL.day(D(2027, 2, 5)).reason == "Giao thừa Tết Nguyên Đán"


def test_hung_kings_day_and_observed_day() -> None:
    assert off(D(2025, 4, 7))
    assert CAL.day(D(2026, 4, 26)).reason == "Ngày Giỗ Tổ Hùng Vương"  # a Sunday
    assert off(D(2026, 4, 27))  # observed on Monday
    assert "nghỉ bù" in CAL.day(D(2026, 4, 27)).reason
    assert CAL.day(D(2026, 4, 28)).working
    assert off(D(2027, 4, 16))


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_reunification_and_labour_day(year: int) -> None:
    assert off(D(year, 4, 30))
    assert off(D(year, 5, 1))


def test_labour_day_2027_on_saturday_is_observed_monday() -> None:
    assert off(D(2027, 5, 3))


def test_national_day_and_adjacent_day() -> None:
    assert off(D(2025, 9, 1))
    assert off(D(2025, 9, 2))
    assert CAL.day(D(2025, 9, 3)).working
    assert off(D(2026, 9, 1))
    assert off(D(2026, 9, 2))
    assert CAL.day(D(2026, 9, 3)).working
    assert off(D(2027, 9, 2))
    assert off(D(2027, 9, 3))


def test_swaps_2025_2026() -> None:
    jan2 = CAL.day(D(2026, 1, 2))
    assert not jan2.working
    assert "12729/VPCP-KGVX" in jan2.reason
    jan10 = CAL.day(D(2026, 1, 10))
    assert jan10.working
    assert jan10.reason.startswith("make-up working day: ")
    assert CAL.day(D(2026, 8, 22)).working
    assert "9441/TB-BNV" in CAL.day(D(2026, 8, 22)).reason
    assert off(D(2026, 8, 31))
    assert CAL.day(D(2025, 4, 26)).working
    assert off(D(2025, 5, 2))
    # Around the swaps: the other Saturdays stay days off.
    assert off(D(2026, 1, 3))
    assert off(D(2026, 8, 29))


def test_culture_day_2026_11_24() -> None:
    info = CAL.day(D(2026, 11, 24))
    assert not info.working
    assert info.reason == "Ngày Văn hóa Việt Nam"


def test_plain_days() -> None:
    assert CAL.day(D(2026, 12, 7)) == CAL.day(D(2026, 12, 7))
    assert CAL.day(D(2026, 12, 7)).reason == "working day"
    assert CAL.day(D(2026, 12, 5)).reason == "weekend (Saturday)"
    assert CAL.day(D(2026, 12, 6)).reason == "weekend (Sunday)"
    assert CAL.is_working_day(D(2026, 12, 8))


def test_without_configured_swaps_the_package_alone() -> None:
    bare = WorkCalendar(CalendarSettings(extra_days_off=[], extra_working_days=[]))
    assert bare.day(D(2026, 1, 2)).working  # the package misses this swap
    assert not bare.day(D(2026, 1, 10)).working
    info = bare.day(D(2026, 8, 22))  # the package's own weekend_workdays
    assert info.working
    assert "holidays package" in info.reason
    assert bare.day(D(2025, 4, 26)).working
    assert not bare.day(D(2026, 8, 31)).working


def test_precedence_of_configuration() -> None:
    cal = WorkCalendar(
        CalendarSettings(
            extra_working_days=[DayEntry(date=D(2026, 9, 2), reason="drill")],
            extra_days_off=[DayEntry(date=D(2026, 12, 7), reason="local holiday")],
        )
    )
    assert cal.day(D(2026, 9, 2)).working
    assert cal.day(D(2026, 9, 2)).reason == "make-up working day: drill"
    assert not cal.day(D(2026, 12, 7)).working
    assert cal.day(D(2026, 12, 7)).reason == "local holiday"
    # Replacing the lists drops the shipped swaps.
    assert cal.day(D(2026, 1, 2)).working


def test_days_range() -> None:
    infos = CAL.days(D(2026, 1, 1), D(2026, 1, 12))
    assert infos[0].date == D(2026, 1, 1)
    assert len(infos) == 12
    assert [i.date for i in infos if i.working] == [D(2026, 1, d) for d in (5, 6, 7, 8, 9, 10, 12)]
    assert CAL.days(D(2026, 1, 1), D(2026, 1, 1))[0].date == D(2026, 1, 1)


def test_days_bad_ranges() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        CAL.days(D(2026, 1, 2), D(2026, 1, 1))
    with pytest.raises(ValueError, match="longer than 3700 days"):
        CAL.days(D(2025, 1, 1), D(2025, 1, 1) + dt.timedelta(days=MAX_SCAN_DAYS))


def test_years_outside_the_package_are_refused() -> None:
    with pytest.raises(ValueError, match="outside the years"):
        CAL.day(D(2150, 1, 5))


# ------------------------------------------------------------------------ notices


def test_product_notice_examples() -> None:
    three = CAL.notice(local(2026, 12, 7, 9, 30), local(2026, 12, 11, 0, 0))
    assert three.working_days == 3
    assert three.days == [D(2026, 12, 8), D(2026, 12, 9), D(2026, 12, 10)]
    assert three.meets(CAL.settings.rules.secure_server_change_notice)
    two = CAL.notice(dt.datetime(2026, 12, 7), dt.datetime(2026, 12, 10))
    assert two.working_days == 2
    assert not two.meets(CAL.settings.rules.secure_server_change_notice)


def test_notice_same_day_and_next_day_is_zero() -> None:
    assert CAL.notice(local(2026, 12, 7, 9), local(2026, 12, 7, 10)).working_days == 0
    assert CAL.notice(local(2026, 12, 7, 9), local(2026, 12, 8, 10)).working_days == 0


def test_notice_converts_to_local_time() -> None:
    # 23:30 UTC on the 7th is 06:30 on the 8th in Hà Nội: counting starts on the 9th.
    announced = dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.UTC)
    assert CAL.notice(announced, dt.datetime(2026, 12, 11)).working_days == 2


def test_notice_over_holidays_and_swaps() -> None:
    # Tết 2026: announced Thu 12/2, effective Tue 24/2 → Fri 13/2 and Mon 23/2 only.
    notice = CAL.notice(dt.datetime(2026, 2, 12), dt.datetime(2026, 2, 24))
    assert notice.days == [D(2026, 2, 13), D(2026, 2, 23)]
    # New Year 2026: announced Wed 31/12/2025, effective Mon 12/1 → 5–9/1 and Sat 10/1.
    notice = CAL.notice(dt.datetime(2025, 12, 31), dt.datetime(2026, 1, 12))
    assert notice.working_days == 6
    assert D(2026, 1, 10) in notice.days
    assert D(2026, 1, 2) not in notice.days


def test_notice_effective_before_announced() -> None:
    with pytest.raises(ValueError, match="before it was announced"):
        CAL.notice(local(2026, 12, 7, 10), local(2026, 12, 7, 9))


def test_meets_refuses_an_hours_rule() -> None:
    notice = CAL.notice(dt.datetime(2026, 12, 7), dt.datetime(2026, 12, 11))
    with pytest.raises(ValueError, match="working_hours"):
        notice.meets(CAL.settings.rules.incident_sla)
    assert notice.meets(Rule(value=3, unit="working_days", source="x"))
    assert not notice.meets(CAL.settings.rules.maintenance_notice)


# ------------------------------------------------------------------ working hours


def test_product_sla_example_across_a_weekend() -> None:
    assert CAL.due(local(2026, 12, 4, 16, 0), 8) == local(2026, 12, 7, 16, 0)
    assert CAL.due(local(2026, 12, 4, 16, 0), 8).utcoffset() == dt.timedelta(hours=7)


def test_sla_across_a_holiday() -> None:
    # 29/4 16–17 (1 h), 30/4, 1/5 and the weekend off, 4/5 08–12 and 13–16 (7 h).
    assert CAL.due(local(2026, 4, 29, 16), 8) == local(2026, 5, 4, 16)


def test_sla_across_a_make_up_saturday() -> None:
    assert CAL.due(local(2026, 1, 9, 16), 8) == local(2026, 1, 10, 16)


def test_lunch_break_not_counted() -> None:
    assert CAL.due(local(2026, 12, 7, 11), 2) == local(2026, 12, 7, 14)
    assert CAL.due(local(2026, 12, 7, 12, 30), 1) == local(2026, 12, 7, 14)
    assert CAL.working_hours_between(local(2026, 12, 7, 11), local(2026, 12, 7, 14)) == 2.0


def test_start_outside_working_hours() -> None:
    assert CAL.due(local(2026, 12, 5, 3), 1) == local(2026, 12, 7, 9)  # Saturday 03:00
    assert CAL.due(local(2026, 12, 7, 3), 1) == local(2026, 12, 7, 9)  # Monday 03:00
    assert CAL.due(local(2026, 12, 4, 17, 30), 0.5) == local(2026, 12, 7, 8, 30)
    assert CAL.due(local(2026, 12, 5, 3), 0) == local(2026, 12, 7, 8)


def test_end_of_span_counts_as_inside() -> None:
    assert CAL.due(local(2026, 12, 7, 16), 1) == local(2026, 12, 7, 17)
    assert CAL.due(local(2026, 12, 7, 11), 1) == local(2026, 12, 7, 12)


def test_naive_and_foreign_offsets() -> None:
    assert CAL.due(dt.datetime(2026, 12, 4, 16), 8) == local(2026, 12, 7, 16)
    utc = dt.datetime(2026, 12, 4, 9, tzinfo=dt.UTC)  # 16:00 in Hà Nội
    due = CAL.due(utc, 8)
    assert due == local(2026, 12, 7, 16)
    assert due.isoformat() == "2026-12-07T16:00:00+07:00"


def test_epoch_api_adds_working_hours_to_epoch_seconds() -> None:
    start = local(2026, 12, 4, 16).timestamp()
    due = CAL.add_working_hours(start, 8)
    assert due == local(2026, 12, 7, 16).timestamp()
    assert CAL.add_working_hours_ts(start, 8) == due


def test_agency_working_hours() -> None:
    cal = WorkCalendar(
        CalendarSettings.model_validate(
            {"agency_working_hours": {"bo-x": [["07:30", "11:30"], ["13:30", "17:30"]]}}
        )
    )
    assert cal.due(local(2026, 12, 7, 17), 0.5, agency="bo-x") == local(2026, 12, 7, 17, 30)
    assert cal.due(local(2026, 12, 7, 17), 1, agency="bo-x") == local(2026, 12, 8, 8, 0)
    assert cal.due(local(2026, 12, 7, 17), 1) == local(2026, 12, 8, 9, 0)
    assert cal.due(local(2026, 12, 7, 17), 1, agency="unknown") == local(2026, 12, 8, 9, 0)
    assert cal.working_hours_between(
        local(2026, 12, 7, 7), local(2026, 12, 7, 18), agency="bo-x"
    ) == pytest.approx(8.0)


def test_working_hours_between() -> None:
    assert CAL.working_hours_between(local(2026, 12, 4, 16), local(2026, 12, 7, 16)) == 8.0
    assert CAL.working_hours_between(local(2026, 12, 5, 8), local(2026, 12, 6, 17)) == 0.0
    assert CAL.working_hours_between(local(2026, 4, 29, 0), local(2026, 5, 5, 0)) == 16.0
    with pytest.raises(ValueError, match="before its start"):
        CAL.working_hours_between(local(2026, 12, 7, 16), local(2026, 12, 7, 15))


def test_is_working_time() -> None:
    assert CAL.is_working_time(local(2026, 12, 7, 8))
    assert CAL.is_working_time(local(2026, 12, 7, 17))
    assert not CAL.is_working_time(local(2026, 12, 7, 12, 30))
    assert not CAL.is_working_time(local(2026, 12, 5, 10))


def test_bad_hours_and_bounds() -> None:
    with pytest.raises(ValueError, match="hours must be"):
        CAL.due(local(2026, 12, 7, 9), -1)
    with pytest.raises(ValueError, match="hours must be"):
        CAL.due(local(2026, 12, 7, 9), float("nan"))
    with pytest.raises(ValueError, match="do not fit in 3700 days"):
        CAL.due(local(2026, 12, 7, 9), 1_000_000)
    with pytest.raises(ValueError, match="invalid moment"):
        CAL.add_working_hours(float("inf"), 1)


# --------------------------------------------------------------------- settings


def test_default_rules_carry_their_sources() -> None:
    rules = Rules()
    assert rules.secure_server_change_notice.value == 3
    assert rules.secure_server_change_notice.unit == "working_days"
    assert "Chương VII" in rules.secure_server_change_notice.source
    assert rules.maintenance_notice.value == 5
    assert rules.maintenance_notice.source == "QĐ 31/2021/QĐ-TTg, Điều 52 khoản 2"
    assert rules.incident_sla == Rule(
        value=8, unit="working_hours", source="QĐ 31/2021/QĐ-TTg, Điều 52 khoản 1"
    )


def test_default_settings_ship_the_swaps() -> None:
    s = CalendarSettings()
    assert s.timezone == "Asia/Ho_Chi_Minh"
    assert s.working_hours == [(dt.time(8), dt.time(12)), (dt.time(13), dt.time(17))]
    assert {e.date for e in s.extra_days_off} >= {D(2026, 1, 2), D(2025, 5, 2), D(2026, 8, 31)}
    assert {e.date for e in s.extra_working_days} >= {
        D(2026, 1, 10),
        D(2025, 4, 26),
        D(2026, 8, 22),
    }
    assert all(e.reason for e in s.extra_days_off + s.extra_working_days)


def test_settings_from_yaml() -> None:
    text = """
timezone: Asia/Ho_Chi_Minh
working_hours: [["07:30","11:30"],["13:00","16:30"]]
extra_days_off:
  - {date: 2027-02-12, reason: "CV test; swap with 2027-02-20"}
extra_working_days:
  - {date: 2027-02-20, reason: "CV test; make-up Saturday"}
rules:
  maintenance_notice: {value: 7, unit: working_days, source: "QĐ 29/2026/QĐ-TTg"}
"""
    s = CalendarSettings.model_validate(yaml.safe_load(text))
    assert s.working_hours[1] == (dt.time(13), dt.time(16, 30))
    assert s.rules.maintenance_notice.value == 7
    assert s.rules.secure_server_change_notice.value == 3
    cal = WorkCalendar(s)
    assert not cal.day(D(2027, 2, 12)).working
    assert cal.day(D(2027, 2, 20)).working


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "Asia/Hanoi_City"}, "unknown time zone 'Asia/Hanoi_City'"),
        ({"timezone": "../etc"}, "unknown time zone"),
        ({"working_hours": [["08:00", "12:00"], ["11:00", "17:00"]]}, "overlaps"),
        ({"working_hours": [["13:00", "17:00"], ["08:00", "12:00"]]}, "overlaps"),
        ({"working_hours": [["12:00", "08:00"]]}, "must start before it ends"),
        ({"working_hours": []}, "at least one span"),
        ({"working_hours": [["08:00", 780]]}, "quoted strings"),
        ({"working_hours": [["08:00", "25:00"]]}, "working_hours"),
        (
            {"agency_working_hours": {"bo-x": [["08:00", "12:00"], ["10:00", "17:00"]]}},
            r"agency_working_hours\[bo-x\]",
        ),
        (
            {
                "extra_days_off": [{"date": "2026-03-02", "reason": "a"}],
                "extra_working_days": [{"date": "2026-03-02", "reason": "b"}],
            },
            "2026-03-02 listed both in extra_days_off and in extra_working_days",
        ),
        (
            {"extra_days_off": [{"date": "2026-03-02", "reason": "a"}] * 2},
            "listed twice",
        ),
        ({"extra_days_off": [{"date": "2026-02-30", "reason": "a"}]}, "date"),
        ({"holidays": []}, "Extra inputs are not permitted"),
        ({"rules": {"incident_sla": {"value": 8, "unit": "hours", "source": "x"}}}, "unit"),
    ],
)
def test_bad_settings(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CalendarSettings.model_validate(data)


def test_unquoted_yaml_time_is_refused_with_a_hint() -> None:
    data = yaml.safe_load("working_hours: [[08:00, 12:00], [13:00, 17:00]]")
    with pytest.raises(ValidationError, match="sexagesimal"):
        CalendarSettings.model_validate(data)


# ---------------------------------------------------------------------- properties

_day_in_range = st.dates(min_value=D(2025, 1, 1), max_value=D(2027, 12, 31))
_moment = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31))
_hours = st.floats(min_value=0, max_value=60, allow_nan=False, allow_infinity=False)
_props = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_props
@given(
    announced=_moment,
    span=st.integers(min_value=0, max_value=40),
    extra=st.integers(min_value=-5, max_value=45),
)
def test_adding_a_day_off_never_increases_a_notice(
    announced: dt.datetime, span: int, extra: int
) -> None:
    effective = announced + dt.timedelta(days=span)
    new_off = announced.date() + dt.timedelta(days=extra)
    base = CalendarSettings()
    assume(new_off not in {e.date for e in base.extra_working_days + base.extra_days_off})
    more_off = WorkCalendar(
        CalendarSettings(
            extra_days_off=[*base.extra_days_off, DayEntry(date=new_off, reason="test")]
        )
    )
    before = CAL.notice(announced, effective).working_days
    after = more_off.notice(announced, effective).working_days
    assert after <= before
    assert before - after <= 1


@_props
@given(start=_moment, hours=_hours)
def test_due_time_falls_inside_working_hours_on_a_working_day(
    start: dt.datetime, hours: float
) -> None:
    due = CAL.due(start, hours)
    assert due.utcoffset() == dt.timedelta(hours=7)
    assert CAL.day(due.date()).working
    wall = due.time().replace(tzinfo=None)
    assert any(s <= wall <= e for s, e in CAL.settings.working_hours)
    assert due >= start.replace(tzinfo=TZ)


@_props
@given(announced=_moment, a=st.integers(0, 60), b=st.integers(0, 60))
def test_notice_is_monotonic_in_the_effective_date(announced: dt.datetime, a: int, b: int) -> None:
    first, second = sorted((a, b))
    n1 = CAL.notice(announced, announced + dt.timedelta(days=first, hours=1))
    n2 = CAL.notice(announced, announced + dt.timedelta(days=second, hours=1))
    assert n1.working_days <= n2.working_days
    assert set(n1.days) <= set(n2.days)


@_props
@given(start=_moment, hours=_hours)
def test_working_hours_between_inverts_due(start: dt.datetime, hours: float) -> None:
    due = CAL.due(start, hours)
    assert abs(CAL.working_hours_between(start, due) - hours) * 3600 < 1.0


@_props
@given(day=_day_in_range)
def test_day_is_deterministic_and_package_consistent(day: dt.date) -> None:
    fresh = WorkCalendar(CalendarSettings())
    assert fresh.day(day) == CAL.day(day)
    package = Vietnam(years=day.year)  # type: ignore[no-untyped-call]
    configured = {e.date for e in CalendarSettings().extra_working_days}
    if day in package and day not in configured:
        assert not CAL.day(day).working
