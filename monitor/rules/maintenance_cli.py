"""The ``maintenance`` subcommands of the command line.

``npsp-monitor maintenance schedule -c FILE --start ISO --end ISO --reason TEXT [--scope REF ...]``
    store a window (notice checked: a late one needs ``--override REASON`` and is flagged)
``npsp-monitor maintenance list -c FILE [--all]``   windows not over (``--all``: every window)
``npsp-monitor maintenance cancel -c FILE ID``      cancel a window that is not over

They write the daemon's database; the running daemon notices within a second and tells the
affected admins. Exit codes: 0 done, 2 invalid input (message on stderr); a broken config (2)
or database (1) is reported by :func:`monitor.cli.main`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..accounts import audited
from ..calendar_cli import parse_moment
from ..config import load_config
from ..registry import Registry
from ..store import INIT_HELP, run_with_store
from ..workdays import WorkCalendar
from .maintenance import MaintenanceError, Window, cancel, list_windows, schedule

__all__ = ["add_maintenance_commands"]

T = TypeVar("T")
Clock = Callable[[], float]


def _fail(message: str) -> int:
    print(f"npsp-monitor: {message}", file=sys.stderr)
    return 2


def _default_author() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


def _iso(ts: float | None, calendar: WorkCalendar) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, calendar.tz).isoformat(timespec="seconds")


def _as_json(window: Window, calendar: WorkCalendar, now: float) -> dict[str, Any]:
    return {
        "id": window.id,
        "status": window.status(now),
        "scope": list(window.scope),
        "portal_wide": window.portal_wide,
        "starts": _iso(window.starts, calendar),
        "ends": _iso(window.ends, calendar),
        "reason": window.reason,
        "announced_at": _iso(window.announced_at, calendar),
        "working_days": window.working_days,
        "required": window.required,
        "compliant": window.compliant,
        "override_reason": window.override_reason,
        "author": window.author,
        "created_at": _iso(window.created_at, calendar),
        "cancelled_at": _iso(window.cancelled_at, calendar),
        "cancel_reason": window.cancel_reason,
        "notified": {
            "scheduled": _iso(window.notified_scheduled, calendar),
            "started": _iso(window.notified_started, calendar),
            "ended": _iso(window.notified_ended, calendar),
        },
    }


def _local(ts: float, calendar: WorkCalendar) -> str:
    return f"{dt.datetime.fromtimestamp(ts, calendar.tz):%Y-%m-%d %H:%M}"


def _scope(window: Window) -> str:
    return ", ".join(window.scope) if window.scope else "the whole portal (every system)"


def _notice(window: Window) -> str:
    if window.compliant:
        return f"{window.working_days} working day(s) ahead (at least {window.required}): ok"
    return (
        f"LATE: {window.working_days} working day(s) ahead (at least {window.required}); "
        f"overridden: {window.override_reason}"
    )


def _schedule(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    registry = Registry.from_config(config)
    calendar = WorkCalendar(config.calendar)
    now = clock()
    try:
        window = run_with_store(
            config.state_db,
            lambda store: audited(
                store,
                schedule(
                    store,
                    calendar,
                    registry,
                    starts=args.start,
                    ends=args.end,
                    reason=args.reason,
                    scope=args.scope,
                    override_reason=args.override,
                    author=args.author or _default_author(),
                    now=now,
                    announced_at=args.announced,
                ),
                actor=f"cli:{args.author or _default_author()}",
                action="maintenance.create",
                target=lambda w: str(w.id),
                agency=lambda w: None,
            ),
            create=args.init,
        )
    except MaintenanceError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(_as_json(window, calendar, now), ensure_ascii=False, indent=2))
        return 0
    rule = calendar.settings.rules.maintenance_notice
    print(f"scheduled maintenance #{window.id}")
    print(
        f"  window  {_local(window.starts, calendar)} – {_local(window.ends, calendar)}"
        f" ({calendar.settings.timezone})"
    )
    print(f"  scope   {_scope(window)}")
    print(f"  reason  {window.reason}")
    print(f"  notice  {_notice(window)} ({rule.source})")
    if window.compliant and args.override is not None:
        print("  note    the notice is long enough: --override was not needed and is not kept")
    print("the daemon tells the affected admins and operations (within seconds when it runs)")
    return 0


def _list(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    calendar = WorkCalendar(config.calendar)
    now = clock()
    windows = run_with_store(
        config.state_db,
        lambda store: list_windows(store, now=now, include_past=args.all),
        create=args.init,
    )
    if args.json:
        rows = [_as_json(w, calendar, now) for w in windows]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not windows:
        print("no maintenance window" + ("" if args.all else " scheduled or in progress"))
        return 0
    table = [("ID", "STATUS", "STARTS", "ENDS", "NOTICE", "SCOPE", "REASON")]
    table += [
        (
            f"#{w.id}",
            w.status(now),
            _local(w.starts, calendar),
            _local(w.ends, calendar),
            f"{w.working_days}/{w.required}" + ("" if w.compliant else " LATE"),
            _scope(w),
            w.reason,
        )
        for w in windows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(6)]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), end=""
        )
        print(f"  {row[6]}")
    return 0


def _cancel(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    calendar = WorkCalendar(config.calendar)
    now = clock()
    try:
        window = run_with_store(
            config.state_db,
            lambda store: audited(
                store,
                cancel(store, args.id, now=now, reason=args.reason),
                actor=f"cli:{_default_author()}",
                action="maintenance.cancel",
                target=lambda w: str(w.id),
                agency=lambda w: None,
            ),
            create=args.init,
        )
    except MaintenanceError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(_as_json(window, calendar, now), ensure_ascii=False, indent=2))
        return 0
    print(f"cancelled maintenance #{window.id}: {_scope(window)}")
    if window.notified_scheduled is not None:
        print("the daemon tells the people it told about this window")
    return 0


def add_maintenance_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], None],
    *,
    clock: Clock = time.time,
) -> None:
    """Register ``maintenance schedule|list|cancel`` on ``sub``.

    ``with_config(parser)`` adds the ``-c/--config`` option; ``clock`` gives "now" (tests).
    """
    m = sub.add_parser("maintenance", help="maintenance windows: schedule, list, cancel")
    m_sub = m.add_subparsers(dest="maintenance_command", required=True, metavar="SUBCOMMAND")

    p = m_sub.add_parser(
        "schedule",
        help="schedule a window (notice checked against the working-day rule)",
        description="Schedule a maintenance window. Times without an offset are local time "
        "(Asia/Ho_Chi_Minh unless the config's calendar says otherwise).",
    )
    with_config(p)
    p.add_argument("--start", type=parse_moment, required=True, help="ISO date/time")
    p.add_argument("--end", type=parse_moment, required=True, help="ISO date/time")
    p.add_argument("--reason", required=True, help="what is done, told to the admins")
    p.add_argument(
        "--scope",
        metavar="REF",
        nargs="+",
        action="extend",
        default=[],
        help="AGENCY or AGENCY/SYSTEM, repeatable; without it: the whole portal",
    )
    p.add_argument(
        "--override",
        metavar="REASON",
        default=None,
        help="schedule a late window anyway, for this reason (the window is flagged as late)",
    )
    p.add_argument(
        "--announced",
        type=parse_moment,
        default=None,
        help="when the parties were notified, if earlier than now (ISO date/time)",
    )
    p.add_argument("--author", default=None, help="who schedules it (default: the login name)")
    p.add_argument("--json", action="store_true", help="print the stored window as JSON")
    p.add_argument("--init", action="store_true", help=INIT_HELP)
    p.set_defaults(func=lambda args: _schedule(args, clock))

    p = m_sub.add_parser("list", help="windows scheduled or in progress")
    with_config(p)
    p.add_argument("--all", action="store_true", help="also windows over or cancelled")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--init", action="store_true", help=INIT_HELP)
    p.set_defaults(func=lambda args: _list(args, clock))

    p = m_sub.add_parser("cancel", help="cancel a window that is not over")
    with_config(p)
    p.add_argument("id", metavar="ID", type=int, help="the window's number (see `list`)")
    p.add_argument("--reason", default=None, help="why it is cancelled")
    p.add_argument("--json", action="store_true", help="print the cancelled window as JSON")
    p.add_argument("--init", action="store_true", help=INIT_HELP)
    p.set_defaults(func=lambda args: _cancel(args, clock))
