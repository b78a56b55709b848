"""The ``calendar`` subcommands (and the ``workdays`` alias) of the command line.

``npsp-monitor calendar days FROM TO``            working / non-working days, with the reason
``npsp-monitor calendar notice ANNOUNCED EFFECTIVE`` notice in working days against a rule
``npsp-monitor calendar due START --hours N``     when an N-working-hour clock ends
``npsp-monitor workdays FROM TO``                 same as ``calendar days``

Exit codes: 0 done (``notice``: compliant), 1 ``notice`` late, 2 bad input (message on stderr).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..workdays import Rule, WorkCalendar
from .common import fail, parse_date, parse_hours, parse_moment, print_json
from .errors import guarded

__all__ = ["add_calendar_commands"]

LoadCalendar = Callable[[Path | None], WorkCalendar]

_RULES = {
    "secure-server-change": "secure_server_change_notice",
    "maintenance": "maintenance_notice",
}


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def _days(args: argparse.Namespace, load_calendar: LoadCalendar) -> int:
    calendar = load_calendar(args.config)
    try:
        infos = calendar.days(args.start, args.end)
    except ValueError as exc:
        return fail(str(exc))
    if args.json:
        rows: list[dict[str, Any]] = [
            {
                "date": i.date.isoformat(),
                "weekday": f"{i.date:%a}",
                "working": i.working,
                "reason": i.reason,
            }
            for i in infos
        ]
        print_json(rows)
        return 0
    for i in infos:
        status = "working" if i.working else "day off"
        print(f"{i.date.isoformat()}  {i.date:%a}  {status:<7}  {i.reason}")
    working = sum(1 for i in infos if i.working)
    print(f"{working} working day(s) of {len(infos)}")
    return 0


def _notice(args: argparse.Namespace, load_calendar: LoadCalendar) -> int:
    calendar = load_calendar(args.config)
    rule: Rule = getattr(calendar.settings.rules, _RULES[args.rule])
    try:
        notice = calendar.notice(args.announced, args.effective)
        compliant = notice.meets(rule)
    except ValueError as exc:
        return fail(str(exc))
    if args.json:
        out = {
            "working_days": notice.working_days,
            "required": rule.value,
            "compliant": compliant,
            "days": [d.isoformat() for d in notice.days],
            "rule": args.rule,
            "source": rule.source,
        }
        print_json(out)
    else:
        announced, effective = calendar.local(args.announced), calendar.local(args.effective)
        print(f"announced  {_iso(announced)} ({announced:%a})")
        print(f"effective  {_iso(effective)} ({effective:%a})")
        listed = ", ".join(f"{d.isoformat()} {d:%a}" for d in notice.days) or "none"
        print(f"working days strictly between: {notice.working_days} ({listed})")
        print(f"rule {args.rule}: at least {rule.value} working days ({rule.source})")
        if compliant:
            print(f"compliant: {notice.working_days} ≥ {rule.value}")
        else:
            print(f"LATE: {notice.working_days} < {rule.value}")
    return 0 if compliant else 1


def _due(args: argparse.Namespace, load_calendar: LoadCalendar) -> int:
    calendar = load_calendar(args.config)
    try:
        due = calendar.due(args.start, args.hours, agency=args.agency)
    except ValueError as exc:
        return fail(str(exc))
    start = calendar.local(args.start)
    if args.json:
        out = {"start": _iso(start), "hours": args.hours, "agency": args.agency, "due": _iso(due)}
        print_json(out)
    else:
        print(f"start  {_iso(start)} ({start:%a})")
        print(f"hours  {args.hours:g} working hour(s)")
        print(f"due    {_iso(due)} ({due:%a})")
    return 0


def add_calendar_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], load_calendar: LoadCalendar
) -> None:
    """Register ``calendar days|notice|due`` and the ``workdays`` alias on ``sub``.

    ``load_calendar(None)`` must return the calendar of the default settings; with a path, the
    calendar of that config file's ``calendar:`` section.
    """

    def calendar_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-c",
            "--config",
            type=Path,
            default=None,
            help="take the calendar from this config (default: the built-in calendar)",
        )

    def days_arguments(p: argparse.ArgumentParser) -> None:
        calendar_config(p)
        p.add_argument("start", metavar="FROM", type=parse_date, help="first date, YYYY-MM-DD")
        p.add_argument("end", metavar="TO", type=parse_date, help="last date, YYYY-MM-DD")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(func=guarded(lambda args: _days(args, load_calendar)))

    cal = sub.add_parser("calendar", help="working days, notice periods and SLA due times")
    cal_sub = cal.add_subparsers(dest="calendar_command", required=True, metavar="SUBCOMMAND")

    days_arguments(cal_sub.add_parser("days", help="working and non-working days, with reasons"))

    p = cal_sub.add_parser("notice", help="notice in working days of an announced change")
    calendar_config(p)
    p.add_argument("announced", metavar="ANNOUNCED", type=parse_moment, help="ISO date/time")
    p.add_argument("effective", metavar="EFFECTIVE", type=parse_moment, help="ISO date/time")
    p.add_argument(
        "--rule",
        choices=sorted(_RULES),
        default="secure-server-change",
        help="the rule to check (default: secure-server-change)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=guarded(lambda args: _notice(args, load_calendar)))

    p = cal_sub.add_parser("due", help="when an N-working-hour clock started at START ends")
    calendar_config(p)
    p.add_argument("start", metavar="START", type=parse_moment, help="ISO date/time")
    p.add_argument("--hours", type=parse_hours, required=True, help="working hours (e.g. 8)")
    p.add_argument("--agency", default=None, help="use this agency's working hours")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=guarded(lambda args: _due(args, load_calendar)))

    days_arguments(sub.add_parser("workdays", help="same as `calendar days FROM TO`"))
