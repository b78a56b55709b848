"""Every statement on the ``incident_comments`` table: one function per query, each taking the
database handle of a transaction (:meth:`monitor.store.Store.transact` runs them). Dialect
details come from :mod:`monitor.sqldialect`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sqldialect import Handle, insert, sql

_OF_INCIDENT = sql("SELECT ts, author, text FROM incident_comments WHERE incident = ? ORDER BY id")
_INSERT = insert("incident_comments", ("incident", "ts", "author", "text"))


@dataclass(frozen=True, slots=True)
class Comment:
    ts: float
    author: str
    text: str


def of_incident(db: Handle, incident: str) -> list[Comment]:
    """An incident's comments, oldest first."""
    return [Comment(ts, author, text) for ts, author, text in db.execute(_OF_INCIDENT, (incident,))]


def add(db: Handle, incident: str, ts: float, author: str, text: str) -> None:
    db.execute(_INSERT, (incident, ts, author, text))


__all__ = ["Comment", "add", "of_incident"]
