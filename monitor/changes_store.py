"""Every statement on the ``state_changes`` table (the history of every system's state) and on
``system_state`` (each system's last announced state, which the history's newest row of a
system sets): one function per query, each taking the database handle of a transaction
(:meth:`monitor.store.Store.transact` runs them; the daemon's own through
:meth:`~monitor.store.Store.record`, :meth:`~monitor.store.Store.states`…). Dialect details come
from :mod:`monitor.sqldialect`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from npsp_common.types import Why

from .sqldialect import Handle, insert, sql, upsert
from .state import GATEWAY_AGENCY, Event, State

ChangeRow = tuple[float, str, str, str, str]  # ts, agency, system, old state, new state

_EVENT_COLUMNS = "ts, agency, system, old_state, new_state, reason, vantage, why"
_RECORD = insert(
    "state_changes",
    ("ts", "agency", "system", "old_state", "new_state", "reason", "vantage", "why"),
)
_SET_STATE = upsert(
    "system_state",
    ("agency", "system", "state", "since", "reason", "why"),
    key=("agency", "system"),
    update=("state", "since", "reason", "why"),
)
_STATES = sql("SELECT agency, system, state, since, reason, why FROM system_state")
_FORGET = sql("DELETE FROM system_state WHERE agency = ? AND system = ?")
_LATEST = f"SELECT {_EVENT_COLUMNS} FROM state_changes"  # noqa: S608 - constant columns
_SINCE = "SELECT ts, agency, system, old_state, new_state FROM state_changes WHERE ts >= ?"
_OF_AGENCY = sql(
    f"SELECT {_EVENT_COLUMNS}"  # noqa: S608 - constant columns; values are bound
    " FROM state_changes WHERE agency = ? ORDER BY ts DESC, id DESC LIMIT ?"
)
_BEFORE = sql(
    "SELECT new_state FROM state_changes WHERE agency = ? AND system = ? AND ts < ?"
    " ORDER BY ts DESC, id DESC LIMIT 1"
)
_BETWEEN = sql(
    "SELECT ts, new_state FROM state_changes WHERE agency = ? AND system = ?"
    " AND ts >= ? AND ts < ? ORDER BY ts, id"
)


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


def _events(rows: Iterable[Any]) -> list[Event]:
    """Rows of :data:`_EVENT_COLUMNS` as events (a state this version does not know is left
    out)."""
    out = []
    for ts, agency, system, old, new, reason, vantage, why in rows:
        try:
            out.append(
                Event(ts, agency, system, State(old), State(new), reason, vantage, why_of(why))
            )
        except ValueError:
            continue
    return out


# ----- the daemon's: the engine records, restores and forgets ----------------------------------


def record(db: Handle, events: Sequence[Event]) -> None:
    """Append state changes and set the systems' current state (one transaction: the caller's)."""
    db.executemany(
        _RECORD,
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
        _SET_STATE,
        [(e.agency, e.system, e.new.value, e.time, e.reason, why_text(e.why)) for e in events],
    )


def states(db: Handle) -> dict[str, StoredState]:
    """Every system's last announced state, keyed ``agency/system`` (a state this version does
    not know is left out: that system starts fresh)."""
    out = {}
    for agency, system, state, since, reason, why in db.execute(_STATES):
        try:
            out[f"{agency}/{system}"] = StoredState(State(state), since, reason, why_of(why))
        except ValueError:
            continue
    return out


def forget(db: Handle, keys: Sequence[str]) -> None:
    """Drop the current state of the systems ``keys`` (``agency/system``; history stays)."""
    db.executemany(_FORGET, [tuple(k.split("/", 1)) for k in keys])


def latest(db: Handle, limit: int, key: str | None, agency: str | None) -> list[Event]:
    """The latest ``limit`` changes, newest first: of the system ``key`` (``agency/system``),
    else of ``agency``, else of every system."""
    statement = _LATEST
    args: list[object] = []
    if key is not None:
        owner, _, system = key.partition("/")
        statement += " WHERE agency = ? AND system = ?"
        args += [owner, system]
    elif agency is not None:
        statement += " WHERE agency = ?"
        args.append(agency)
    statement += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    return _events(db.execute(sql(statement), args))


# ----- the pages' ---------------------------------------------------------------------------


def since(
    db: Handle, ts: float, *, agency: str | None = None, system: str | None = None
) -> list[ChangeRow]:
    """Every change from ``ts`` on, oldest first: of every system, or of ``agency`` (and of its
    ``system``), with the gateway's own changes in every case."""
    statement = _SINCE
    args: list[object] = [ts]
    if agency is not None:
        statement += " AND (agency = ? OR agency = ?)"
        args += [agency, GATEWAY_AGENCY]
        if system is not None:
            statement += " AND (system = ? OR agency = ?)"
            args += [system, GATEWAY_AGENCY]
    statement += " ORDER BY ts, id"
    return db.execute(sql(statement), args).fetchall()


def of_agency(db: Handle, agency: str, limit: int) -> list[Event]:
    """The latest ``limit`` changes of an agency's systems, newest first (a state this version
    does not know is left out)."""
    return _events(db.execute(_OF_AGENCY, (agency, limit)))


# ----- the reports' -------------------------------------------------------------------------


def state_before(db: Handle, agency: str, system: str, ts: float) -> str | None:
    """The state a system changed to last before ``ts`` (as stored), or None."""
    row = db.execute(_BEFORE, (agency, system, ts)).fetchone()
    return None if row is None else str(row[0])


def changes_between(
    db: Handle, agency: str, system: str, start: float, end: float
) -> list[tuple[float, str]]:
    """A system's changes in ``[start, end)``, oldest first: (time, new state as stored)."""
    return [(ts, new) for ts, new in db.execute(_BETWEEN, (agency, system, start, end))]


__all__ = [
    "ChangeRow",
    "StoredState",
    "changes_between",
    "forget",
    "latest",
    "of_agency",
    "record",
    "since",
    "state_before",
    "states",
    "why_of",
    "why_text",
]
