"""Every statement on ``contacts`` and ``contact_ties``, and the contacts' statements on the
outbox (dropping a revoked person's pending rows, asking whether a row's person is revoked):
one function per query, each taking the handle of a transaction. Dialect details come from
:mod:`monitor.sqldialect`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..sqldialect import Handle, insert, sql
from .model import StoredContact

COLUMNS = (
    "id, agency, name, role, phone, email, portal_account, webhook, channels, language,"
    " account_id, created_at, updated_at, confirmed_at, removed_at"
)
#: What an edit may change.
EDITABLE = (
    "name",
    "role",
    "phone",
    "email",
    "portal_account",
    "webhook",
    "channels",
    "language",
    "account_id",
)
_SELECT = f"SELECT {COLUMNS} FROM contacts"  # noqa: S608 - constant columns
_GET = sql(_SELECT + " WHERE id = ?")
_ALL = sql(_SELECT + " WHERE removed_at IS NULL ORDER BY agency, created_at, id")
_OF_AGENCY = sql(_SELECT + " WHERE agency = ? AND removed_at IS NULL ORDER BY created_at, id")
_ADD = insert("contacts", tuple(c.strip() for c in COLUMNS.split(",")))
_REMOVE = sql("UPDATE contacts SET removed_at = ?, updated_at = ? WHERE id = ?")
_REVOKED = sql("SELECT id FROM accounts WHERE revoked_at IS NOT NULL")
_TIES = sql("SELECT person, account_id FROM contact_ties")
_ADD_TIE = sql(
    "INSERT INTO contact_ties (person, account_id) VALUES (?, ?)"
    " ON CONFLICT (person) DO UPDATE SET account_id = excluded.account_id"
)
_DROP_TIE = sql("DELETE FROM contact_ties WHERE person = ?")
_PEOPLE_OF = sql(
    "SELECT agency || '/' || id FROM contacts WHERE account_id = ?"
    " UNION SELECT person FROM contact_ties WHERE account_id = ?"
)
_DROP_PENDING = sql(
    "UPDATE outbox SET status = 'dropped', last_error = ?, claimed_at = NULL"
    " WHERE person = ? AND status = 'pending'"
)
_PERSON_REVOKED = sql(
    "SELECT 1 FROM accounts WHERE revoked_at IS NOT NULL AND id IN ("
    " SELECT account_id FROM contacts WHERE id = ? AND agency = ?"
    " UNION SELECT account_id FROM contact_ties WHERE person = ?)"
)
_STAMP = sql(
    "SELECT (SELECT COUNT(*) FROM contacts), (SELECT MAX(updated_at) FROM contacts),"
    " (SELECT COUNT(*) FROM accounts WHERE revoked_at IS NOT NULL)"
)
_DROP_ONE = sql("UPDATE outbox SET status = 'dropped', last_error = ? WHERE id = ?")

REVOKED_REASON = "account revoked"


def _contact(row: Any) -> StoredContact:
    values = list(row)
    values[8] = tuple(json.loads(values[8]))
    for i in (11, 12, 13, 14):
        values[i] = None if values[i] is None else float(values[i])
    return StoredContact(*values)


def get(db: Handle, contact_id: str) -> StoredContact | None:
    """The stored contact ``contact_id`` (removed or not)."""
    row = db.execute(_GET, (contact_id,)).fetchone()
    return None if row is None else _contact(row)


def listed(db: Handle, agency: str | None = None) -> list[StoredContact]:
    """The contacts not removed (of ``agency``, if given), oldest first."""
    cursor = db.execute(_ALL) if agency is None else db.execute(_OF_AGENCY, (agency,))
    return [_contact(row) for row in cursor.fetchall()]


def add(db: Handle, c: StoredContact) -> None:
    db.execute(
        _ADD,
        (
            c.id,
            c.agency,
            c.name,
            c.role,
            c.phone,
            c.email,
            c.portal_account,
            c.webhook,
            json.dumps(list(c.channels)),
            c.language,
            c.account_id,
            c.created_at,
            c.updated_at,
            c.confirmed_at,
            c.removed_at,
        ),
    )


def update(db: Handle, contact_id: str, changes: Mapping[str, Any], now: float) -> None:
    """Set the ``changes`` (keys among :data:`EDITABLE`) of a contact."""
    names = [n for n in EDITABLE if n in changes]
    values = [json.dumps(list(changes[n])) if n == "channels" else changes[n] for n in names]
    assignments = ", ".join(f"{n} = ?" for n in [*names, "updated_at"])
    statement = sql(f"UPDATE contacts SET {assignments} WHERE id = ?")  # noqa: S608 - names from EDITABLE
    db.execute(statement, (*values, now, contact_id))


def remove(db: Handle, contact_id: str, now: float) -> None:
    """Soft-delete: the row stays for the audit and the outbox's history."""
    db.execute(_REMOVE, (now, now, contact_id))


def revoked_accounts(db: Handle) -> frozenset[str]:
    return frozenset(str(r[0]) for r in db.execute(_REVOKED))


def stamp(db: Handle) -> tuple[Any, ...]:
    """What changes whenever a contact is added, edited or removed, or an account revoked
    (whoever wrote it: this process, the command line, another host)."""
    return tuple(db.execute(_STAMP).fetchone())


def ties(db: Handle) -> dict[str, str]:
    """Registry contacts tied to an account: person id → account id."""
    return {str(p): str(a) for p, a in db.execute(_TIES)}


def set_ties(db: Handle, wanted: Mapping[str, str]) -> int:
    """Make ``contact_ties`` hold exactly ``wanted``; how many rows changed."""
    have = ties(db)
    gone = [p for p in have if p not in wanted]
    new = [(p, a) for p, a in wanted.items() if have.get(p) != a]
    db.executemany(_DROP_TIE, [(p,) for p in gone])
    db.executemany(_ADD_TIE, new)
    return len(gone) + len(new)


def people_of_account(db: Handle, account_id: str) -> list[str]:
    """The person ids tied to ``account_id`` (stored contacts and registry ties)."""
    return sorted(str(r[0]) for r in db.execute(_PEOPLE_OF, (account_id, account_id)))


def drop_pending(db: Handle, people: Iterable[str], reason: str = REVOKED_REASON) -> int:
    """Every pending outbox row of ``people`` becomes ``dropped``; how many."""
    return sum(db.execute(_DROP_PENDING, (reason, p)).rowcount for p in people)


def person_revoked(db: Handle, person: str) -> bool:
    """Whether ``person`` is tied to a revoked account."""
    agency, _, contact_id = person.partition("/")
    row = db.execute(_PERSON_REVOKED, (contact_id, agency, person)).fetchone()
    return row is not None


def drop_row(db: Handle, row_id: int, reason: str = REVOKED_REASON) -> None:
    """One outbox row is not sent (its person's account was revoked)."""
    db.execute(_DROP_ONE, (reason, row_id))


__all__ = [
    "COLUMNS",
    "EDITABLE",
    "REVOKED_REASON",
    "add",
    "drop_pending",
    "drop_row",
    "get",
    "listed",
    "people_of_account",
    "person_revoked",
    "remove",
    "revoked_accounts",
    "set_ties",
    "stamp",
    "ties",
    "update",
]
