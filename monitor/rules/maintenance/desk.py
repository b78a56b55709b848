"""The maintenance desk: tells people about windows, each notice exactly once, and holds the
alerts of covered systems inside them (see :mod:`monitor.rules.maintenance`)."""

from __future__ import annotations

import dataclasses
import logging

from npsp_common.types import Why

from ...alerting.model import Alert
from ..desk import RulesContext
from . import store as rows
from .model import NoticeKind, Window, owed
from .notices import audience, notice_for

log = logging.getLogger(__package__)  # the topic's logger, as before the split

# The column that records a notice went out (a cancellation ends what a window owes).
_RECORDED_IN: dict[NoticeKind, rows.NotifiedColumn] = {
    "scheduled": "notified_scheduled",
    "started": "notified_started",
    "ended": "notified_ended",
    "cancelled": "notified_ended",
}


class MaintenanceDesk:
    """Tells people about windows and holds the alerts of covered systems inside them.

    A :class:`~monitor.rules.desk.Desk` (driven by :func:`~monitor.rules.desk.run_desks`) and
    a :class:`~monitor.alerting.mute.Muter` (one of the alert pipeline's muters). It keeps in
    memory the windows still owed a notice; :meth:`mutes` reads only that.
    """

    def __init__(self, ctx: RulesContext) -> None:
        self.ctx = ctx
        self.windows: dict[int, Window] = {}

    async def refresh(self) -> None:
        # Skipped: windows finished with, and those cancelled before anyone heard of them.
        self.windows = {w.id: w for w in await self.ctx.store.transact(rows.owed)}

    def mutes(self, alert: Alert, now: float) -> str | None:
        return self.covering(alert.agency, alert.system, now)

    def covering(self, agency: str, system: str, now: float) -> str | None:
        """Why a system is under maintenance at ``now`` ("maintenance #3: …"), or None."""
        for window in self.windows.values():
            if window.mutes_at(now) and window.covers(agency, system):
                return f"maintenance #{window.id}: {window.reason}"
        return None

    def covered(self, now: float) -> dict[str, Why]:
        """Every system inside a window at ``now`` (key → why), for the state machine."""
        active = sorted(
            (w for w in self.windows.values() if w.mutes_at(now)), key=lambda w: (w.starts, w.id)
        )
        if not active:
            return {}
        out: dict[str, Why] = {}
        for key, entry in self.ctx.registry().systems.items():
            # Overlapping windows: it is in maintenance until the last of them ends.
            ends = [w.ends for w in active if w.covers(entry.agency.id, entry.system.id)]
            if ends:
                out[key] = Why("system.maintenance", {"until": max(ends)})
        return out

    async def tick(self, now: float) -> None:
        for window in sorted(self.windows.values(), key=lambda w: (w.starts, w.id)):
            if not owed(window, now):
                continue
            try:
                await self._advance(window, now)
            except Exception:
                # One window's trouble (a locked database) must not hold the others' notices.
                log.exception("maintenance #%d: cannot send its notices; retrying", window.id)

    async def _advance(self, window: Window, now: float) -> None:
        """Send what is owed, in order; a window missed while the daemon was down gets all."""
        if window.notified_scheduled is None:
            window, marked = await self._tell(window, "scheduled", now)
            if marked and not window.compliant:
                self.ctx.count("maintenance_late")
        if window.cancelled_at is not None:
            await self._tell(window, "cancelled", now)
            return
        if now >= window.starts and window.notified_started is None:
            window, _ = await self._tell(window, "started", now)
        if now >= window.ends:
            await self._tell(window, "ended", now)

    async def _tell(self, window: Window, kind: NoticeKind, now: float) -> tuple[Window, bool]:
        """Queue one notice, then record it; return the window updated and whether this desk
        recorded it (False when another process did first)."""
        notice = notice_for(window, kind, self.ctx.registry(), self.ctx.rules.maintenance_notice)
        queued = await self.ctx.notices.send_notice(notice, audience(window, self.ctx.registry()))
        column = _RECORDED_IN[kind]
        marked = await self.ctx.store.transact(
            lambda db: rows.mark_notified(db, window.id, column, now)
        )
        log.info(
            "maintenance notice",
            extra={"maintenance": window.id, "notice": kind, "queued": queued},
        )
        if column == "notified_ended":
            self.windows.pop(window.id, None)
            return dataclasses.replace(window, notified_ended=now), marked
        if kind == "scheduled":
            window = dataclasses.replace(window, notified_scheduled=now)
        else:
            window = dataclasses.replace(window, notified_started=now)
        self.windows[window.id] = window
        return window, marked
