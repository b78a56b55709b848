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
from ..rules.seniorrights.model import AgencySeniorRights
from ..sqldialect import Handle
from ..state import State
from ..store import Store
from . import monthly
from .figures import assemble, covered, excluded, history_since, measure, month_bounds
from .model import (
    Figures,
    History,
    IncidentRow,
    Interval,
    MaintenanceRow,
    MaintenanceSpan,
    Report,
    ReportError,
    Sources,
)
from .periods import Period
from .senior import attach, read_senior_rights

__all__ = ["build_period_report", "build_report", "maintenance_spans", "measure_system", "read"]


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


def maintenance_spans(db: Handle, end: float) -> list[MaintenanceSpan]:
    """The time each window that began before ``end`` excludes (none if cancelled before it
    started)."""
    return _maintenance(db, end)


def measure_system(
    db: Handle, spans: Sequence[MaintenanceSpan], agency: str, system: str, start: float, end: float
) -> Figures:
    """One system's seconds and outages in ``[start, end)`` from its state changes, as a report
    computes them (``spans``: :func:`maintenance_spans` up to ``end``)."""
    mine = covered(spans, agency, system)
    history = _history(db, agency, system, history_since(mine, start), end)
    return measure(history, mine, start, end)


def read(
    db: Handle,
    entries: Sequence[SystemEntry],
    start: float,
    end: float,
    *,
    month: str | None = None,
) -> Sources:
    """The rows of ``[start, end)`` for ``entries``: each system's maintenance and its history
    (from the start of a window holding ``start``, if one does), and the incidents. For a
    whole past ``month``, a system whose figures were stored before its state changes were
    pruned (:mod:`.monthly`) is read from there instead of its history."""
    spans = _maintenance(db, end)
    saved = {} if month is None else monthly.stored(db, month)
    maintenance: dict[str, list[Interval]] = {}
    histories: dict[str, History] = {}
    kept: dict[str, Figures] = {}
    for entry in entries:
        agency, system = entry.agency.id, entry.system.id
        mine = maintenance[entry.key] = covered(spans, agency, system)
        if entry.key in saved:
            kept[entry.key] = saved[entry.key]
            continue
        histories[entry.key] = _history(db, agency, system, history_since(mine, start), end)
    return Sources(maintenance, histories, _incidents(db, start, end), kept)


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
    return await _build(store, registry, month, (starts, ends), now)


async def build_period_report(
    store: Store, registry: Registry, period: Period, *, now: float | None = None
) -> Report:
    """As :func:`build_report`, for a month or a week (``report.month`` holds its label)."""
    now = time.time() if now is None else now
    if period.starts >= now:
        raise ReportError(f"{period.kind} {period.label} has not begun yet: nothing to report")
    return await _build(store, registry, period.label, (period.starts, period.ends), now)


async def _build(
    store: Store, registry: Registry, label: str, bounds: tuple[float, float], now: float
) -> Report:
    starts, ends = bounds
    until = min(ends, now)
    entries = list(registry.systems.values())
    whole = monthly.whole_month(starts, ends) if until >= ends else None

    def both(db: Handle) -> tuple[Sources, dict[str, AgencySeniorRights]]:
        sources = read(db, entries, starts, until, month=whole)
        return sources, read_senior_rights(db, starts, until)

    sources, senior = await store.transact(both)
    return attach(assemble(label, bounds, until, now, entries, sources), senior)
