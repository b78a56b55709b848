"""What a report reads: every query of the reports, in one transaction on the store's thread,
and :func:`build_report`, which hands the rows to the pure :mod:`monitor.reports.figures`.

The statements are the topics' stores' (:mod:`monitor.changes_store`, the incidents' and the
maintenance's), each taking the :class:`monitor.sqldialect.Handle` of that one transaction."""

from __future__ import annotations

import time
from collections.abc import Sequence

from .. import changes_store
from ..registry import Registry, SystemEntry
from ..rules.incidents import store as incidents_store
from ..rules.maintenance import store as maintenance_store
from ..sqldialect import Handle
from ..state import State
from ..store import Store
from .figures import assemble, covered, excluded, history_since, month_bounds
from .model import (
    History,
    IncidentRow,
    Interval,
    MaintenanceRow,
    MaintenanceSpan,
    Report,
    ReportError,
    Sources,
)

__all__ = ["build_report", "read"]


def _maintenance(db: Handle, end: float) -> list[MaintenanceSpan]:
    spans = (excluded(MaintenanceRow(*row)) for row in maintenance_store.starting_before(db, end))
    return [span for span in spans if span is not None]


def _incidents(db: Handle, start: float, end: float) -> list[IncidentRow]:
    return [IncidentRow(*row) for row in incidents_store.touching(db, start, end)]


def _state(value: str) -> State | None:
    try:
        return State(value)
    except ValueError:
        return None  # written by a newer version: not monitored as far as we can tell


def _history(db: Handle, agency: str, system: str, since: float, end: float) -> History:
    before = changes_store.state_before(db, agency, system, since)
    times: list[float] = [since]
    states: list[State | None] = [None if before is None else _state(before)]
    for ts, new_state in changes_store.changes_between(db, agency, system, since, end):
        times.append(ts)
        states.append(_state(new_state))
    return History(times, states)


def read(db: Handle, entries: Sequence[SystemEntry], start: float, end: float) -> Sources:
    """The rows of ``[start, end)`` for ``entries``: each system's maintenance and its history
    (from the start of a window holding ``start``, if one does), and the incidents."""
    spans = _maintenance(db, end)
    maintenance: dict[str, list[Interval]] = {}
    histories: dict[str, History] = {}
    for entry in entries:
        agency, system = entry.agency.id, entry.system.id
        mine = maintenance[entry.key] = covered(spans, agency, system)
        histories[entry.key] = _history(db, agency, system, history_since(mine, start), end)
    return Sources(maintenance, histories, _incidents(db, start, end))


async def build_report(
    store: Store, registry: Registry, month: str, *, now: float | None = None
) -> Report:
    """The report of ``month`` (``YYYY-MM``) for the systems of ``registry``.

    ``now`` (epoch seconds, default the clock) ends the period of a month in progress and
    decides whether an open incident is past its due time. Raises :class:`ReportError` for a
    malformed month or one that has not begun.
    """
    now = time.time() if now is None else now
    starts, ends = month_bounds(month)
    if starts >= now:
        raise ReportError(f"month {month} has not begun yet: nothing to report")
    until = min(ends, now)
    entries = list(registry.systems.values())
    sources = await store.transact(lambda db: read(db, entries, starts, until))
    return assemble(month, (starts, ends), until, now, entries, sources)
