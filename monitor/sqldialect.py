"""What differs from one database to another, in one place: this is SQLite's.

A topic's store (``monitor/rules/<topic>/store.py``) writes its statements through the helpers
below and takes a :class:`Handle`, the connection that :meth:`monitor.store.Store.transact`
hands it inside a transaction. The statements themselves are plain SQL that SQLite and
PostgreSQL both run (``ON CONFLICT … DO NOTHING``, ``ON CONFLICT … DO UPDATE … excluded``,
``RETURNING``; never ``INSERT OR IGNORE``, ``REPLACE`` or ``lastrowid``); what still differs is
here:

* the placeholders: statements are written with ``?``; :func:`sql` turns them into the
  backend's (SQLite's own, so it changes nothing here; PostgreSQL's are ``$1``, ``$2``…);
* the shapes of an insert that keeps an existing row, of an upsert and of ``RETURNING``;
* row locks: :data:`SKIP_LOCKED` after a ``SELECT`` claims its rows on PostgreSQL (``FOR
  UPDATE SKIP LOCKED``: two hosts never claim the same row) and is a comment to SQLite, whose
  ``BEGIN IMMEDIATE`` already lets one writer in at a time.

The PostgreSQL handle (:mod:`monitor.store_pg`) translates the placeholders and the marker when
it runs a statement, so a statement is one string for both backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

__all__ = [
    "SKIP_LOCKED",
    "Cursor",
    "Handle",
    "insert",
    "insert_ignore",
    "placeholders",
    "sql",
    "upsert",
]


#: Appended to a ``SELECT`` whose rows the transaction claims (see the module's docstring).
SKIP_LOCKED = " /* FOR UPDATE SKIP LOCKED */"


class Cursor(Protocol):
    """What a statement gives back: its rows, and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Handle(Protocol):
    """A database connection inside a transaction (SQLite's ``sqlite3.Connection`` is one)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


def sql(statement: str) -> str:
    """``statement``, written with ``?`` placeholders, in this backend's placeholders."""
    return statement


def placeholders(count: int) -> str:
    """``?, ?, ?``: the placeholders of ``count`` values (before :func:`sql`)."""
    return ", ".join("?" * count)


def insert(table: str, columns: Sequence[str], *, returning: str | None = None) -> str:
    """``INSERT INTO table (columns) VALUES (…)``, optionally giving back ``returning`` (say
    the new row's ``id``: read it with ``fetchone()``)."""
    names, values = ", ".join(columns), placeholders(len(columns))
    statement = f"INSERT INTO {table} ({names}) VALUES ({values})"  # noqa: S608 - the caller's constants
    if returning is not None:
        statement += f" RETURNING {returning}"
    return sql(statement)


def insert_ignore(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """An insert that keeps the existing row when one has the same ``key`` (the cursor's
    ``rowcount`` is then 0)."""
    return insert(table, columns) + f" ON CONFLICT ({', '.join(key)}) DO NOTHING"


def upsert(table: str, columns: Sequence[str], key: Sequence[str], update: Sequence[str]) -> str:
    """An insert that, when a row has the same ``key``, sets its ``update`` columns to the
    values given instead."""
    sets = ", ".join(f"{column} = excluded.{column}" for column in update)
    return insert(table, columns) + f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
