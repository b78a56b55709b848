"""Every statement of the pruning pass: one batch of deletes per call, each bounded by
``LIMIT`` (``DELETE … WHERE id IN (SELECT id … LIMIT n)``, which SQLite and PostgreSQL both
run), and the steps that store a month's report figures before its state changes go. Each
function takes the handle of one short transaction (:meth:`monitor.store.Store.transact`).

What is pruned, and what never is:

* ``state_changes`` older than the cut (:func:`state_cut`), except each system's last change
  before it (the state it was in: a report or a page after the cut still knows it);
* ``outbox`` rows ``sent`` or ``failed`` queued before their cut; ``pending`` and ``sending``
  rows never, however old;
* ``inbox`` messages delivered before the cut, read or not;
* ``verdicts`` (PostgreSQL): a passing verdict older than the cut on a check no vantage sees
  failing or degraded, and every row of a vantage whose last beat is older than the cut (a
  vantage deletes its own rows when it starts again anyway). A standing failure is kept;
* never: the audit log, incidents and their comments, maintenance windows, announcements,
  accounts, ``monthly_figures`` and ``report_months``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..reports import monthly
from ..reports.figures import merge, month_bounds
from ..reports.model import Figures
from ..reports.source import maintenance_spans, measure_system
from ..sqldialect import Handle, sql

__all__ = [
    "earliest_change",
    "measure_month",
    "next_systems",
    "prune_inbox",
    "prune_outbox",
    "prune_state_changes",
    "prune_verdicts",
    "state_cut",
]

_EARLIEST = sql("SELECT MIN(ts) FROM state_changes")
_NEXT_SYSTEM = sql(
    "SELECT agency, system FROM state_changes WHERE (agency, system) > (?, ?)"
    " ORDER BY agency, system LIMIT 1"
)
# A change is kept while it is its system's last before the cut (state_before's order).
_PRUNE_CHANGES = sql(
    "DELETE FROM state_changes WHERE id IN (SELECT s.id FROM state_changes s"
    " WHERE s.ts < ? AND EXISTS (SELECT 1 FROM state_changes n"
    " WHERE n.agency = s.agency AND n.system = s.system AND n.ts < ?"
    " AND (n.ts > s.ts OR (n.ts = s.ts AND n.id > s.id)))"
    " LIMIT ?)"
)
_PRUNE_OUTBOX = sql(
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
    " WHERE status = ? AND created_at < ? LIMIT ?)"
)
_PRUNE_INBOX = sql(
    "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE created_at < ? LIMIT ?)"
)
# PostgreSQL only (the cluster's table). NOT IN over non-null columns: hashed subplans. A
# silent vantage's failures hold nothing back (they go in the same batch).
_PRUNE_VERDICTS = sql(
    "DELETE FROM verdicts WHERE (vantage, check_key) IN ("
    "SELECT v.vantage, v.check_key FROM verdicts v WHERE v.ts < ? AND ("
    "(v.level = 0 AND v.check_key NOT IN (SELECT check_key FROM verdicts"
    " WHERE level <> 0 AND vantage NOT IN"
    " (SELECT vantage FROM vantages WHERE beat_at < to_timestamp(?))))"
    " OR v.vantage IN (SELECT vantage FROM vantages WHERE beat_at < to_timestamp(?)))"
    " LIMIT ?)"
)

#: The outbox statuses pruned (the others are still to be sent); ``dropped``: a revoked
#: person's, never sent (monitor/contacts), kept as long as ``failed``.
OUTBOX_DONE = ("sent", "failed", "dropped")


# ----- state changes and their months --------------------------------------------------------


def state_cut(db: Handle, now: float, keep: float) -> float:
    """Where state changes may be pruned up to: the start of the month (Vietnam's time) holding
    ``now - keep`` (whole months go, so that each is stored whole first), moved back to the
    start of any maintenance that holds that instant (a report after the cut reads a system's
    history from the start of a window holding its period's start, to know whether an outage
    began inside it). Every month before it is closed."""
    cut = month_bounds(monthly.month_of(now - keep))[0]
    spans = maintenance_spans(db, math.nextafter(cut, math.inf))
    for starts, ends in merge((s.starts, s.ends) for s in spans):
        if starts <= cut <= ends:
            return starts
    return cut


def earliest_change(db: Handle) -> float | None:
    """The time of the oldest state change kept."""
    row = db.execute(_EARLIEST).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def next_systems(db: Handle, after: tuple[str, str], count: int) -> list[tuple[str, str]]:
    """Up to ``count`` systems with a stored history, in order, after ``after`` (one index
    step each: no scan of the whole table)."""
    found: list[tuple[str, str]] = []
    last = after
    for _ in range(count):
        row = db.execute(_NEXT_SYSTEM, last).fetchone()
        if row is None:
            break
        last = (str(row[0]), str(row[1]))
        found.append(last)
    return found


def measure_month(
    db: Handle, month: str, systems: Sequence[tuple[str, str]]
) -> list[tuple[str, str, Figures]]:
    """Measure ``month``'s figures of ``systems`` from their state changes and store them;
    what was stored."""
    starts, ends = month_bounds(month)
    spans = maintenance_spans(db, ends)
    rows = [
        (agency, system, measure_system(db, spans, agency, system, starts, ends))
        for agency, system in systems
    ]
    monthly.write(db, month, rows)
    return rows


def prune_state_changes(db: Handle, cut: float, limit: int) -> int:
    """Delete up to ``limit`` changes older than ``cut`` (each system's last one before it
    stays); how many."""
    return db.execute(_PRUNE_CHANGES, (cut, cut, limit)).rowcount


# ----- the rest ------------------------------------------------------------------------------


def prune_outbox(db: Handle, status: str, before: float, limit: int) -> int:
    """Delete up to ``limit`` outbox rows of ``status`` (sent, failed or dropped) queued before
    ``before``."""
    if status not in OUTBOX_DONE:
        raise ValueError(f"outbox rows {status!r} are never pruned")
    return db.execute(_PRUNE_OUTBOX, (status, before, limit)).rowcount


def prune_inbox(db: Handle, before: float, limit: int) -> int:
    """Delete up to ``limit`` inbox messages delivered before ``before``."""
    return db.execute(_PRUNE_INBOX, (before, limit)).rowcount


def prune_verdicts(db: Handle, before: float, limit: int) -> int:
    """Delete up to ``limit`` verdict rows no vantage needs (see the module's docstring)."""
    return db.execute(_PRUNE_VERDICTS, (before, before, before, limit)).rowcount
