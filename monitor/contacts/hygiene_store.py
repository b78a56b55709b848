"""Every statement on ``address_flags``: one function per query, each taking the handle of a
transaction (the outbox flags inside the transaction that marks the row failed; the contacts'
actions clear inside the edit's). Dialect details come from :mod:`monitor.sqldialect`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..sqldialect import Handle, insert, sql
from .flags import Flag, key_of

__all__ = ["clear", "flag", "mark_reported", "open_flags", "stamp", "unreported"]

_COLUMNS = (
    "id, channel, address, code, reason, person, flagged_at, reported_at, cleared_at, cleared_by"
)
_SELECT = f"SELECT {_COLUMNS} FROM address_flags"  # noqa: S608 - constant columns
# One open flag per channel and address (the partial unique index): a second failure of a
# flagged address adds nothing.
_ADD = (
    insert("address_flags", ("channel", "address", "code", "reason", "person", "flagged_at"))
    + " ON CONFLICT DO NOTHING"
)
_OPEN = sql(_SELECT + " WHERE cleared_at IS NULL ORDER BY flagged_at, id")
_UNREPORTED = sql(
    _SELECT + " WHERE cleared_at IS NULL AND reported_at IS NULL ORDER BY flagged_at, id"
)
_MARK = sql("UPDATE address_flags SET reported_at = ? WHERE id = ? AND reported_at IS NULL")
_CLEAR = sql(
    "UPDATE address_flags SET cleared_at = ?, cleared_by = ?"
    " WHERE channel = ? AND address = ? AND cleared_at IS NULL"
)
_STAMP = sql(
    "SELECT (SELECT COUNT(*) FROM address_flags WHERE cleared_at IS NULL),"
    " (SELECT MAX(id) FROM address_flags)"
)


def _flag(row: Sequence[Any]) -> Flag:
    id_, channel, address, code, reason, person, flagged, reported, cleared, by = row
    return Flag(
        int(id_),
        str(channel),
        str(address),
        str(code),
        str(reason),
        None if person is None else str(person),
        float(flagged),
        None if reported is None else float(reported),
        None if cleared is None else float(cleared),
        None if by is None else str(by),
    )


def flag(
    db: Handle, channel: str, address: str, code: str, reason: str, person: str | None, now: float
) -> bool:
    """Flag an address (True: newly; False: already flagged)."""
    channel, address = key_of(channel, address)
    values = (channel, address, code, reason[:500], person, now)
    return bool(db.execute(_ADD, values).rowcount)


def open_flags(db: Handle) -> list[Flag]:
    """Every flag not cleared, oldest first."""
    return [_flag(r) for r in db.execute(_OPEN).fetchall()]


def unreported(db: Handle) -> list[Flag]:
    """The open flags the agency's admins were not told of yet."""
    return [_flag(r) for r in db.execute(_UNREPORTED).fetchall()]


def mark_reported(db: Handle, flag_id: int, now: float) -> bool:
    """Record that the admins were told; False if it was already (another leader)."""
    return db.execute(_MARK, (now, flag_id)).rowcount == 1


def clear(db: Handle, addresses: Iterable[tuple[str, str]], now: float, by: str) -> list[str]:
    """Clear the open flags of ``addresses`` ((channel, address) pairs); the channels cleared."""
    cleared = []
    for pair in addresses:
        channel, address = key_of(*pair)
        if db.execute(_CLEAR, (now, by, channel, address)).rowcount:
            cleared.append(channel)
    return cleared


def stamp(db: Handle) -> tuple[Any, ...]:
    """What changes whenever a flag is added or cleared."""
    return tuple(db.execute(_STAMP).fetchone())
