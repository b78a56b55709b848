"""The ``maintenance`` subcommands of the command line.

``npsp-monitor maintenance schedule -c FILE --start ISO --end ISO --reason TEXT [--scope REF ...]``
    store a window (notice checked: a late one needs ``--override REASON`` and is flagged)
``npsp-monitor maintenance list -c FILE [--all]``   windows not over (``--all``: every window)
``npsp-monitor maintenance cancel -c FILE ID``      cancel a window that is not over

They write the daemon's database; the running daemon notices within a second and tells the
affected admins. Exit codes: 0 done, 2 invalid input or a broken config (message on stderr),
1 the database cannot be used (see :mod:`monitor.cli.errors`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import time
from typing import Any

from ..audit import audited
from ..config import load_config
from ..registry import Registry
from ..rules.maintenance import Window, cancel, list_windows, schedule
from ..workdays import WorkCalendar
from .common import Clock, WithConfig, parse_moment, print_json, print_table, with_init, with_store
from .errors import guarded

__all__ = ["add_maintenance_commands"]


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
    window = with_store(
        args,
        config,
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
    )
    if args.json:
        print_json(_as_json(window, calendar, now))
        return 0
    _print_scheduled(window, calendar, overridden=args.override is not None)
    return 0


def _print_scheduled(window: Window, calendar: WorkCalendar, *, overridden: bool) -> None:
    rule = calendar.settings.rules.maintenance_notice
    print(f"scheduled maintenance #{window.id}")
    print(
        f"  window  {_local(window.starts, calendar)} – {_local(window.ends, calendar)}"
        f" ({calendar.settings.timezone})"
    )
    print(f"  scope   {_scope(window)}")
    print(f"  reason  {window.reason}")
    print(f"  notice  {_notice(window)} ({rule.source})")
    if window.compliant and overridden:
        print("  note    the notice is long enough: --override was not needed and is not kept")
    print("the daemon tells the affected admins and operations (within seconds when it runs)")


def _list(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    calendar = WorkCalendar(config.calendar)
    now = clock()
    windows = with_store(
        args, config, lambda store: list_windows(store, now=now, include_past=args.all)
    )
    if args.json:
        print_json([_as_json(w, calendar, now) for w in windows])
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
    print_table(table)
    return 0


def _cancel(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    calendar = WorkCalendar(config.calendar)
    now = clock()
    window = with_store(
        args,
        config,
        lambda store: audited(
            store,
            cancel(store, args.id, now=now, reason=args.reason),
            actor=f"cli:{_default_author()}",
            action="maintenance.cancel",
            target=lambda w: str(w.id),
            agency=lambda w: None,
        ),
    )
    if args.json:
        print_json(_as_json(window, calendar, now))
        return 0
    print(f"cancelled maintenance #{window.id}: {_scope(window)}")
    if window.notified_scheduled is not None:
        print("the daemon tells the people it told about this window")
    return 0


def add_maintenance_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: WithConfig,
    *,
    clock: Clock = time.time,
) -> None:
    """Register ``maintenance schedule|list|cancel`` on ``sub``.

    ``with_config(parser)`` adds the ``-c/--config`` option; ``clock`` gives "now" (tests).
    """
    m = sub.add_parser("maintenance", help="maintenance windows: schedule, list, cancel")
    m_sub = m.add_subparsers(dest="maintenance_command", required=True, metavar="SUBCOMMAND")
    _add_schedule(m_sub, with_config, clock)

    p = m_sub.add_parser("list", help="windows scheduled or in progress")
    with_config(p)
    p.add_argument("--all", action="store_true", help="also windows over or cancelled")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    with_init(p)
    p.set_defaults(func=guarded(lambda args: _list(args, clock)))

    p = m_sub.add_parser("cancel", help="cancel a window that is not over")
    with_config(p)
    p.add_argument("id", metavar="ID", type=int, help="the window's number (see `list`)")
    p.add_argument("--reason", default=None, help="why it is cancelled")
    p.add_argument("--json", action="store_true", help="print the cancelled window as JSON")
    with_init(p)
    p.set_defaults(func=guarded(lambda args: _cancel(args, clock)))


def _add_schedule(
    m_sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: WithConfig,
    clock: Clock,
) -> None:
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
    with_init(p)
    p.set_defaults(func=guarded(lambda args: _schedule(args, clock)))
