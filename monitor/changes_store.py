"""The pages' statements on the ``state_changes`` table (the daemon's own are in
:class:`monitor.store.Store`): one function per query, each taking the database handle of a
transaction (:meth:`monitor.store.Store.transact` runs them). Dialect details come from
:mod:`monitor.sqldialect`.
"""

from __future__ import annotations

from .sqldialect import Handle, sql
from .state import GATEWAY_AGENCY, Event, State
from .store import why_of

ChangeRow = tuple[float, str, str, str, str]  # ts, agency, system, old state, new state

_SINCE = "SELECT ts, agency, system, old_state, new_state FROM state_changes WHERE ts >= ?"
_OF_AGENCY = sql(
    "SELECT ts, agency, system, old_state, new_state, reason, vantage, why"
    " FROM state_changes WHERE agency = ? ORDER BY ts DESC, id DESC LIMIT ?"
)


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
    out = []
    for ts, a, s, old, new, reason, vantage, why in db.execute(_OF_AGENCY, (agency, limit)):
        try:
            out.append(Event(ts, a, s, State(old), State(new), reason, vantage, why_of(why)))
        except ValueError:
            continue
    return out


__all__ = ["ChangeRow", "of_agency", "since"]
