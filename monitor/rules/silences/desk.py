"""Silences made through the API (stored; the config's own are in monitor.config.alerting).

A Muter for the alert pipeline, answered from memory; re-read when the database changes.
"""

from __future__ import annotations

from ...alerting.model import Alert
from ..desk import RulesContext
from . import store


class SilenceDesk:
    """The active API silences, as a Desk and a Muter."""

    def __init__(self, ctx: RulesContext) -> None:
        self.ctx = ctx
        self.active: list[store.Silence] = []

    async def refresh(self) -> None:
        now = self.ctx.clock()
        active = await self.ctx.store.transact(lambda db: store.active(db, now))
        # In the order they were made: of two silences covering an alert, the older one is
        # named in its reason (the API lists them by their end instead).
        self.active = sorted(active, key=lambda s: s.id)

    async def tick(self, now: float) -> None:
        self.active = [s for s in self.active if s.ends > now]

    def mutes(self, alert: Alert, now: float) -> str | None:
        for s in self.active:
            covers = s.agency == alert.agency and s.system in (None, alert.system)
            if covers and s.starts <= now < s.ends:
                return f"silence #{s.id}: {s.reason}"
        return None
