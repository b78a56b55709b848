"""Every statement on ``senior_rights_changes``: one function per query, each taking the
database handle of a transaction (:meth:`monitor.store.Store.transact` runs them; the accounts'
actions call :func:`record` inside their own). Also the report's one read of ``accounts``: the
agency-admins who held the rights before the records began."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...sqldialect import Handle, insert, sql
from .model import SENIOR_ROLE, Change, ChangeKind, LegacyAccount

__all__ = ["before", "legacy_holders", "mark_notified", "pending", "record"]

_COLUMNS = "id, agency, account_id, name, change, at, actor, source, notified_at"
_SELECT = f"SELECT {_COLUMNS} FROM senior_rights_changes"  # noqa: S608 - constant columns
_ADD = insert(
    "senior_rights_changes",
    ("agency", "account_id", "name", "change", "at", "actor", "source"),
    returning="id",
)
_PENDING = sql(_SELECT + " WHERE notified_at IS NULL ORDER BY at, id")
_BEFORE = sql(_SELECT + " WHERE at < ? ORDER BY at, id")
_MARK = sql("UPDATE senior_rights_changes SET notified_at = ? WHERE id = ? AND notified_at IS NULL")
# Held before the records began: an active agency-admin never recorded, or an account whose
# first recorded change is a revocation (it had the role before the table existed).
_LEGACY = sql(
    "SELECT a.id, a.name, a.agency, a.created_at FROM accounts a"
    " WHERE a.agency IS NOT NULL AND ("
    " (a.role = ? AND a.revoked_at IS NULL AND NOT EXISTS"
    " (SELECT 1 FROM senior_rights_changes s WHERE s.account_id = a.id))"
    " OR (SELECT s.change FROM senior_rights_changes s WHERE s.account_id = a.id"
    " ORDER BY s.at, s.id LIMIT 1) = 'revoked')"
    " ORDER BY a.id"
)


def _change(row: Sequence[Any]) -> Change:
    id_, agency, account_id, name, change, at, actor, source, notified_at = row
    return Change(
        id=int(id_),
        agency=str(agency),
        account_id=str(account_id),
        name=str(name),
        change="granted" if change == "granted" else "revoked",
        at=float(at),
        actor=str(actor),
        source=str(source),
        notified_at=None if notified_at is None else float(notified_at),
    )


def record(
    db: Handle,
    *,
    agency: str,
    account_id: str,
    name: str,
    change: ChangeKind,
    at: float,
    actor: str,
    source: str,
) -> int:
    """Record a grant or a revocation of senior rights (in the account change's transaction);
    its id."""
    row = db.execute(_ADD, (agency, account_id, name, change, at, actor, source)).fetchone()
    return int(row[0])


def pending(db: Handle) -> list[Change]:
    """The changes operations have not been told of yet, oldest first."""
    return [_change(row) for row in db.execute(_PENDING).fetchall()]


def mark_notified(db: Handle, change_id: int, at: float) -> bool:
    """Record that operations were told; False if it was recorded already (another leader)."""
    return db.execute(_MARK, (at, change_id)).rowcount == 1


def before(db: Handle, end: float) -> list[Change]:
    """Every change before ``end``, in order (a report's replay)."""
    return [_change(row) for row in db.execute(_BEFORE, (end,)).fetchall()]


def legacy_holders(db: Handle) -> list[LegacyAccount]:
    """The accounts that held senior rights before the records began (see the model's
    :func:`~.model.replay`)."""
    return [
        LegacyAccount(str(i), str(name), str(agency), float(created))
        for i, name, agency, created in db.execute(_LEGACY, (SENIOR_ROLE,)).fetchall()
    ]
