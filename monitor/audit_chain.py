"""The audit log's hash chain: every entry carries the hash of the one before it and its own,
so that an entry changed, removed or moved is found by :func:`verify`, and an outside party can
check an export (:func:`export`) without this code.

The canonical encoding of an entry — what its ``hash`` is the SHA-256 of — is the UTF-8 of the
JSON object (RFC 8785, JSON Canonicalization Scheme: keys sorted, no whitespace, strings
escaped only where JSON requires it, non-ASCII as it is) of the entry's fields::

    {"action": str, "actor": str, "agency": str | null, "detail": str, "id": int,
     "prev_hash": str, "source": str, "target": str, "ts": str}

``ts`` is the float's shortest round-trip decimal as Python's ``repr`` writes it
(``"1767225600.0"``, ``"1767225600.123456"``), as a *string*, so that no language's number
formatting is involved; ``detail`` is the JSON text as stored, a string. ``hash`` and
``prev_hash`` are lowercase hex; the first entry's ``prev_hash`` is :data:`GENESIS` (64 zeros).
In Python: ``sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"),
ensure_ascii=False).encode()).hexdigest()``. An export line is that object with ``hash`` added.

Appends are serialised by the one row of ``audit_head`` (the chain's last link): each append
updates it first, which on PostgreSQL holds its row lock until the acting transaction commits,
so several hosts writing at once take turns, and the entry's id is given inside that turn (the
last id + 1): the ids follow the chain. On SQLite the store's single writer already takes turns.

Entries written before the chain (before the schema migration that added it) have no hashes;
the first append after it — or the first ``audit verify``/``audit export`` — chains them in id
order from :data:`GENESIS` (a migration is SQL only, and SQLite has no SHA-256). The database
refuses UPDATE and DELETE on ``audit`` (triggers), except giving an entry without hashes its
hashes; :func:`verify` still finds what was done around the triggers.

What the chain cannot tell on its own: someone who may write the database with the triggers
off can rewrite every hash from an entry onwards. Keep the ``last hash`` that ``audit verify``
prints (or an export) outside the database: a rewritten chain no longer reaches it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from .sqldialect import Handle, sql
from .store import Store

__all__ = [
    "BATCH",
    "GENESIS",
    "Entry",
    "Verdict",
    "append",
    "canonical",
    "entry_hash",
    "export",
    "seal",
    "verify",
]

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64
#: Entries read per transaction by :func:`verify` and :func:`export`.
BATCH = 2000
#: How far from its place an entry is looked for when its hash fits another id (a move).
_MOVE_WINDOW = 64

_COLUMNS = "id, ts, actor, action, target, agency, detail, source, prev_hash, hash"
_LOCK_HEAD = sql("UPDATE audit_head SET last_id = last_id WHERE one = 1 RETURNING last_id, hash")
_NEW_HEAD = sql(
    "INSERT INTO audit_head (one, last_id, hash) VALUES (1, 0, ?) ON CONFLICT (one) DO NOTHING"
)
_SET_HEAD = sql("UPDATE audit_head SET last_id = ?, hash = ? WHERE one = 1")
_LAST_ID = sql("SELECT COALESCE(MAX(id), 0) FROM audit")
_INSERT = sql(
    f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
)
_PAGE = sql(
    f"SELECT {_COLUMNS} FROM audit WHERE id > ? AND id <= ? ORDER BY id LIMIT ?"  # noqa: S608
)
_CHAIN = sql("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ? AND hash IS NULL")


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the audit log as stored (``detail`` the JSON text)."""

    id: int
    ts: float
    actor: str
    action: str
    target: str
    agency: str | None
    detail: str
    source: str
    prev_hash: str | None
    hash: str | None

    def fields(self, *, id: int | None = None, prev_hash: str | None = None) -> dict[str, Any]:
        """What the hash covers (optionally with another id or prev_hash)."""
        return {
            "id": self.id if id is None else id,
            "ts": repr(float(self.ts)),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "agency": self.agency,
            "detail": self.detail,
            "source": self.source,
            "prev_hash": self.prev_hash if prev_hash is None else prev_hash,
        }

    def line(self) -> str:
        """The entry as one export line (its fields and its hash)."""
        return _dumps({**self.fields(), "hash": self.hash})


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes an entry's hash is taken of (see the module's docstring)."""
    return _dumps(fields).encode("utf-8")


def entry_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(*row)


def _head(db: Handle) -> tuple[int, str]:
    """The chain's last link, locked until this transaction ends; created (and the entries
    written before the chain chained) when there is none."""
    while True:
        row = db.execute(_LOCK_HEAD).fetchone()
        if row is not None:
            return int(row[0]), str(row[1])
        if db.execute(_NEW_HEAD, (GENESIS,)).rowcount == 1:
            # This transaction made the row, so it holds it: no one else is chaining.
            return _chain_unchained(db)
        # Another host made it at the same moment and has committed: lock theirs.


def _chain_unchained(db: Handle) -> tuple[int, str]:
    """Give every entry without hashes its hashes, in id order, and set the head to the last
    entry. An entry that has hashes already is taken as it is (:func:`verify` judges it)."""
    prev_id, prev = 0, GENESIS
    while True:
        rows = db.execute(_PAGE, (prev_id, 2**62, BATCH)).fetchall()
        if not rows:
            break
        for row in rows:
            entry = _entry(row)
            if entry.hash is None:
                digest = entry_hash(entry.fields(prev_hash=prev))
                db.execute(_CHAIN, (prev, digest, entry.id))
                prev = digest
            else:
                prev = entry.hash
            prev_id = entry.id
    db.execute(_SET_HEAD, (prev_id, prev))
    return prev_id, prev


def append(
    db: Handle,
    ts: float,
    actor: str,
    action: str,
    target: str,
    agency: str | None,
    detail: str,
    source: str,
) -> int:
    """Append one entry (``detail`` its JSON text) to the chain inside the caller's
    transaction; its id."""
    last_id, prev = _head(db)
    new_id = max(last_id, int(db.execute(_LAST_ID).fetchone()[0])) + 1
    entry = Entry(new_id, float(ts), actor, action, target, agency, detail, source, prev, None)
    digest = entry_hash(entry.fields())
    db.execute(_INSERT, _row(entry, digest))
    db.execute(_SET_HEAD, (new_id, digest))
    return new_id


def _row(entry: Entry, digest: str) -> tuple[Any, ...]:
    return (
        entry.id,
        entry.ts,
        entry.actor,
        entry.action,
        entry.target,
        entry.agency,
        entry.detail,
        entry.source,
        entry.prev_hash,
        digest,
    )


async def seal(store: Store) -> tuple[int, str]:
    """Chain the entries written before the chain, if that was not done yet (what the next
    audit write would do); the chain's last link (id, hash)."""
    return await store.transact(_head)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`verify` found: ``problem`` is None when the chain is intact."""

    entries: int
    last_id: int
    last_hash: str
    bad_id: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


async def _page(store: Store, after: int, upto: int, batch: int) -> list[Entry]:
    rows = await store.transact(lambda db: db.execute(_PAGE, (after, upto, batch)).fetchall())
    return [_entry(row) for row in rows]


def _moved_from(entry: Entry) -> int | None:
    """The id whose place this entry's content and hash belong to, if near (a move)."""
    assert entry.hash is not None
    for other in range(max(1, entry.id - _MOVE_WINDOW), entry.id + _MOVE_WINDOW + 1):
        if other != entry.id and entry_hash(entry.fields(id=other)) == entry.hash:
            return other
    return None


def _judge(entry: Entry, prev_id: int, prev: str) -> str | None:
    """What is wrong with ``entry`` following entry ``prev_id`` of hash ``prev``, or None."""
    if entry.hash is None or entry.prev_hash is None:
        return "not chained: it has no hash (written around the chain, or its hash erased)"
    if entry_hash(entry.fields()) != entry.hash:
        moved = _moved_from(entry)
        if moved is not None:
            return f"reordered: it holds entry {moved}'s content and hash"
        return "content changed: its hash does not match what it holds"
    if entry.prev_hash == prev:
        return None
    if entry.id != prev_id + 1:
        gone = f"{prev_id + 1}" if entry.id == prev_id + 2 else f"{prev_id + 1}-{entry.id - 1}"
        before = "the genesis value" if prev_id == 0 else f"the hash of entry {prev_id}"
        return (
            f"entry missing: ids jump from {prev_id} to {entry.id} (gone: {gone}) and its "
            f"prev_hash is not {before}"
        )
    if prev_id == 0:
        return "its prev_hash is not the genesis value (entries before it gone, or replaced)"
    return (
        f"reordered or replaced: its prev_hash is not the hash of entry {prev_id}, "
        "the entry before it"
    )


async def verify(
    store: Store, *, batch: int = BATCH, progress: Callable[[int], None] | None = None
) -> Verdict:
    """Walk the chain from its first entry to the head as it was when this began, ``batch``
    entries per transaction (never the whole log in memory); the first entry found wrong."""
    head_id, head_hash = await seal(store)
    prev_id, prev, count = 0, GENESIS, 0
    while True:
        page = await _page(store, prev_id, head_id, batch)
        if not page:
            break
        for entry in page:
            problem = _judge(entry, prev_id, prev)
            if problem is not None:
                return Verdict(count, prev_id, prev, entry.id, problem)
            count += 1
            prev_id, prev = entry.id, entry.hash or ""
        if progress is not None:
            progress(count)
    if prev_id != head_id:
        return Verdict(
            count,
            prev_id,
            prev,
            prev_id + 1,
            f"entry missing at the end: the chain head says the log reaches entry {head_id}, "
            f"the last entry is {prev_id}",
        )
    if prev != head_hash:
        return Verdict(
            count, prev_id, prev, prev_id, "the chain head's hash is not this entry's hash"
        )
    return Verdict(count, prev_id, prev)


async def export(store: Store, out: TextIO, *, since: int = 0, batch: int = BATCH) -> int:
    """Write the entries after entry ``since`` up to the head as it was when this began, one
    JSON line each (see the module's docstring), ``batch`` per transaction; how many."""
    head_id, _ = await seal(store)
    after, count = since, 0
    while True:
        page = await _page(store, after, head_id, batch)
        if not page:
            return count
        out.writelines(entry.line() + "\n" for entry in page)
        count += len(page)
        after = page[-1].id
