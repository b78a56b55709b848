"""The one map from an error to what the command says and its exit code.

=========================  ======  ==============================================================
error                      code    stderr
=========================  ======  ==============================================================
BrokenPipeError            0       nothing: the reader went away (``… | head -1``)
KeyboardInterrupt          130     nothing
ConfigError                2       every issue, one a line, then the summary
StartupError               2       ``npsp-monitor: cannot start: …``
a refusal (below)          2       ``npsp-monitor: …`` (the message says why)
LookupError                2       ``npsp-monitor: …`` (an unknown system, channel…)
StoreError                 1       ``npsp-monitor: …`` (no database, cannot open or write it)
OSError                    1       ``npsp-monitor: <strerror>: <file>``
=========================  ======  ==============================================================

A refusal is a rule's answer to a request it will not carry out: an account, an announcement,
a maintenance window, an incident or a report that cannot be as asked. Any other error is a
bug, left to Python's traceback. First match wins (``BrokenPipeError`` is an ``OSError``).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from ..accounts import AccountError
from ..app import StartupError
from ..config import ConfigError
from ..reports import ReportError
from ..rules.announcements import AnnouncementRejected
from ..rules.incidents import IncidentError
from ..rules.maintenance import MaintenanceError
from ..store import StoreError
from .common import fail

__all__ = ["EXIT_CODES", "REFUSALS", "Command", "exit_code", "guarded"]

Command = Callable[[argparse.Namespace], int]

#: The errors by which a rule refuses what the command asked.
REFUSALS: tuple[type[Exception], ...] = (
    AccountError,
    AnnouncementRejected,
    IncidentError,
    MaintenanceError,
    ReportError,
)


def _broken_pipe(exc: BaseException) -> int:
    # What the reader wanted was printed. Python would print "Broken pipe" while flushing at
    # exit: point stdout at nothing.
    del exc
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def _interrupted(exc: BaseException) -> int:
    del exc
    return 130


def _config(exc: BaseException) -> int:
    assert isinstance(exc, ConfigError)
    for issue in exc.issues:
        print(issue, file=sys.stderr)
    print(exc.summary(), file=sys.stderr)
    return 2


def _os_error(exc: BaseException) -> int:
    assert isinstance(exc, OSError)
    return fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", 1)


#: Each error a command may end with, and how it is told (returning the exit code): first
#: match wins.
EXIT_CODES: tuple[tuple[tuple[type[BaseException], ...], Callable[[BaseException], int]], ...] = (
    ((BrokenPipeError,), _broken_pipe),
    ((KeyboardInterrupt,), _interrupted),
    ((ConfigError,), _config),
    ((StartupError,), lambda exc: fail(f"cannot start: {exc}")),
    (REFUSALS, lambda exc: fail(str(exc))),
    ((LookupError,), lambda exc: fail(f"{exc.args[0]}")),
    ((StoreError,), lambda exc: fail(str(exc), 1)),
    ((OSError,), _os_error),
)


def exit_code(exc: BaseException) -> int | None:
    """Tell ``exc`` on stderr as the map says and return its exit code; None for an error the
    map does not know (a bug: the caller re-raises it)."""
    for kinds, tell in EXIT_CODES:
        if isinstance(exc, kinds):
            return tell(exc)
    return None


def guarded(command: Command) -> Command:
    """``command``, with the errors of the map turned into their message and exit code."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except BaseException as exc:
            code = exit_code(exc)
            if code is None:
                raise
            return code

    return run
