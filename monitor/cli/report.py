"""The ``report`` subcommand: a month's availability report (see :mod:`monitor.reports`), and
``report send``: a scheduled report produced and queued now.

``npsp-monitor report -c FILE --month YYYY-MM [--format html|csv|json|senior-csv] [--output PATH]
[--language vi|en]`` (``senior-csv``: who held each agency's senior rights at the month's end and
the grants and revocations during it, :mod:`monitor.reports.senior`)

``npsp-monitor report send -c FILE --now [--schedule NAME] [--period YYYY-MM|YYYY-Www]``
produces the reports of the schedules of the config's ``reports:`` (every enabled one, or
NAME) for the period before now (or PERIOD), records them and queues their messages in the
outbox, as the daemon does at the schedule's time; the running daemon's outbox sends them
(within a minute). Once per (schedule, period): a second run says it was produced already.

It reads the daemon's database (``state_db`` of the config) and writes the report to stdout, or
to ``PATH`` (UTF-8). ``--language`` chooses the HTML's language; CSV and JSON carry the
Vietnamese names (JSON the English ones too).

Exit codes: 0 written; 1 the database cannot be read or the output cannot be written; 2 bad input
(a malformed month, a month not begun), with a one-line message on stderr; an invalid config
also 2 (see :mod:`monitor.cli.errors`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..alerting.route import Router
from ..config import load_config
from ..contacts.directory import read as read_directory
from ..registry import Registry
from ..reports import (
    Report,
    ReportError,
    build_report,
    month_bounds,
    render_csv,
    render_html,
    render_json,
    render_senior_csv,
)
from ..reports.periods import Period, parse_period, previous_period
from ..reports.produce import Outcome, Producer
from ..store import Store, missing_database, run_with_store
from .common import Clock, WithConfig, fail
from .errors import guarded

__all__ = ["add_report_commands"]


def _render(report: Report, fmt: str, language: str) -> str:
    if fmt == "csv":
        return render_csv(report)
    if fmt == "senior-csv":
        return render_senior_csv(report)
    if fmt == "json":
        return render_json(report)
    return render_html(report, "en" if language == "en" else "vi")


def _report(args: argparse.Namespace, clock: Clock) -> int:
    if args.config is None or args.month is None:
        return fail("report needs -c/--config and --month (or: report send)", 2)
    month_bounds(args.month)  # a malformed month is refused before the config is read
    config = load_config(args.config)
    if isinstance(config.state_db, Path) and not config.state_db.exists():
        return fail(missing_database(config.state_db, init=False), 1)
    registry = Registry.from_config(config)
    now = clock()
    report = run_with_store(
        config, lambda store: build_report(store, registry, args.month, now=now)
    )
    text = _render(report, args.format, args.language)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        return fail(f"cannot write {args.output}: {exc.strerror or exc}", 1)
    print(f"report {args.month} ({args.format}) written to {args.output}")
    return 0


def _send(args: argparse.Namespace, clock: Clock) -> int:
    if args.config is None:
        return fail("report send needs -c/--config", 2)
    wanted = None if args.period is None else parse_period(args.period)  # refused before reading
    config = load_config(args.config)
    if isinstance(config.state_db, Path) and not config.state_db.exists():
        return fail(missing_database(config.state_db, init=False), 1)
    schedules = config.reports.schedules
    if args.schedule is not None and args.schedule not in schedules:
        known = ", ".join(sorted(schedules)) or "none"
        return fail(f"no schedule {args.schedule!r} in reports.schedules (there are: {known})", 2)
    names = [args.schedule] if args.schedule else [n for n, s in schedules.items() if s.enabled]
    if not names:
        return fail("every schedule in reports.schedules is disabled: name one with --schedule", 2)
    registry = Registry.from_config(config)
    agencies = [e.agency for e in registry.systems.values()]
    base = config.reports.base_url or config.alerting.web_base
    now = clock()
    plans: list[tuple[str, Period]] = []
    for name in names:
        kind = schedules[name].period
        period = previous_period(kind, now) if wanted is None else wanted
        if period.kind != kind:
            raise ReportError(f"schedule {name} reports on a {kind}, not on {period.label}")
        plans.append((name, period))

    async def work(store: Store) -> list[Outcome]:
        # The people in effect, as the daemon routes: the registry's and the agencies' own.
        directory = await store.transact(lambda db: read_directory(db, agencies))
        router = Router(config.alerting, agencies, lambda: directory)
        producer = Producer(store, lambda: registry, lambda: router, lambda: base)
        return [
            await producer.produce(name, schedules[name], period, now, now)
            for name, period in plans
        ]

    for (name, period), outcome in zip(plans, run_with_store(config, work), strict=True):
        if outcome.produced:
            print(
                f"report {name} {period.label}: {len(outcome.produced)} produced,"
                f" {outcome.queued} messages queued (the daemon sends them)"
            )
        else:
            print(f"report {name} {period.label}: produced already, nothing queued")
    return 0


def add_report_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: WithConfig,
    *,
    clock: Clock = time.time,
) -> None:
    """Register ``report`` on ``sub``.

    ``with_config(parser)`` adds the ``-c/--config`` option; ``clock`` is for tests.
    """
    p = sub.add_parser(
        "report", help="monthly availability per agency and system (HTML, CSV or JSON)"
    )
    with_config(p)
    _optional_config(p, None)
    p.add_argument("--month", metavar="YYYY-MM", help="e.g. 2026-11 (Vietnam time); required")
    p.add_argument("--format", default="html", choices=["html", "csv", "json", "senior-csv"])
    p.add_argument(
        "--output", type=Path, default=None, metavar="PATH", help="write here (default: stdout)"
    )
    p.add_argument("--language", default="vi", choices=["vi", "en"], help="of the HTML report")
    p.set_defaults(func=guarded(lambda args: _report(args, clock)))
    groups = p.add_subparsers(dest="report_command", metavar="send")
    send = groups.add_parser(
        "send", help="produce a scheduled report now and queue its messages (once per period)"
    )
    with_config(send)
    # -c may come before "send" or after it: given after, it is the one that counts.
    _optional_config(send, argparse.SUPPRESS)
    send.add_argument(
        "--now", action="store_true", required=True, help="now, rather than at its time"
    )
    send.add_argument("--schedule", metavar="NAME", help="one schedule (default: every enabled)")
    send.add_argument(
        "--period", metavar="P", help="YYYY-MM or YYYY-Www (default: the one before now)"
    )
    send.set_defaults(func=guarded(lambda args: _send(args, clock)))


def _optional_config(p: argparse.ArgumentParser, default: object) -> None:
    """``-c`` as ``with_config`` added it, but not required by argparse (the command asks)."""
    for action in p._actions:
        if action.dest == "config":
            action.required = False
            action.default = default
