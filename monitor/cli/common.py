"""What every command group shares: the one way to refuse (:func:`fail`), the options every
group adds (``-c/--config``, ``--init``), opening the daemon's database (:func:`with_store`),
JSON and table output, and the argument types for dates, moments and hours.

Nothing here imports another command module, so any of them (and a rule topic's verbs) may
import it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..config import Config
from ..store import INIT_HELP, Store, run_with_store

__all__ = [
    "Clock",
    "WithConfig",
    "fail",
    "parse_date",
    "parse_hours",
    "parse_moment",
    "print_json",
    "print_table",
    "with_config",
    "with_init",
    "with_store",
]

T = TypeVar("T")
#: Gives "now" (seconds since the epoch); the tests pass a fixed one.
Clock = Callable[[], float]
#: Adds the ``-c/--config`` option to a parser (the tests pass a plainer one).
WithConfig = Callable[[argparse.ArgumentParser], None]


def fail(message: str, code: int = 2) -> int:
    """Say why the command stops, on one line of stderr, and return its exit code."""
    print(f"npsp-monitor: {message}", file=sys.stderr)
    return code


def with_config(p: argparse.ArgumentParser) -> None:
    """The ``-c/--config`` option of every command that reads the daemon's config."""
    p.add_argument("-c", "--config", type=Path, required=True, help="the daemon's YAML config")


def with_init(p: argparse.ArgumentParser) -> None:
    """The ``--init`` option of every command that reads or writes the daemon's database."""
    p.add_argument("--init", action="store_true", help=INIT_HELP)


def with_store(
    args: argparse.Namespace, config: Config, work: Callable[[Store], Awaitable[T]]
) -> T:
    """Run ``work`` on the config's database, opened for this command and closed after it.

    A missing database is created only when the command was given ``--init``; otherwise it is
    :class:`~monitor.store.MissingDatabase` (exit code 1, see :mod:`monitor.cli.errors`).
    """
    return run_with_store(config, work, create=args.init)


def print_json(data: Any, *, indent: int = 2, ensure_ascii: bool = False) -> None:
    """``data`` as JSON on stdout (UTF-8 as it is, unless ``ensure_ascii``)."""
    print(json.dumps(data, ensure_ascii=ensure_ascii, indent=indent))


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Rows as columns two spaces apart, each padded to its widest cell but the last (free
    text, not padded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))


def parse_date(text: str) -> dt.date:
    """An ISO date (``2026-01-02``); argparse reports the error."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid date {text!r}: write YYYY-MM-DD, e.g. 2026-01-02"
        ) from None


def parse_moment(text: str) -> dt.datetime:
    """An ISO date or datetime (``2026-12-07``, ``2026-12-07T09:30``, ``…+07:00``).

    A value without an offset is local time of the calendar.
    """
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid date/time {text!r}: write YYYY-MM-DD, YYYY-MM-DDTHH:MM "
            "or YYYY-MM-DDTHH:MM+07:00"
        ) from None


def parse_hours(text: str) -> float:
    """A finite, non-negative number of working hours."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of hours {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"hours must be a number ≥ 0, not {text!r}")
    return value


def parse_seconds(text: str) -> float:
    """A number of seconds above zero (``--duration -5`` would stop before starting)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value
