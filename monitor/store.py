"""What must survive a restart, in SQLite (WAL): state changes and each system's last state.

The SQL is plain (no SQLite-only functions, ``?`` placeholders translated by the driver layer)
so that the same statements can later run on PostgreSQL. Every call runs on one dedicated
thread: SQLite connections are not shared across threads, and the event loop never waits on
disk.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from npsp_common.types import Why

from .state import Event, State

T = TypeVar("T")

_MIGRATIONS = [
    """
    CREATE TABLE state_changes (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        agency TEXT NOT NULL,
        system TEXT NOT NULL,
        old_state TEXT NOT NULL,
        new_state TEXT NOT NULL,
        reason TEXT NOT NULL,
        vantage TEXT NOT NULL
    );
    CREATE INDEX state_changes_system ON state_changes (agency, system, ts);
    CREATE INDEX state_changes_ts ON state_changes (ts);
    CREATE TABLE system_state (
        agency TEXT NOT NULL,
        system TEXT NOT NULL,
        state TEXT NOT NULL,
        since REAL NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (agency, system)
    );
    """,
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        person TEXT NOT NULL,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        short TEXT NOT NULL,
        html TEXT,
        thread_key TEXT,
        language TEXT NOT NULL,
        fallbacks TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        sent_at REAL,
        provider_id TEXT
    );
    CREATE INDEX outbox_due ON outbox (channel, status, next_attempt_at);
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        key TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        read_at REAL
    );
    CREATE INDEX inbox_account ON inbox (account, created_at);
    """,
    """
    CREATE TABLE alert_notices (
        incident TEXT NOT NULL,
        address_key TEXT NOT NULL,
        PRIMARY KEY (incident, address_key)
    );
    """,
    # The working-day rules: change announcements, what probes observed (for unannounced
    # changes), maintenance windows and incidents. Times are epoch seconds (UTC).
    """
    CREATE TABLE announcements (
        id INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        system TEXT NOT NULL,
        ref TEXT,
        announced_at REAL NOT NULL,
        effective_at REAL NOT NULL,
        changes TEXT NOT NULL,
        source TEXT NOT NULL,
        author TEXT NOT NULL,
        working_days INTEGER NOT NULL,
        required INTEGER NOT NULL,
        compliant INTEGER NOT NULL,
        created_at REAL NOT NULL,
        cancelled_at REAL,
        handled_at REAL,
        applied_at REAL,
        UNIQUE (agency, ref)
    );
    CREATE INDEX announcements_system ON announcements (agency, system, effective_at);
    CREATE TABLE observed_values (
        check_key TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        since REAL NOT NULL,
        PRIMARY KEY (check_key, field)
    );
    CREATE TABLE unannounced_changes (
        id INTEGER PRIMARY KEY,
        check_key TEXT NOT NULL,
        field TEXT NOT NULL,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        observed_at REAL NOT NULL
    );
    CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        starts REAL NOT NULL,
        ends REAL NOT NULL,
        reason TEXT NOT NULL,
        announced_at REAL NOT NULL,
        working_days INTEGER NOT NULL,
        required INTEGER NOT NULL,
        compliant INTEGER NOT NULL,
        override_reason TEXT,
        author TEXT NOT NULL,
        created_at REAL NOT NULL,
        cancelled_at REAL,
        cancel_reason TEXT,
        notified_scheduled REAL,
        notified_started REAL,
        notified_ended REAL
    );
    CREATE INDEX maintenance_ends ON maintenance (ends);
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        agency TEXT NOT NULL,
        system TEXT,
        source TEXT NOT NULL,
        summary TEXT NOT NULL,
        opened_at REAL NOT NULL,
        due_at REAL NOT NULL,
        acknowledged_at REAL,
        acknowledged_by TEXT,
        resolved_at REAL,
        resolved_by TEXT,
        resolution TEXT,
        reminded INTEGER NOT NULL DEFAULT 0,
        breached_at REAL
    );
    CREATE INDEX incidents_open ON incidents (resolved_at, opened_at);
    """,
    # Accounts, the audit log, incident comments and silences made through the API.
    """
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        agency TEXT,
        token_hash TEXT UNIQUE,
        cert_subject TEXT,
        cert_serial TEXT,
        portal_account TEXT NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at REAL,
        revoked_by TEXT
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        agency TEXT,
        detail TEXT NOT NULL,
        source TEXT NOT NULL
    );
    CREATE INDEX audit_ts ON audit (ts);
    CREATE TABLE incident_comments (
        id INTEGER PRIMARY KEY,
        incident TEXT NOT NULL,
        ts REAL NOT NULL,
        author TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX incident_comments_incident ON incident_comments (incident, ts);
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        system TEXT,
        starts REAL NOT NULL,
        ends REAL NOT NULL,
        reason TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        cancelled_at REAL
    );
    """,
    # The SMS budget counts from when a message was on the wire (claimed_at: kept when a crash
    # interrupts the send, cleared when the attempt fails) or accepted (sent_at); a channel's
    # time budget before falling back counts from the first failed attempt.
    """
    ALTER TABLE outbox ADD COLUMN claimed_at REAL;
    ALTER TABLE outbox ADD COLUMN first_failed_at REAL;
    CREATE INDEX outbox_address ON outbox (channel, address, status);
    """,
    # Client certificates are mapped by the SHA-256 of their DER together with their issuer's
    # DN (RFC 4514); cert_subject and cert_serial stay readable but no longer log in. A
    # fingerprint belongs to one active account. Page logins get server-side sessions (the
    # cookie holds a random id, stored here as its SHA-256; idle: seconds unused allowed).
    """
    ALTER TABLE accounts ADD COLUMN cert_sha256 TEXT;
    ALTER TABLE accounts ADD COLUMN cert_issuer TEXT;
    CREATE UNIQUE INDEX accounts_cert_sha256 ON accounts (cert_sha256)
        WHERE cert_sha256 IS NOT NULL AND revoked_at IS NULL;
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        expires_at REAL NOT NULL,
        idle REAL NOT NULL
    );
    CREATE INDEX sessions_account ON sessions (account);
    CREATE INDEX sessions_expires ON sessions (expires_at);
    """,
    # Support requests (QĐ 31/2021, Chương VII, D.1): when a request was received (it may
    # precede its entry; the SLA counts from it), whether it is complex, and the expected
    # completion time published for a complex one. Outages escalate on wall-clock time and
    # have no working-hours due time (9e999 is SQLite's infinity): each escalation step taken
    # is recorded (escalation_step 1, 2…, to whom, when).
    """
    ALTER TABLE incidents ADD COLUMN received_at REAL;
    ALTER TABLE incidents ADD COLUMN complex INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN expected_completion REAL;
    ALTER TABLE incidents ADD COLUMN escalation_step INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN escalated_to TEXT;
    ALTER TABLE incidents ADD COLUMN escalated_at REAL;
    UPDATE incidents SET received_at = opened_at WHERE source = 'request';
    UPDATE incidents SET due_at = 9e999
        WHERE source = 'outage' AND resolved_at IS NULL AND breached_at IS NULL;
    """,
    # The reason as a code (JSON of npsp_common.types.Why), for the reader's language; NULL in
    # rows written before it: those show their English text.
    """
    ALTER TABLE state_changes ADD COLUMN why TEXT;
    ALTER TABLE system_state ADD COLUMN why TEXT;
    """,
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


@dataclass(frozen=True, slots=True)
class StoredState:
    """A system's last announced state, as persisted."""

    state: State
    since: float
    reason: str
    why: Why | None = None


def why_text(why: Why | None) -> str | None:
    """A reason's code as stored (JSON), or NULL."""
    return None if why is None else json.dumps(why.to_json(), ensure_ascii=False)


def why_of(text: object) -> Why | None:
    """The stored code of a reason; None for NULL or anything unreadable (shown as text)."""
    if not isinstance(text, str):
        return None
    try:
        return Why.from_json(json.loads(text))
    except (ValueError, RecursionError):
        return None


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
            for statement in filter(None, (s.strip() for s in script.split(";"))):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
            db.execute("COMMIT")
        self._db = db

    def _record(self, events: list[Event]) -> None:
        db = self._conn()
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO state_changes"
                " (ts, agency, system, old_state, new_state, reason, vantage, why)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.time,
                        e.agency,
                        e.system,
                        e.old.value,
                        e.new.value,
                        e.reason,
                        e.vantage,
                        why_text(e.why),
                    )
                    for e in events
                ],
            )
            db.executemany(
                "INSERT INTO system_state (agency, system, state, since, reason, why)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (agency, system) DO UPDATE SET"
                " state = excluded.state, since = excluded.since, reason = excluded.reason,"
                " why = excluded.why",
                [
                    (e.agency, e.system, e.new.value, e.time, e.reason, why_text(e.why))
                    for e in events
                ],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("store is closed")
        return self._db

    def _states(self) -> dict[str, StoredState]:
        rows = self._conn().execute(
            "SELECT agency, system, state, since, reason, why FROM system_state"
        )
        out = {}
        for agency, system, state, since, reason, why in rows:
            try:
                out[f"{agency}/{system}"] = StoredState(State(state), since, reason, why_of(why))
            except ValueError:
                continue  # a state this version does not know: start that system fresh
        return out

    def _changes(self, limit: int, key: str | None, agency: str | None) -> list[Event]:
        sql = (
            "SELECT ts, agency, system, old_state, new_state, reason, vantage, why"
            " FROM state_changes"
        )
        args: list[object] = []
        if key is not None:
            owner, _, system = key.partition("/")
            sql += " WHERE agency = ? AND system = ?"
            args += [owner, system]
        elif agency is not None:
            sql += " WHERE agency = ?"
            args.append(agency)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        out = []
        for ts, owner, system, old, new, reason, vantage, why in self._conn().execute(sql, args):
            try:
                out.append(
                    Event(ts, owner, system, State(old), State(new), reason, vantage, why_of(why))
                )
            except ValueError:
                continue  # a state this version does not know
        return out

    def _forget(self, keys: list[str]) -> None:
        db = self._conn()
        db.executemany(
            "DELETE FROM system_state WHERE agency = ? AND system = ?",
            [tuple(k.split("/", 1)) for k in keys],
        )

    def _transact(self, fn: Callable[[sqlite3.Connection], T]) -> T:
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

    # ----- async API --------------------------------------------------------------------------

    async def transact(self, fn: Callable[[sqlite3.Connection], T]) -> T:
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
            await self._call(self._record, batch)

    async def states(self) -> dict[str, StoredState]:
        """Every system's last announced state, keyed ``agency/system``."""
        return await self._call(self._states)

    async def changes(
        self, limit: int = 100, key: str | None = None, *, agency: str | None = None
    ) -> list[Event]:
        """The latest state changes, newest first (optionally of one system or one agency)."""
        return await self._call(self._changes, limit, key, agency)

    async def forget(self, keys: list[str]) -> None:
        """Drop the current state of systems removed from the registry (history stays)."""
        if keys:
            await self._call(self._forget, keys)


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
