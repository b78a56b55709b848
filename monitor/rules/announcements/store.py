"""Every statement of the topic: on the ``announcements`` table, and on the unannounced-change
watch's ``observed_values`` (the value accepted per check and field) and
``unannounced_changes`` (what was told). One function per query, each taking the database
handle of a transaction (:meth:`monitor.store.Store.transact` runs them, several in one
transaction when they must go together). Dialect details come from :mod:`monitor.sqldialect`.
``changes`` is stored as the JSON of :class:`~.model.Changes`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ...sqldialect import Handle, insert, sql, upsert
from .model import Announcement, Changes, Finding

COLUMNS = (
    "id, agency, system, ref, announced_at, effective_at, changes, source, author,"
    " working_days, required, compliant, created_at, cancelled_at, handled_at, applied_at"
)
_SELECT = f"SELECT {COLUMNS} FROM announcements"  # noqa: S608 - constant columns; values are bound
_ALL = sql(_SELECT + " ORDER BY effective_at, id")
_BY_ID = sql(_SELECT + " WHERE id = ?")
_BY_REF = sql(_SELECT + " WHERE agency = ? AND ref = ?")
_INSERT = insert(
    "announcements",
    (
        "agency",
        "system",
        "ref",
        "announced_at",
        "effective_at",
        "changes",
        "source",
        "author",
        "working_days",
        "required",
        "compliant",
        "created_at",
    ),
    returning="id",
)
_CANCEL = sql("UPDATE announcements SET cancelled_at = ? WHERE id = ?")
MarkColumn = Literal["handled_at", "applied_at"]
_MARK: dict[str, str] = {
    column: sql(f"UPDATE announcements SET {column} = ? WHERE id = ?")  # noqa: S608 - column from a fixed set
    for column in ("handled_at", "applied_at")
}
_ACCEPTED = sql("SELECT check_key, field, value FROM observed_values")
_TOLD = sql("SELECT check_key, field, new FROM unannounced_changes ORDER BY id")
_ACCEPT = upsert(
    "observed_values",
    ("check_key", "field", "value", "since"),
    key=("check_key", "field"),
    update=("value", "since"),
)
_TELL = insert("unannounced_changes", ("check_key", "field", "old", "new", "observed_at"))


def _row(row: Sequence[Any]) -> Announcement:
    (id_, agency, system, ref, ann, eff, changes, source, author, wd, req, ok, created, *rest) = row
    cancelled, handled, applied = rest
    return Announcement(
        int(id_),
        agency,
        system,
        ref,
        ann,
        eff,
        Changes.model_validate_json(changes),
        source,
        author,
        int(wd),
        int(req),
        bool(ok),
        created,
        cancelled,
        handled,
        applied,
    )


def every(db: Handle) -> list[Announcement]:
    """Every announcement, oldest effective first."""
    return [_row(r) for r in db.execute(_ALL).fetchall()]


def get(db: Handle, announcement_id: int) -> Announcement | None:
    row = db.execute(_BY_ID, (announcement_id,)).fetchone()
    return None if row is None else _row(row)


def by_ref(db: Handle, agency: str, ref: str) -> Announcement | None:
    """The agency's announcement with the sender's ``ref``, if there is one."""
    row = db.execute(_BY_REF, (agency, ref)).fetchone()
    return None if row is None else _row(row)


def add(db: Handle, a: Announcement) -> int:
    """Store ``a`` (its ``id`` is not used); its new id."""
    row = db.execute(
        _INSERT,
        (
            a.agency,
            a.system,
            a.ref,
            a.announced_at,
            a.effective_at,
            a.changes.model_dump_json(exclude_none=True),
            a.source,
            a.author,
            a.working_days,
            a.required,
            int(a.compliant),
            a.created_at,
        ),
    ).fetchone()
    return int(row[0])


def set_cancelled(db: Handle, announcement_id: int, at: float) -> None:
    db.execute(_CANCEL, (at, announcement_id))


def mark(db: Handle, column: MarkColumn, ids: Iterable[int], at: float) -> None:
    """Record ``at`` as when the announcements ``ids`` were handled or applied."""
    db.executemany(_MARK[column], [(at, i) for i in ids])


# ----- the unannounced-change watch


def accepted(db: Handle) -> list[tuple[str, str, str]]:
    """The value accepted per check and field, as (check, field, value)."""
    return [(c, f, v) for c, f, v in db.execute(_ACCEPTED).fetchall()]


def told(db: Handle) -> list[tuple[str, str, str]]:
    """Every unannounced change told, oldest first, as (check, field, new value)."""
    return [(c, f, v) for c, f, v in db.execute(_TOLD).fetchall()]


def accept(db: Handle, values: Iterable[tuple[str, str, str, float]]) -> None:
    """Record accepted values, as (check, field, value, since): the latest per check and
    field."""
    db.executemany(_ACCEPT, list(values))


def tell(db: Handle, findings: Iterable[Finding]) -> None:
    """Record unannounced changes told."""
    db.executemany(_TELL, [(x.check_key, x.field, x.old, x.new, x.time) for x in findings])
