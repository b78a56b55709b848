"""Every statement on the ``roster_shifts`` and ``roster_overrides`` tables: one function per
query, each taking the database handle of a transaction (:meth:`monitor.store.Store.transact`
runs them). Weekdays are stored as a mask (bit 0 Monday); times of day as ``HH:MM`` text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..sqldialect import Handle, insert, sql
from .model import Override, Shift

_SHIFT_COLUMNS = (
    "agency",
    "weekdays",
    "starts",
    "ends",
    "contact_id",
    "note",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
)
_OVERRIDE_COLUMNS = (
    "agency",
    "starts",
    "ends",
    "contact_id",
    "note",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
)
_SHIFTS = "SELECT id, " + ", ".join(_SHIFT_COLUMNS) + " FROM roster_shifts"  # noqa: S608 - constant columns
_OVERRIDES = "SELECT id, " + ", ".join(_OVERRIDE_COLUMNS) + " FROM roster_overrides"  # noqa: S608
_ALL_SHIFTS = sql(_SHIFTS + " ORDER BY agency, id")
_AGENCY_SHIFTS = sql(_SHIFTS + " WHERE agency = ? ORDER BY id")
_ALL_OVERRIDES = sql(_OVERRIDES + " WHERE ends > ? ORDER BY agency, starts, id")
_AGENCY_OVERRIDES = sql(_OVERRIDES + " WHERE agency = ? AND ends > ? ORDER BY starts, id")
_OVERRIDE = sql(_OVERRIDES + " WHERE id = ?")
_ADD_SHIFT = insert("roster_shifts", _SHIFT_COLUMNS)
_ADD_OVERRIDE = insert("roster_overrides", _OVERRIDE_COLUMNS, returning="id")
_CLEAR_SHIFTS = sql("DELETE FROM roster_shifts WHERE agency = ?")
_REMOVE_OVERRIDE = sql("DELETE FROM roster_overrides WHERE id = ?")
_STAMP = sql(
    "SELECT (SELECT COUNT(*) FROM roster_shifts), (SELECT MAX(id) FROM roster_shifts),"
    " (SELECT COUNT(*) FROM roster_overrides), (SELECT MAX(id) FROM roster_overrides)"
)


def _shift(row: Sequence[Any]) -> Shift:
    id_, agency, weekdays, starts, ends, contact, note, cby, cat, uby, uat = row
    return Shift(
        id=int(id_),
        agency=str(agency),
        weekdays=int(weekdays),
        starts=str(starts),
        ends=str(ends),
        contact_id=str(contact),
        note=str(note),
        created_by=str(cby),
        created_at=float(cat),
        updated_by=str(uby),
        updated_at=float(uat),
    )


def _override(row: Sequence[Any]) -> Override:
    id_, agency, starts, ends, contact, note, cby, cat, uby, uat = row
    return Override(
        id=int(id_),
        agency=str(agency),
        starts=float(starts),
        ends=float(ends),
        contact_id=None if contact is None else str(contact),
        note=str(note),
        created_by=str(cby),
        created_at=float(cat),
        updated_by=str(uby),
        updated_at=float(uat),
    )


def shifts(db: Handle, agency: str | None = None) -> list[Shift]:
    """The weekly shifts of ``agency`` (None: every agency's)."""
    if agency is None:
        return [_shift(r) for r in db.execute(_ALL_SHIFTS).fetchall()]
    return [_shift(r) for r in db.execute(_AGENCY_SHIFTS, (agency,)).fetchall()]


def overrides(db: Handle, after: float, agency: str | None = None) -> list[Override]:
    """The overrides ending after ``after``, of ``agency`` (None: every agency's)."""
    if agency is None:
        return [_override(r) for r in db.execute(_ALL_OVERRIDES, (after,)).fetchall()]
    return [_override(r) for r in db.execute(_AGENCY_OVERRIDES, (agency, after)).fetchall()]


def override(db: Handle, override_id: int) -> Override | None:
    row = db.execute(_OVERRIDE, (override_id,)).fetchone()
    return None if row is None else _override(row)


def replace_shifts(db: Handle, agency: str, new: Sequence[Shift]) -> None:
    """The agency's weekly pattern becomes ``new`` (ids are given afresh)."""
    db.execute(_CLEAR_SHIFTS, (agency,))
    for s in new:
        db.execute(
            _ADD_SHIFT,
            (
                agency,
                s.weekdays,
                s.starts,
                s.ends,
                s.contact_id,
                s.note,
                s.created_by,
                s.created_at,
                s.updated_by,
                s.updated_at,
            ),
        )


def add_override(db: Handle, o: Override) -> int:
    row = db.execute(
        _ADD_OVERRIDE,
        (
            o.agency,
            o.starts,
            o.ends,
            o.contact_id,
            o.note,
            o.created_by,
            o.created_at,
            o.updated_by,
            o.updated_at,
        ),
    ).fetchone()
    return int(row[0])


def remove_override(db: Handle, override_id: int) -> None:
    db.execute(_REMOVE_OVERRIDE, (override_id,))


def stamp(db: Handle) -> tuple[Any, ...]:
    """Changes whenever a roster row is written or deleted (ids only grow): what a desk
    compares, since this process's own writes do not move the database's data_version."""
    return tuple(db.execute(_STAMP).fetchone())


__all__ = [
    "add_override",
    "override",
    "overrides",
    "remove_override",
    "replace_shifts",
    "shifts",
    "stamp",
]
