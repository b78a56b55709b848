"""Every statement on the ``report_runs`` table: the scheduled reports produced, one row per
(schedule, period, scope), with their renderings; and whether anything was monitored before a
moment (:func:`monitored_before`, read from the states). One function per query, each taking
the database handle of a transaction (:meth:`monitor.store.Store.transact` runs them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..sqldialect import Handle, insert_ignore, placeholders, sql

__all__ = [
    "NATIONAL",
    "Run",
    "RunRow",
    "add",
    "body",
    "find",
    "listed",
    "monitored_before",
    "produced",
    "set_queued",
]

#: The scope of a national report (any other scope is an agency id).
NATIONAL = ""

_META = "id, schedule, period, scope, fired_at, produced_at, starts, ends, queued"
_ADD = insert_ignore(
    "report_runs",
    (
        "schedule",
        "period",
        "scope",
        "fired_at",
        "produced_at",
        "starts",
        "ends",
        "queued",
        "body_json",
        "body_csv",
        "body_html_vi",
        "body_html_en",
    ),
    key=("schedule", "period", "scope"),
)
_ID = sql("SELECT id FROM report_runs WHERE schedule = ? AND period = ? AND scope = ?")
_SET_QUEUED = sql("UPDATE report_runs SET queued = ? WHERE id = ?")
_PRODUCED = sql("SELECT scope FROM report_runs WHERE schedule = ? AND period = ?")
_LAST = sql("SELECT MAX(id) FROM report_runs")
_FIND = sql(f"SELECT {_META} FROM report_runs WHERE id = ?")  # noqa: S608 - constant columns
_STATE_BEFORE = sql("SELECT 1 FROM system_state WHERE since <= ? LIMIT 1")
_CHANGE_BEFORE = sql("SELECT 1 FROM state_changes WHERE ts <= ? LIMIT 1")
_BODY = {
    "json": sql("SELECT body_json FROM report_runs WHERE id = ?"),
    "csv": sql("SELECT body_csv FROM report_runs WHERE id = ?"),
    "html-vi": sql("SELECT body_html_vi FROM report_runs WHERE id = ?"),
    "html-en": sql("SELECT body_html_en FROM report_runs WHERE id = ?"),
}


@dataclass(frozen=True, slots=True)
class Run:
    """A report produced (without its renderings)."""

    id: int
    schedule: str
    period: str
    scope: str  # NATIONAL, or an agency id
    fired_at: float  # the schedule's time it answers
    produced_at: float
    starts: float
    ends: float
    queued: int  # messages queued for it

    @property
    def agency(self) -> str | None:
        return None if self.scope == NATIONAL else self.scope


@dataclass(frozen=True, slots=True)
class RunRow:
    """A report to record: its key, times and renderings."""

    schedule: str
    period: str
    scope: str
    fired_at: float
    produced_at: float
    starts: float
    ends: float
    body_json: str
    body_csv: str
    body_html_vi: str
    body_html_en: str


def _run(row: Iterable[object]) -> Run:
    i, schedule, period, scope, fired, produced, starts, ends, queued = row
    return Run(
        int(str(i)),
        str(schedule),
        str(period),
        str(scope),
        float(str(fired)),
        float(str(produced)),
        float(str(starts)),
        float(str(ends)),
        int(str(queued)),
    )


def add(db: Handle, row: RunRow) -> int | None:
    """Record a report; its id, or None when that (schedule, period, scope) was produced
    already (by this host before, or by another)."""
    values = (
        row.schedule,
        row.period,
        row.scope,
        row.fired_at,
        row.produced_at,
        row.starts,
        row.ends,
        0,
        row.body_json,
        row.body_csv,
        row.body_html_vi,
        row.body_html_en,
    )
    if db.execute(_ADD, values).rowcount == 0:
        return None
    return int(db.execute(_ID, (row.schedule, row.period, row.scope)).fetchone()[0])


def set_queued(db: Handle, run: int, count: int) -> None:
    """How many messages were queued for ``run``."""
    db.execute(_SET_QUEUED, (count, run))


def produced(db: Handle, schedule: str, period: str) -> set[str]:
    """The scopes of ``schedule`` already produced for ``period``."""
    return {str(scope) for (scope,) in db.execute(_PRODUCED, (schedule, period))}


def last_id(db: Handle) -> int:
    """The newest run's id (0: none yet)."""
    row = db.execute(_LAST).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def find(db: Handle, run: int) -> Run | None:
    row = db.execute(_FIND, (run,)).fetchone()
    return None if row is None else _run(row)


def body(db: Handle, run: int, form: str) -> str | None:
    """A rendering of ``run``: ``json``, ``csv``, ``html-vi`` or ``html-en``."""
    row = db.execute(_BODY[form], (run,)).fetchone()
    return None if row is None else str(row[0])


def monitored_before(db: Handle, ts: float) -> bool:
    """Whether this database held any monitoring at ``ts``: a state change then or before, or
    a system in its current state since then (its changes may have been pruned)."""
    return any(db.execute(q, (ts,)).fetchone() is not None for q in (_CHANGE_BEFORE, _STATE_BEFORE))


def listed(db: Handle, scopes: Iterable[str] | None, limit: int) -> list[Run]:
    """The latest ``limit`` reports, newest first, of ``scopes`` (None: every scope)."""
    if scopes is None:
        statement = f"SELECT {_META} FROM report_runs ORDER BY produced_at DESC, id DESC LIMIT ?"  # noqa: S608 - constant columns
        return [_run(r) for r in db.execute(sql(statement), (limit,))]
    chosen = list(scopes)
    if not chosen:
        return []
    statement = (
        f"SELECT {_META} FROM report_runs WHERE scope IN ({placeholders(len(chosen))})"  # noqa: S608 - placeholders only
        " ORDER BY produced_at DESC, id DESC LIMIT ?"
    )
    return [_run(r) for r in db.execute(sql(statement), (*chosen, limit))]
