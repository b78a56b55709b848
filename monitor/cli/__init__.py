"""The ``npsp-monitor`` command: the parser, and every error turned into a message and an exit code.

Exit codes: 0 ok; 1 a probe failed / a runtime error (the database, a file); 2 invalid
configuration or usage, or a refusal (the message says why); 130 interrupted.

The package, one module per command group:

``daemon``       ``run``, ``check-config``, ``probe``, ``notify-test``, ``demo``
``calendar``     ``calendar days|notice|due``, ``workdays``
``announce``     ``announce``, ``announcements``, ``catalog``
``maintenance``  ``maintenance schedule|list|cancel``
``accounts``     ``accounts create|map-cert|revoke|list``
``report``       ``report``
``audit``        ``audit verify|export``
``incidents``    ``incident open|complex|ack|resolve|list``
``errors``       the one map from an error to its message and exit code (:func:`guarded`)
``common``       what the groups share: ``fail``, ``with_config``, ``with_init``,
                 ``with_store``, ``print_json``, ``print_table``, the argument types

A new command
is a function ``(args) -> exit code`` in its group's module, registered by the group's
``add_…_commands``; an error it raises is told by :mod:`monitor.cli.errors`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..config import load_config
from ..workdays import CalendarSettings, WorkCalendar
from .accounts import add_accounts_commands
from .announce import add_announce_commands
from .audit import add_audit_commands
from .calendar import add_calendar_commands
from .common import with_config
from .daemon import add_daemon_commands, add_trial_commands
from .errors import guarded
from .incidents import add_incident_commands
from .maintenance import add_maintenance_commands
from .report import add_report_commands
from .store import add_store_commands

__all__ = ["build_parser", "main"]


def _load_calendar(path: Path | None) -> WorkCalendar:
    """The working-day calendar of a config file, or the shipped default."""
    return WorkCalendar(CalendarSettings() if path is None else load_config(path).calendar)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each command's ``func`` runs it and returns its exit code."""
    parser = argparse.ArgumentParser(
        prog="npsp-monitor",
        description="Connectivity monitor of the National Public Service Portal "
        "(Cổng DVC quốc gia).",
    )
    parser.add_argument("--version", action="version", version=f"npsp-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_daemon_commands(sub)
    add_calendar_commands(sub, _load_calendar)
    add_announce_commands(sub, with_config)
    add_maintenance_commands(sub, with_config)
    add_incident_commands(sub, with_config)
    add_accounts_commands(sub, with_config)
    add_report_commands(sub, with_config)
    add_store_commands(sub, with_config)
    add_audit_commands(sub, with_config)
    add_trial_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``npsp-monitor``: parse ``argv`` (default: the process's), run the command, return its
    exit code (see :mod:`monitor.cli.errors`)."""
    args = build_parser().parse_args(argv)
    code: int = guarded(args.func)(args)
    return code
