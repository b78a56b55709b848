"""What must survive a restart: the database the daemon and the command line share, in SQLite
(WAL; one gateway host, the default) or PostgreSQL (several hosts, :mod:`monitor.store_pg`),
opened, migrated forward (:mod:`monitor.schema`, :mod:`monitor.schema_pg`) and run on one
dedicated thread: SQLite connections are not shared across threads, and the event loop never
waits on disk or on the network.

The statements live in each topic's store (``monitor/rules/<topic>/store.py``,
:mod:`monitor.changes_store`, :mod:`monitor.inbox_store`…), run by :meth:`Store.transact`;
:meth:`Store.record`, :meth:`Store.states`, :meth:`Store.changes` and :meth:`Store.forget` are
the daemon's own calls on :mod:`monitor.changes_store`.
"""

from __future__ import annotations

import asyncio
import copy
import os
import sqlite3
import stat
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TypeVar

from . import changes_store
from .changes_store import StoredState
from .dblocation import DatabaseLocation, PostgresUrl, describe
from .schema import MIGRATIONS as _MIGRATIONS
from .schema import statements
from .sqldialect import Handle
from .state import Event

T = TypeVar("T")

__all__ = [
    "INIT_HELP",
    "MissingDatabase",
    "Store",
    "StoreError",
    "StoreSettings",
    "StoredState",
    "missing_database",
    "open_configured",
    "run_with_store",
    "schema_versions",
]


def _pg() -> ModuleType:
    """:mod:`monitor.store_pg`, imported when a PostgreSQL store is first used: psycopg costs
    ~10 MB of RSS that a single host on SQLite (the default) must not pay."""
    from . import store_pg  # noqa: PLC0415 - see above

    return store_pg


class _NeverRaised(Exception):
    """Stands for a psycopg error class while psycopg is not loaded: nothing can raise it."""


def _pg_error(name: str = "Error") -> type[BaseException]:
    """psycopg's error class ``name`` if psycopg is loaded (a PostgreSQL store is open)."""
    module = sys.modules.get("psycopg")
    found = getattr(module, name, None) if module is not None else None
    return found if isinstance(found, type) and issubclass(found, BaseException) else _NeverRaised


def _private_folder(database: Path) -> None:
    """Tighten the database's folder to 0700 if it is ours, open to others, and holds nothing
    but this database (an existing 0755 folder made by hand for it, or by an older version).
    A shared folder (``/tmp``, ``/var/lib``, a home) is left as it is: tightening it would
    break it for everyone else; the database file itself is 0600 anyway."""
    path = database.parent
    ours = {database.name + suffix for suffix in ("", "-wal", "-shm", "-journal")}
    try:
        st = path.stat()
        if st.st_uid != os.geteuid() or not st.st_mode & 0o077:
            return
        if st.st_mode & (stat.S_ISVTX | stat.S_IWOTH):
            return  # a folder for everyone, like /tmp
        with os.scandir(path) as entries:
            if any(entry.name not in ours for entry in entries):
                return
        path.chmod(0o700)
    except OSError:
        pass


def _private_file(path: Path) -> None:
    """Create the database file 0600 whatever the umask (the command-line tools and the demo
    run outside the unit's ``UMask=0077``), and tighten one found readable by others. SQLite
    gives its -wal and -shm files the database file's mode, so they follow."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return  # sqlite3.connect reports it, with the database's name
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class StoreError(Exception):
    """The database cannot be opened or written."""


class Deposed(StoreError):
    """Leader's work refused: this host no longer holds the leader's lease with the epoch it
    led with (see :mod:`monitor.cluster.lease`); nothing was written."""


#: The ``--init`` option of the commands that write or read the daemon's database.
INIT_HELP = "create the state database if there is none yet (0600, owned by whoever runs this)"


def missing_database(path: Path, *, init: bool = True) -> str:
    """What a command that will not create ``path`` by surprise says when it is not there."""
    if init:
        return f"no state database at {path}: start the daemon once, or give --init to create it"
    return f"no state database at {path}: start the daemon once"


class MissingDatabase(StoreError):
    """There is no database at the path and the caller did not ask to create one."""


class _Sqlite:
    """The embedded backend: one file, one connection, WAL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db: sqlite3.Connection | None = None

    def open(self, create: bool) -> None:
        if not create and not self.path.exists():
            raise MissingDatabase(missing_database(self.path))
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_folder(self.path)
        _private_file(self.path)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(_MIGRATIONS):
            db.close()
            raise StoreError(
                f"{self.path} was written by a newer npsp-monitor (schema {version}); "
                "refusing to touch it"
            )
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            db.execute("BEGIN")
            for statement in statements(script):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
            db.execute("COMMIT")
        self.db = db

    def conn(self) -> sqlite3.Connection:
        if self.db is None:
            raise StoreError("store is closed")
        return self.db

    def transact(self, fn: Callable[[Handle], T]) -> T:
        db = self.conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
            if isinstance(result, sqlite3.Cursor):
                # A cursor handed back to the event loop's thread is finalised there, resetting
                # its statement while this thread may be running it again: SQLite then says
                # "bad parameter or other API misuse" (seen in the storm bench). Close it here.
                result.close()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def read(self, fn: Callable[[Handle], T]) -> T:
        return fn(self.conn())

    def data_version(self) -> int:
        return self.watch(())[0]

    def watch(self, reads: Sequence[Callable[[Handle], T]]) -> tuple[int, list[T]]:
        db = self.conn()  # outside a transaction: reads only, no write lock taken
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        return version, [read(db) for read in reads]

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


class _Postgres:
    """The shared backend: one connection on the store's thread, opened again after it broke
    (PostgreSQL restarted, the network came back); the failed call is the caller's to retry."""

    def __init__(self, url: PostgresUrl, password: str | None) -> None:
        self.url = url
        self.password = password
        self.db: Any = None

    def open(self, create: bool) -> None:
        conn = _pg().connect(self.url, self.password)
        try:
            version = _pg().schema_version(conn)
            conn.rollback()
            if version > len(_pg().MIGRATIONS):
                raise StoreError(
                    f"{describe(self.url)} was written by a newer npsp-monitor (schema "
                    f"{version}); refusing to touch it"
                )
            if version == 0 and not create:
                raise MissingDatabase(
                    f"no npsp-monitor schema in {describe(self.url)}: start the daemon once, "
                    "or run npsp-monitor store migrate"
                )
            _pg().migrate(conn)
        except BaseException:
            conn.close()
            raise
        self.db = conn

    def conn(self) -> Any:
        if self.db is None:
            raise StoreError("store is closed")
        if self.db.broken or self.db.closed:
            self.db = _pg().connect(self.url, self.password)
        return self.db

    def transact(self, fn: Callable[[Handle], T]) -> T:
        conn = self.conn()
        with conn.transaction():
            return fn(_pg().PgHandle(conn))

    def read(self, fn: Callable[[Handle], T]) -> T:
        conn = self.conn()
        with conn.transaction():
            return fn(_pg().PgHandle(conn))

    def data_version(self) -> int:
        return self.watch(())[0]

    def watch(self, reads: Sequence[Callable[[Handle], T]]) -> tuple[int, list[T]]:
        conn = self.conn()
        with conn.transaction():
            row = conn.execute("SELECT last_value, is_called FROM npsp_data_version").fetchone()
            db = _pg().PgHandle(conn)
            return (int(row[0]) if row[1] else 0), [read(db) for read in reads]

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


_Backend = _Sqlite | _Postgres


class Store:
    """The daemon's durable memory. Create with :meth:`open`, finish with :meth:`close`."""

    def __init__(self, location: DatabaseLocation, password: str | None = None) -> None:
        self.location = location
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="npsp-store")
        self._backend: _Backend = (
            _Postgres(location, password)
            if isinstance(location, PostgresUrl)
            else _Sqlite(location)
        )
        self._fence: Callable[[Handle], None] | None = None

    @property
    def shared(self) -> bool:
        """True on PostgreSQL: several gateway hosts may be writing to this database."""
        return isinstance(self._backend, _Postgres)

    @property
    def path(self) -> Path:
        """The SQLite file (only for an embedded store)."""
        if not isinstance(self.location, Path):
            raise StoreError("this store is not a file")
        return self.location

    @classmethod
    async def open(
        cls, location: DatabaseLocation, *, create: bool = True, password: str | None = None
    ) -> Store:
        """Open the database at ``location`` (a SQLite path or a PostgreSQL URL; ``password``
        for the latter), migrating it forward. Without ``create`` a missing database is
        :class:`MissingDatabase` (the command line never makes one by surprise); the daemon
        creates it (a file 0600 in a 0700 folder, owned by whoever runs it)."""
        store = cls(location, password)
        try:
            await store._call(store._backend.open, create)
        except StoreError:
            store._executor.shutdown(wait=False)
            raise
        except (sqlite3.Error, OSError, _pg_error()) as exc:
            store._executor.shutdown(wait=False)
            raise StoreError(f"cannot open state database {describe(location)}: {exc}") from None
        return store

    async def close(self) -> None:
        await self._call(self._backend.close)
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except _pg_error("OperationalError") as exc:
            raise StoreError(f"the state database failed: {exc}") from None

    async def _read(self, fn: Callable[[Handle], T]) -> T:
        """Run ``fn(connection)``, which only reads, on the store's thread (SQLite: outside a
        transaction, taking no write lock as :meth:`transact` does)."""
        return await self._call(self._backend.read, fn)

    # ----- async API --------------------------------------------------------------------------

    async def transact(self, fn: Callable[[Handle], T]) -> T:
        """Run ``fn(connection)`` in one transaction on the store's thread (for other modules'
        tables, such as the outbox, so that they need not know how the store is run)."""
        fence = self._fence
        if fence is None:
            return await self._call(self._backend.transact, fn)

        def fenced(db: Handle) -> T:
            fence(db)
            return fn(db)

        return await self._call(self._backend.transact, fenced)

    def fenced(self, fence: Callable[[Handle], None]) -> Store:
        """This store (the same connection and thread), each of whose transactions first runs
        ``fence`` and is rolled back when it raises: the leader's work is written through one
        (:mod:`monitor.cluster.lease`). Closing it closes this store."""
        view = copy.copy(self)
        view._fence = fence
        return view

    async def data_version(self) -> int:
        """A number that changes when *another* connection (the command line; on PostgreSQL
        another host, or this one) commits to what the desks read, which is how the daemon
        notices announcements, maintenance and incident
        actions written while it runs."""
        return await self._call(self._backend.data_version)

    async def watch(self, reads: Sequence[Callable[[Handle], T]]) -> tuple[int, list[T]]:
        """:meth:`data_version` and what each of ``reads`` (small reads only) finds, in one call
        on the store's thread: the rules desks' once-a-second look, which would otherwise be a
        transaction per desk waiting its turn on that one thread (before a /metrics scrape's
        outbox read, say)."""
        return await self._call(self._backend.watch, reads)

    async def record(self, events: Iterable[Event]) -> None:
        """Append state changes and update the systems' current state, in one transaction."""
        batch = list(events)
        if batch:
            await self.transact(lambda db: changes_store.record(db, batch))

    async def states(self) -> dict[str, StoredState]:
        """Every system's last announced state, keyed ``agency/system``."""
        return await self._read(changes_store.states)

    async def changes(
        self, limit: int = 100, key: str | None = None, *, agency: str | None = None
    ) -> list[Event]:
        """The latest state changes, newest first (optionally of one system or one agency)."""
        return await self._read(lambda db: changes_store.latest(db, limit, key, agency))

    async def forget(self, keys: list[str]) -> None:
        """Drop the current state of systems removed from the registry (history stays)."""
        if keys:
            await self.transact(lambda db: changes_store.forget(db, keys))


class StoreSettings(Protocol):
    """Where the config says the database is (:class:`monitor.config.Config` is one)."""

    @property
    def state_db(self) -> DatabaseLocation: ...

    def state_db_password(self) -> str | None: ...


def _password(settings: StoreSettings) -> str | None:
    try:
        return settings.state_db_password()
    except ValueError as exc:
        raise StoreError(f"state_db_password_file: {exc}") from None


async def open_configured(settings: StoreSettings, *, create: bool = True) -> Store:
    """:meth:`Store.open` on the config's database, with its password read from the
    credential file (a file that cannot be read is a :class:`StoreError` naming it)."""
    password = _password(settings)
    return await Store.open(settings.state_db, create=create, password=password)


async def schema_versions(settings: StoreSettings) -> tuple[int, int]:
    """(the schema version the config's database is at, the one this code writes), without
    migrating anything; a missing SQLite file is at 0."""
    password = _password(settings)
    location = settings.state_db

    def read() -> tuple[int, int]:
        if isinstance(location, PostgresUrl):
            conn = _pg().connect(location, password)
            try:
                return _pg().schema_version(conn), len(_pg().MIGRATIONS)
            finally:
                conn.close()
        if not location.exists():
            return 0, len(_MIGRATIONS)
        db = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
        try:
            return int(db.execute("PRAGMA user_version").fetchone()[0]), len(_MIGRATIONS)
        finally:
            db.close()

    try:
        return await asyncio.to_thread(read)
    except (sqlite3.Error, _pg_error()) as exc:
        raise StoreError(f"cannot read state database {describe(location)}: {exc}") from None


def run_with_store(
    settings: StoreSettings, work: Callable[[Store], Awaitable[T]], *, create: bool = False
) -> T:
    """For the command line: open the config's store (an existing one unless ``create``),
    run ``work`` on it, close it."""

    async def run() -> T:
        store = await open_configured(settings, create=create)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())
