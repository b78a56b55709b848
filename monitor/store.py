"""What must survive a restart, in SQLite (WAL): the database the daemon and the command line
share, opened, migrated forward (:mod:`monitor.schema`) and run on one dedicated thread: SQLite
connections are not shared across threads, and the event loop never waits on disk.

The statements live in each topic's store (``monitor/rules/<topic>/store.py``,
:mod:`monitor.changes_store`, :mod:`monitor.inbox_store`…), run by :meth:`Store.transact`;
:meth:`Store.record`, :meth:`Store.states`, :meth:`Store.changes` and :meth:`Store.forget` are
the daemon's own calls on :mod:`monitor.changes_store`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from . import changes_store
from .changes_store import StoredState
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
    "StoredState",
    "missing_database",
    "run_with_store",
]


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


#: The ``--init`` option of the commands that write or read the daemon's database.
INIT_HELP = "create the state database if there is none yet (0600, owned by whoever runs this)"


def missing_database(path: Path, *, init: bool = True) -> str:
    """What a command that will not create ``path`` by surprise says when it is not there."""
    if init:
        return f"no state database at {path}: start the daemon once, or give --init to create it"
    return f"no state database at {path}: start the daemon once"


class MissingDatabase(StoreError):
    """There is no database at the path and the caller did not ask to create one."""


class Store:
    """The daemon's durable memory. Create with :meth:`open`, finish with :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="npsp-store")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path, *, create: bool = True) -> Store:
        """Open the database at ``path``, migrating it forward. Without ``create`` a missing
        database is :class:`MissingDatabase` (the command line never makes one by surprise);
        the daemon creates it, 0600 in a 0700 folder, owned by whoever runs it."""
        store = cls(path)
        try:
            await store._call(store._open, create)
        except StoreError:
            store._executor.shutdown(wait=False)
            raise
        except (sqlite3.Error, OSError) as exc:
            store._executor.shutdown(wait=False)
            raise StoreError(f"cannot open state database {path}: {exc}") from None
        return store

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # ----- runs on the store thread ---------------------------------------------------------

    def _open(self, create: bool) -> None:
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
        self._db = db

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("store is closed")
        return self._db

    def _transact(self, fn: Callable[[Handle], T]) -> T:
        db = self._conn()
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

    async def _read(self, fn: Callable[[Handle], T]) -> T:
        """Run ``fn(connection)``, which only reads, on the store's thread outside a transaction
        (it takes no write lock, as :meth:`transact` does)."""
        return await self._call(lambda: fn(self._conn()))

    # ----- async API --------------------------------------------------------------------------

    async def transact(self, fn: Callable[[Handle], T]) -> T:
        """Run ``fn(connection)`` in one transaction on the store's thread (for other modules'
        tables, such as the outbox, so that they need not know how the store is run)."""
        return await self._call(self._transact, fn)

    async def data_version(self) -> int:
        """SQLite's ``data_version``: it changes when *another* connection (the command line)
        commits, which is how the daemon notices announcements, maintenance and incident
        actions written while it runs."""
        return await self._call(
            lambda: int(self._conn().execute("PRAGMA data_version").fetchone()[0])
        )

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


def run_with_store(path: Path, work: Callable[[Store], Awaitable[T]], *, create: bool = False) -> T:
    """For the command line: open the store at ``path`` (an existing one unless ``create``),
    run ``work`` on it, close it."""

    async def run() -> T:
        store = await Store.open(path, create=create)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())
