"""The ``report`` subcommand: a month's availability report (see :mod:`monitor.reports`).

``npsp-monitor report -c FILE --month YYYY-MM [--format html|csv|json] [--output PATH]
[--language vi|en]``

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

from ..config import load_config
from ..registry import Registry
from ..reports import (
    Report,
    build_report,
    month_bounds,
    render_csv,
    render_html,
    render_json,
)
from ..store import missing_database, run_with_store
from .common import Clock, WithConfig, fail
from .errors import guarded

__all__ = ["add_report_commands"]


def _render(report: Report, fmt: str, language: str) -> str:
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    return render_html(report, "en" if language == "en" else "vi")


def _report(args: argparse.Namespace, clock: Clock) -> int:
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
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="e.g. 2026-11 (Vietnam time)")
    p.add_argument("--format", default="html", choices=["html", "csv", "json"])
    p.add_argument(
        "--output", type=Path, default=None, metavar="PATH", help="write here (default: stdout)"
    )
    p.add_argument("--language", default="vi", choices=["vi", "en"], help="of the HTML report")
    p.set_defaults(func=guarded(lambda args: _report(args, clock)))
