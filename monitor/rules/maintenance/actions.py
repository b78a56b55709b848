"""What a person does with maintenance windows, from the command line or the API: schedule
one (:func:`schedule`, after :func:`~.model.prepare`), list them, cancel one. The daemon's
desk sends their notices."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable

from ...alerting.messages import local_time
from ...registry import Registry
from ...sqldialect import Handle
from ...store import Store
from ...workdays import WorkCalendar
from . import store as rows
from .model import MaintenanceError, Window, checked_text, prepare

log = logging.getLogger(__package__)  # the topic's logger, as before the split


async def schedule(
    store: Store,
    calendar: WorkCalendar,
    registry: Registry,
    *,
    starts: dt.datetime,
    ends: dt.datetime,
    reason: str,
    scope: Iterable[str] = (),
    override_reason: str | None = None,
    author: str,
    now: float,
    announced_at: dt.datetime | None = None,
) -> Window:
    """Validate (:func:`prepare`) and store a window; the daemon's desk sends its notices."""
    window = prepare(
        calendar,
        registry,
        starts=starts,
        ends=ends,
        reason=reason,
        scope=scope,
        override_reason=override_reason,
        author=author,
        now=now,
        announced_at=announced_at,
    )

    window_id = await store.transact(lambda db: rows.add(db, window))
    stored = dataclasses.replace(window, id=window_id)
    log.info(
        "maintenance scheduled",
        extra={"maintenance": window_id, "compliant": stored.compliant, "author": stored.author},
    )
    return stored


async def list_windows(store: Store, *, now: float, include_past: bool = False) -> list[Window]:
    """Windows by start time: those not over and not cancelled, or (``include_past``) all."""
    if include_past:
        return await store.transact(rows.every)
    return await store.transact(lambda db: rows.current(db, now))


async def cancel(store: Store, window_id: int, *, now: float, reason: str | None = None) -> Window:
    """Cancel a window that is not over. Its alerts are no longer held; the desk tells the
    people already told about it (a window cancelled before anyone heard of it stays quiet).

    ``reason`` is kept and told.
    """
    why = None if reason is None else checked_text(reason, "the cancellation reason")

    def write(db: Handle) -> Window:
        window = rows.get(db, window_id)
        if window is None:
            raise MaintenanceError(f"there is no maintenance window #{window_id}")
        if window.cancelled_at is not None:
            raise MaintenanceError(
                f"maintenance #{window_id} was already cancelled {local_time(window.cancelled_at)}"
            )
        if window.ends <= now:
            raise MaintenanceError(
                f"maintenance #{window_id} is already over (it ended {local_time(window.ends)})"
            )
        rows.set_cancelled(db, window_id, now, why)
        return dataclasses.replace(window, cancelled_at=now, cancel_reason=why)

    cancelled = await store.transact(write)
    log.info("maintenance cancelled", extra={"maintenance": window_id})
    return cancelled
