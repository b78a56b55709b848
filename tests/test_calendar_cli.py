"""The ``calendar`` subcommands and the ``workdays`` alias."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from monitor.cli.calendar import add_calendar_commands
from monitor.workdays import CalendarSettings, WorkCalendar

LOADED: list[Path | None] = []


def load_calendar(path: Path | None) -> WorkCalendar:
    LOADED.append(path)
    if path is None:
        return WorkCalendar(CalendarSettings())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return WorkCalendar(CalendarSettings.model_validate(data["calendar"]))


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npsp-monitor")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_calendar_commands(sub, load_calendar)
    return parser


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = make_parser().parse_args(argv)
    code = args.func(args)
    assert isinstance(code, int)
    out = capsys.readouterr()
    return code, out.out, out.err


def parse_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        make_parser().parse_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


# ---------------------------------------------------------------------------- days


def test_days_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calendar", "days", "2026-01-01", "2026-01-12"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "2026-01-01  Thu  day off  Tết Dương lịch"
    assert lines[1] == "2026-01-02  Fri  day off  12729/VPCP-KGVX 25/12/2025; swap with 2026-01-10"
    assert lines[9].startswith("2026-01-10  Sat  working  make-up working day: 12729/VPCP-KGVX")
    assert lines[-1] == "7 working day(s) of 12"
    assert LOADED[-1] is None


def test_days_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calendar", "days", "2026-08-21", "2026-09-03", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert rows[0] == {
        "date": "2026-08-21",
        "weekday": "Fri",
        "working": True,
        "reason": "working day",
    }
    by_date = {r["date"]: r for r in rows}
    assert by_date["2026-08-22"]["working"] is True
    assert by_date["2026-08-31"]["working"] is False
    assert by_date["2026-09-01"]["working"] is False
    assert by_date["2026-09-02"]["reason"] == "Quốc khánh"
    assert by_date["2026-09-03"]["working"] is True
    assert all(set(r) == {"date", "weekday", "working", "reason"} for r in rows)


def test_workdays_alias_matches_calendar_days(capsys: pytest.CaptureFixture[str]) -> None:
    _, calendar_out, _ = run(["calendar", "days", "2026-04-24", "2026-05-04"], capsys)
    code, alias_out, _ = run(["workdays", "2026-04-24", "2026-05-04"], capsys)
    assert code == 0
    assert alias_out == calendar_out
    _, alias_json, _ = run(["workdays", "2026-04-24", "2026-05-04", "--json"], capsys)
    assert [r["date"] for r in json.loads(alias_json) if not r["working"]] == [
        "2026-04-25",
        "2026-04-26",
        "2026-04-27",
        "2026-04-30",
        "2026-05-01",
        "2026-05-02",
        "2026-05-03",
    ]


def test_days_reversed_range_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["calendar", "days", "2026-02-01", "2026-01-01"], capsys)
    assert code == 2
    assert out == ""
    assert "before it starts" in err


@pytest.mark.parametrize("bad", ["2026-02-30", "02/01/2026", "tomorrow", ""])
def test_invalid_dates(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = parse_error(["calendar", "days", bad, "2026-03-01"], capsys)
    assert f"invalid date {bad!r}: write YYYY-MM-DD" in err
    err = parse_error(["workdays", "2026-03-01", bad], capsys)
    assert "invalid date" in err


def test_calendar_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert "SUBCOMMAND" in parse_error(["calendar"], capsys)


# -------------------------------------------------------------------------- notice


def test_notice_compliant_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calendar", "notice", "2026-12-07T09:30", "2026-12-11"], capsys)
    assert code == 0
    assert "working days strictly between: 3" in out
    assert "2026-12-08 Tue, 2026-12-09 Wed, 2026-12-10 Thu" in out
    assert "at least 3 working days (QĐ 31/2021/QĐ-TTg, Chương VII)" in out
    assert "compliant: 3 ≥ 3" in out


def test_notice_late_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calendar", "notice", "2026-12-07", "2026-12-10"], capsys)
    assert code == 1
    assert "LATE: 2 < 3" in out


def test_notice_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["calendar", "notice", "2026-12-07T09:30+07:00", "2026-12-11T00:00+07:00", "--json"],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert data == {
        "working_days": 3,
        "required": 3,
        "compliant": True,
        "days": ["2026-12-08", "2026-12-09", "2026-12-10"],
        "rule": "secure-server-change",
        "source": "QĐ 31/2021/QĐ-TTg, Chương VII",
    }


def test_notice_maintenance_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["calendar", "notice", "2026-12-07", "2026-12-11", "--rule", "maintenance", "--json"],
        capsys,
    )
    assert code == 1
    data = json.loads(out)
    assert (data["working_days"], data["required"], data["compliant"]) == (3, 5, False)
    assert data["source"] == "QĐ 31/2021/QĐ-TTg, Điều 52 khoản 2"
    code, _, _ = run(
        ["calendar", "notice", "2026-12-07", "2026-12-15", "--rule", "maintenance"], capsys
    )
    assert code == 0


def test_notice_offset_is_converted(capsys: pytest.CaptureFixture[str]) -> None:
    # 23:30 UTC on the 7th is the morning of the 8th in Hà Nội.
    code, out, _ = run(["calendar", "notice", "2026-12-07T23:30Z", "2026-12-11", "--json"], capsys)
    assert code == 1
    assert json.loads(out)["days"] == ["2026-12-09", "2026-12-10"]


def test_notice_effective_before_announced(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["calendar", "notice", "2026-12-11", "2026-12-07"], capsys)
    assert code == 2
    assert out == ""
    assert "before it was announced" in err


def test_notice_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    err = parse_error(["calendar", "notice", "2026-12-07T25:00", "2026-12-11"], capsys)
    assert "invalid date/time '2026-12-07T25:00'" in err
    err = parse_error(["calendar", "notice", "2026-12-07", "2026-12-11", "--rule", "x"], capsys)
    assert "invalid choice" in err


# ----------------------------------------------------------------------------- due


def test_due_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calendar", "due", "2026-12-04T16:00", "--hours", "8", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["due"] == "2026-12-07T16:00:00+07:00"
    assert data["start"] == "2026-12-04T16:00:00+07:00"
    assert data["hours"] == 8.0


def test_due_text_and_holiday(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calendar", "due", "2026-04-29T16:00+07:00", "--hours", "8"], capsys)
    assert code == 0
    assert "due    2026-05-04T16:00:00+07:00 (Mon)" in out


def test_due_from_utc(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["calendar", "due", "2026-01-09T09:00Z", "--hours", "8", "--json"], capsys)
    assert json.loads(out)["due"] == "2026-01-10T16:00:00+07:00"  # the make-up Saturday


@pytest.mark.parametrize("hours", ["-1", "nan", "inf", "eight"])
def test_due_bad_hours(hours: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = parse_error(["calendar", "due", "2026-12-04T16:00", "--hours", hours], capsys)
    assert "hours" in err


def test_due_needs_hours(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--hours" in parse_error(["calendar", "due", "2026-12-04T16:00"], capsys)


def test_due_too_far(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["calendar", "due", "2026-12-04", "--hours", "1000000"], capsys)
    assert code == 2
    assert "do not fit" in err


# -------------------------------------------------------------------------- config


def test_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        """
calendar:
  working_hours: [["07:30", "11:30"], ["13:30", "17:30"]]
  extra_days_off:
    - {date: 2026-12-09, reason: "local decision 1/2026"}
  agency_working_hours:
    bo-x: [["07:00", "11:00"]]
  rules:
    secure_server_change_notice: {value: 2, unit: working_days, source: "QĐ 29/2026/QĐ-TTg"}
""",
        encoding="utf-8",
    )
    code, out, _ = run(
        ["calendar", "notice", "-c", str(config), "2026-12-07", "2026-12-11", "--json"], capsys
    )
    assert LOADED[-1] == config
    assert code == 0
    data = json.loads(out)
    assert data["days"] == ["2026-12-08", "2026-12-10"]
    assert (data["required"], data["source"]) == (2, "QĐ 29/2026/QĐ-TTg")

    _, out, _ = run(["workdays", "--config", str(config), "2026-12-09", "2026-12-09"], capsys)
    assert out.splitlines()[0] == "2026-12-09  Wed  day off  local decision 1/2026"
    assert "2026-01-02" not in out

    _, out, _ = run(
        ["calendar", "due", "-c", str(config), "2026-12-04T17:00", "--hours", "1", "--json"],
        capsys,
    )
    assert json.loads(out)["due"] == "2026-12-07T08:00:00+07:00"
    _, out, _ = run(
        [
            "calendar",
            "due",
            "-c",
            str(config),
            "2026-12-07T10:30",
            "--hours",
            "1",
            "--agency",
            "bo-x",
            "--json",
        ],
        capsys,
    )
    data = json.loads(out)
    assert data["due"] == "2026-12-08T07:30:00+07:00"
    assert data["agency"] == "bo-x"
