"""Every statement on ``monthly_figures`` (each system's figures of a closed month, measured
from its state changes before those are pruned) and ``report_months`` (the months whose every
system is stored). Neither table is ever pruned: a past month's report reads its systems'
figures here once its state changes are gone (:func:`monitor.reports.source.read`), and they
are the very numbers the state changes gave (floats kept bit for bit), so the report does not
change. The retention desk (:mod:`monitor.retention`) writes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from ..sqldialect import Handle, insert_ignore, sql, upsert
from .figures import month_bounds
from .model import TZ, Figures

__all__ = ["close", "closed", "month_of", "stored", "whole_month", "write"]

_COLUMNS = (
    "month",
    "agency",
    "system",
    "up_seconds",
    "down_seconds",
    "unreachable_seconds",
    "not_monitored_seconds",
    "maintenance_seconds",
    "degraded_seconds",
    "outages",
)
_WRITE = upsert("monthly_figures", _COLUMNS, key=("month", "agency", "system"), update=_COLUMNS[3:])
_STORED = sql(
    "SELECT agency, system, up_seconds, down_seconds, unreachable_seconds,"
    " not_monitored_seconds, maintenance_seconds, degraded_seconds, outages"
    " FROM monthly_figures WHERE month = ?"
)
_CLOSE = insert_ignore("report_months", ("month", "stored_at"), key=("month",))
_CLOSED = sql("SELECT month FROM report_months")


def month_of(ts: float) -> str:
    """The ``YYYY-MM`` month (Vietnam's time) holding ``ts``."""
    return dt.datetime.fromtimestamp(ts, TZ).strftime("%Y-%m")


def whole_month(starts: float, ends: float) -> str | None:
    """The month ``[starts, ends)`` is exactly, if it is one (a week is not)."""
    month = month_of(starts)
    return month if month_bounds(month) == (starts, ends) else None


def write(db: Handle, month: str, rows: Iterable[tuple[str, str, Figures]]) -> None:
    """Store ``(agency, system, figures)`` of ``month`` (again: the same values)."""
    db.executemany(
        _WRITE,
        [
            (
                month,
                agency,
                system,
                f.up_seconds,
                f.down_seconds,
                f.unreachable_seconds,
                f.not_monitored_seconds,
                f.maintenance_seconds,
                f.degraded_seconds,
                f.outages,
            )
            for agency, system, f in rows
        ],
    )


def close(db: Handle, month: str, at: float) -> None:
    """Record that every system of ``month`` is stored."""
    db.execute(_CLOSE, (month, at))


def closed(db: Handle) -> set[str]:
    """The months whose every system is stored."""
    return {str(month) for (month,) in db.execute(_CLOSED)}


def stored(db: Handle, month: str) -> dict[str, Figures]:
    """The stored figures of ``month``, by ``agency/system`` (no incidents: those are counted
    from the incidents, which are kept)."""
    return {
        f"{agency}/{system}": Figures(
            up_seconds=float(up),
            down_seconds=float(down),
            unreachable_seconds=float(unreachable),
            not_monitored_seconds=float(unmonitored),
            maintenance_seconds=float(maintenance),
            degraded_seconds=float(degraded),
            outages=int(outages),
        )
        for agency, system, up, down, unreachable, unmonitored, maintenance, degraded, outages in (
            db.execute(_STORED, (month,))
        )
    }
