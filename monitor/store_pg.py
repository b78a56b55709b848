"""The state database on PostgreSQL: the connection the store's thread runs its transactions
on, and the translation of the topic stores' statements.

The driver is psycopg 3, not asyncpg: every topic store is a set of plain transaction
functions (``fn(handle)``) that run on the store's own thread, because SQLite needs that; psycopg
has a synchronous API for exactly those functions and an asyncio one (the leader's lease
connection, :mod:`monitor.cluster`) in one library, and it sends text parameters untyped, as
SQLite takes them, so the same statements run on both backends. asyncpg is asyncio-only and
binds every parameter with a strict binary type: each store function would need an async twin
and many statements a cast.

What the statements need translated is done here, once per statement text: ``?`` placeholders
become ``%s`` (and a literal ``%`` becomes ``%%``), and the marker of
:data:`monitor.sqldialect.SKIP_LOCKED` becomes ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.numeric import FloatLoader

from .dblocation import PostgresUrl
from .schema_pg import MIGRATIONS
from .sqldialect import SKIP_LOCKED

__all__ = ["MIGRATIONS", "PgHandle", "connect", "migrate", "schema_version", "translate"]

# A half-open connection must die well inside the 15 s failover budget (shared/cluster-notes.md
# 4a): the kernel's default keepalive gives up after about two hours.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10000,
}
_LOCK_MIGRATIONS = int.from_bytes(
    hashlib.sha256(b"npsp-monitor migrate").digest()[:8], "big", signed=True
)

_translated: dict[str, str] = {}


def translate(statement: str) -> str:
    """``statement`` (written for SQLite, with ``?``) in psycopg's placeholders."""
    done = _translated.get(statement)
    if done is None:
        done = statement.replace("%", "%%").replace("?", "%s")
        done = done.replace(SKIP_LOCKED, " FOR UPDATE SKIP LOCKED")
        _translated[statement] = done
    return done


class _BoolAsInteger(Dumper):
    """SQLite keeps flags as 0/1 in INTEGER columns; so does the PostgreSQL schema (BIGINT)."""

    format = Format.TEXT

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class PgHandle:
    """A :class:`monitor.sqldialect.Handle` on a psycopg connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        # Always a tuple, even empty: with None psycopg would send the ``%%`` of a literal
        # ``%`` (LIKE 'a%') as it is.
        return self.conn.execute(translate(sql), tuple(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        cursor = self.conn.cursor()
        cursor.executemany(translate(sql), [tuple(p) for p in parameters])
        return cursor


def connect(
    url: PostgresUrl, password: str | None, *, autocommit: bool = False
) -> psycopg.Connection[Any]:
    """A new connection (``connect_timeout`` 5 s unless the URL says otherwise)."""
    options: dict[str, Any] = dict(_KEEPALIVES)
    if "connect_timeout" not in url.options:
        options["connect_timeout"] = 5
    if "application_name" not in url.options:
        options["application_name"] = "npsp-monitor"
    if password is not None:
        options["password"] = password
    conn = psycopg.connect(str(url), autocommit=autocommit, **options)
    conn.adapters.register_dumper(bool, _BoolAsInteger)
    # SUM() of a BIGINT is NUMERIC: read as float, as SQLite gives it.
    conn.adapters.register_loader("numeric", FloatLoader)
    return conn


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The migrations this database has had (0: none, an empty database)."""
    row = conn.execute("SELECT to_regclass('npsp_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute("SELECT version FROM npsp_schema").fetchone()
    return int(found[0]) if found else 0


def migrate(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Run the migrations the database has not had, under a lock that makes several hosts
    starting at once take turns; (version before, version after). A database newer than
    this code is refused by the caller, never touched."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATIONS,))
        conn.execute("CREATE TABLE IF NOT EXISTS npsp_schema (version BIGINT NOT NULL)")
        before = schema_version(conn)
        if before > len(MIGRATIONS):
            return before, before
        if conn.execute("SELECT count(*) FROM npsp_schema").fetchone() == (0,):
            conn.execute("INSERT INTO npsp_schema (version) VALUES (0)")
        for number, script in enumerate(MIGRATIONS[before:], start=before + 1):
            conn.execute(script.encode())
            conn.execute("UPDATE npsp_schema SET version = %s", (number,))
        return before, len(MIGRATIONS)
